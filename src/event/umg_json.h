/*
 * umg_json.h - a C view of the simdjson DOM parser (private to src/event).
 *
 * json_shim.cpp, the only C++ file of the daemon, implements this header on
 * top of simdjson's error-code API, built without exceptions. A parser owns a
 * padded copy of the last input and the parsed document; values are small
 * by-value handles that borrow from that document and stay valid until the
 * next parse on the same parser. Nothing here allocates once the parser has
 * grown to the largest document it has seen.
 */
#ifndef UMG_JSON_H
#define UMG_JSON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
/* Nothing here throws; for C++ (the shim itself) that is part of the type. */
#define UMG_JSON_NOEXCEPT noexcept
#else
#define UMG_JSON_NOEXCEPT
#endif

typedef enum {
    UMG_JSON_OK = 0,
    UMG_JSON_EUTF8,     /* the input is not valid UTF-8 (and may have other errors too) */
    UMG_JSON_ESYNTAX,   /* not JSON: bad token, unclosed string, trailing content, empty */
    UMG_JSON_EDEPTH,    /* nested deeper than the parser allows */
    UMG_JSON_ECAPACITY, /* larger than the parser's maximum capacity */
    UMG_JSON_ENOMEM,    /* out of memory */
    UMG_JSON_ETYPE,     /* accessor used on a value of another type */
    UMG_JSON_ERANGE,    /* number does not fit the requested C type */
    UMG_JSON_ENOTFOUND, /* object key not present */
    UMG_JSON_EOTHER,    /* anything else simdjson reports */
} umg_json_err_t;

typedef enum {
    UMG_JSON_NULL,
    UMG_JSON_BOOL,
    UMG_JSON_INT64,  /* an integer that fits int64_t */
    UMG_JSON_UINT64, /* an integer above INT64_MAX that fits uint64_t */
    UMG_JSON_DOUBLE, /* a number written with '.' or an exponent (or too big an integer) */
    UMG_JSON_STRING,
    UMG_JSON_ARRAY,
    UMG_JSON_OBJECT,
} umg_json_type_t;

typedef struct umg_json_parser_s umg_json_parser_t;

/* A value in the parser's current document; copy it freely. */
typedef struct umg_json_val_s {
    uint64_t opaque[2];
} umg_json_val_t;

/**
 * Creates a parser for documents up to `max_capacity` bytes. Memory grows on
 * demand (doubling) up to that size and is kept for reuse.
 * UMG_JSON_OK or UMG_JSON_ENOMEM; *out is written only on success.
 */
umg_json_err_t umg_json_parser_new(size_t max_capacity, umg_json_parser_t **out) UMG_JSON_NOEXCEPT;
/** Frees the parser and its document; accepts NULL. */
void umg_json_parser_free(umg_json_parser_t *p) UMG_JSON_NOEXCEPT;

/**
 * Copies buf[0..len) into the parser's padded input buffer and parses it. On
 * UMG_JSON_OK `root` is the document's root value. `buf` is borrowed for the
 * call only. Values of an earlier parse become invalid.
 */
umg_json_err_t umg_json_parse(umg_json_parser_t *p, const char *buf, size_t len,
                              umg_json_val_t *root) UMG_JSON_NOEXCEPT;

/**
 * The parser's copy of the last input (length in *len), writable, so that a
 * caller can repair it in place and call umg_json_reparse(). NULL before the
 * first parse.
 */
char *umg_json_input(umg_json_parser_t *p, size_t *len) UMG_JSON_NOEXCEPT;
/** Parses the (possibly modified) input buffer again. */
umg_json_err_t umg_json_reparse(umg_json_parser_t *p, umg_json_val_t *root) UMG_JSON_NOEXCEPT;

/** A static description of an error ("the input is not valid UTF-8", ...). */
const char *umg_json_strerror(umg_json_err_t e) UMG_JSON_NOEXCEPT;

umg_json_type_t umg_json_type(umg_json_val_t v) UMG_JSON_NOEXCEPT;
/** The unescaped string; borrowed from the document, not NUL-terminated for C purposes
 * (it may contain NUL bytes written as \u0000). */
umg_json_err_t umg_json_get_string(umg_json_val_t v, const char **ptr, size_t *len) UMG_JSON_NOEXCEPT;
umg_json_err_t umg_json_get_int64(umg_json_val_t v, int64_t *out) UMG_JSON_NOEXCEPT;
umg_json_err_t umg_json_get_uint64(umg_json_val_t v, uint64_t *out) UMG_JSON_NOEXCEPT;
/** Any number, converted to double. */
umg_json_err_t umg_json_get_double(umg_json_val_t v, double *out) UMG_JSON_NOEXCEPT;
umg_json_err_t umg_json_get_bool(umg_json_val_t v, int *out) UMG_JSON_NOEXCEPT;

/** Number of elements of an array (0 for other types). */
size_t umg_json_array_size(umg_json_val_t v) UMG_JSON_NOEXCEPT;
/** Number of members of an object (0 for other types). */
size_t umg_json_object_size(umg_json_val_t v) UMG_JSON_NOEXCEPT;

/**
 * Calls cb for every member of an object, in document order. The key is
 * borrowed from the document. A non-zero return from cb stops the walk and is
 * returned; UMG_JSON_ETYPE (positive) comes back when `obj` is not an object.
 */
typedef int (*umg_json_member_cb)(void *ctx, const char *key, size_t klen, umg_json_val_t val);
int umg_json_object_foreach(umg_json_val_t obj, umg_json_member_cb cb, void *ctx) UMG_JSON_NOEXCEPT;

/** Finds the first member named key[0..klen). UMG_JSON_ENOTFOUND or UMG_JSON_ETYPE otherwise. */
umg_json_err_t umg_json_object_find(umg_json_val_t obj, const char *key, size_t klen,
                                    umg_json_val_t *out) UMG_JSON_NOEXCEPT;

/*
 * Batched member iteration: the fast path for walking an object. One call
 * fills up to `max` items with each member's key, type and scalar payload,
 * so a walk costs one call across the C/C++ boundary per chunk instead of
 * several per member.
 */
typedef struct umg_json_item_s {
    const char *key; /* borrowed from the document */
    size_t klen;
    umg_json_type_t type;
    int b;           /* UMG_JSON_BOOL */
    const char *str; /* UMG_JSON_STRING, borrowed from the document */
    size_t len;
    union {
        int64_t i;  /* UMG_JSON_INT64 */
        uint64_t u; /* UMG_JSON_UINT64 */
        double d;   /* UMG_JSON_DOUBLE */
    } num;
    umg_json_val_t val; /* the member's value, for arrays and objects */
} umg_json_item_t;

typedef struct umg_json_iter_s {
    uint64_t opaque[4];
} umg_json_iter_t;

/** Starts iterating an object's members. UMG_JSON_ETYPE when `obj` is not an object. */
umg_json_err_t umg_json_object_iter(umg_json_val_t obj, umg_json_iter_t *it) UMG_JSON_NOEXCEPT;
/** Fills up to `max` items with the next members; returns how many (0 at the end). */
size_t umg_json_object_next(umg_json_iter_t *it, umg_json_item_t *items, size_t max) UMG_JSON_NOEXCEPT;

/** Like umg_json_object_foreach, for the elements of an array. */
typedef int (*umg_json_element_cb)(void *ctx, size_t index, umg_json_val_t val);
int umg_json_array_foreach(umg_json_val_t arr, umg_json_element_cb cb, void *ctx) UMG_JSON_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
