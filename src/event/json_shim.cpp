/*
 * json_shim.cpp - the C ABI of umg_json.h over simdjson's DOM parser.
 *
 * This is the daemon's only C++ file (see docs/ARCHITECTURE: a thin shim where
 * a C++ library buys an order of magnitude). It uses simdjson's error-code
 * API only (SIMDJSON_EXCEPTIONS=0, set below; -fno-exceptions is welcome but
 * not required). No C++ exception or type ever crosses the C boundary: values
 * travel as two 64-bit words holding a simdjson::dom::element, which is a
 * (document pointer, tape index) pair, and object walks as a pair of
 * simdjson object iterators kept inside the caller's umg_json_iter_t.
 *
 * Memory: the parser keeps one padded input buffer and one document, both
 * grown by doubling up to the maximum capacity and reused across parses, so
 * a steady stream of bodies causes no allocation.
 */
#include "umg_json.h"

/*
 * Error codes only, whatever the compiler flags: with this set simdjson never
 * throws, and every function below is noexcept, so an exception can never
 * unwind into C frames (it would terminate instead).
 */
#ifndef SIMDJSON_EXCEPTIONS
#define SIMDJSON_EXCEPTIONS 0
#endif
#include <simdjson.h>

#if SIMDJSON_EXCEPTIONS
#error "json_shim.cpp must be built with SIMDJSON_EXCEPTIONS=0"
#endif

#include <cstring>
#include <new>
#include <type_traits>

using simdjson::dom::element;
using simdjson::dom::element_type;

/* Counted allocation from core (umg_core.h is C-only: it uses _Atomic). */
extern "C" void *umg_malloc(size_t size);
extern "C" void umg_free(void *p);

static_assert(sizeof(element) <= sizeof(umg_json_val_t), "dom::element must fit umg_json_val_t");
static_assert(alignof(element) <= alignof(umg_json_val_t), "dom::element alignment");
static_assert(std::is_trivially_copyable<element>::value, "dom::element must be trivially copyable");
static_assert(std::is_trivially_destructible<element>::value, "dom::element must be trivial");

using obj_iter = simdjson::dom::object::iterator;

/* An object walk in progress: the next member and the end of the object. */
struct shim_iter {
    obj_iter cur;
    obj_iter end;
};
static_assert(sizeof(shim_iter) <= sizeof(umg_json_iter_t), "iterators must fit umg_json_iter_t");
static_assert(std::is_trivially_copyable<shim_iter>::value, "iterators must be trivially copyable");
static_assert(alignof(shim_iter) <= alignof(umg_json_iter_t), "iterator alignment");

/* The smallest buffer the parser allocates; avoids regrowing for every small body. */
static const size_t SHIM_MIN_CAPACITY = 16 * 1024;

struct umg_json_parser_s {
    simdjson::dom::parser parser;
    simdjson::dom::document doc;
    char *input;    /* cap + SIMDJSON_PADDING bytes, from umg_malloc */
    size_t len;     /* bytes of the last input */
    size_t cap;     /* capacity of input, of doc and of parser */
    size_t max_cap; /* never grow past this */

    explicit umg_json_parser_s(size_t max) noexcept : parser(max), input(nullptr), len(0), cap(0), max_cap(max)
    {
    }
};

static inline umg_json_val_t to_val(element e) noexcept
{
    umg_json_val_t v;
    std::memset(&v, 0, sizeof(v));
    std::memcpy(&v, &e, sizeof(e));
    return v;
}

static inline element to_elem(umg_json_val_t v) noexcept
{
    element e;
    std::memcpy(static_cast<void *>(&e), &v, sizeof(e));
    return e;
}

static umg_json_err_t map_error(simdjson::error_code e) noexcept
{
    switch (e) {
    case simdjson::SUCCESS: return UMG_JSON_OK;
    case simdjson::UTF8_ERROR: return UMG_JSON_EUTF8;
    case simdjson::CAPACITY: return UMG_JSON_ECAPACITY;
    case simdjson::MEMALLOC: return UMG_JSON_ENOMEM;
    case simdjson::DEPTH_ERROR: return UMG_JSON_EDEPTH;
    case simdjson::TAPE_ERROR:
    case simdjson::STRING_ERROR:
    case simdjson::T_ATOM_ERROR:
    case simdjson::F_ATOM_ERROR:
    case simdjson::N_ATOM_ERROR:
    case simdjson::NUMBER_ERROR:
    case simdjson::EMPTY:
    case simdjson::UNESCAPED_CHARS:
    case simdjson::UNCLOSED_STRING:
    case simdjson::INCOMPLETE_ARRAY_OR_OBJECT:
    case simdjson::TRAILING_CONTENT: return UMG_JSON_ESYNTAX;
    case simdjson::INCORRECT_TYPE: return UMG_JSON_ETYPE;
    case simdjson::NUMBER_OUT_OF_RANGE: return UMG_JSON_ERANGE;
    case simdjson::NO_SUCH_FIELD: return UMG_JSON_ENOTFOUND;
    default: return UMG_JSON_EOTHER;
    }
}

extern "C" umg_json_err_t umg_json_parser_new(size_t max_capacity, umg_json_parser_t **out) noexcept
{
    void *mem = umg_malloc(sizeof(umg_json_parser_s));
    if (mem == nullptr) {
        return UMG_JSON_ENOMEM;
    }
    *out = new (mem) umg_json_parser_s(max_capacity);
    return UMG_JSON_OK;
}

extern "C" void umg_json_parser_free(umg_json_parser_t *p) noexcept
{
    if (p == nullptr) {
        return;
    }
    umg_free(p->input);
    p->~umg_json_parser_s();
    umg_free(p);
}

/* Makes input, document and parser hold at least `len` bytes. */
static umg_json_err_t grow(umg_json_parser_t *p, size_t len) noexcept
{
    if (len > p->max_cap) {
        return UMG_JSON_ECAPACITY;
    }
    size_t cap = p->cap < SHIM_MIN_CAPACITY ? SHIM_MIN_CAPACITY : p->cap;
    while (cap < len) {
        cap = cap > p->max_cap / 2 ? p->max_cap : cap * 2;
    }
    if (cap > p->max_cap) {
        cap = p->max_cap > len ? p->max_cap : len;
    }
    char *input = static_cast<char *>(umg_malloc(cap + simdjson::SIMDJSON_PADDING));
    if (input == nullptr) {
        return UMG_JSON_ENOMEM;
    }
    /* simdjson may read the padding; keep it defined. */
    std::memset(input + cap, 0, simdjson::SIMDJSON_PADDING);
    if (p->doc.allocate(cap) != simdjson::SUCCESS || p->parser.allocate(cap) != simdjson::SUCCESS) {
        umg_free(input);
        p->cap = 0; /* the document may be half-allocated: regrow next time */
        umg_free(p->input);
        p->input = nullptr;
        p->len = 0;
        return UMG_JSON_ENOMEM;
    }
    umg_free(p->input);
    p->input = input;
    p->cap = cap;
    return UMG_JSON_OK;
}

static umg_json_err_t parse_input(umg_json_parser_t *p, umg_json_val_t *root) noexcept
{
    element e;
    simdjson::error_code err =
        p->parser.parse_into_document(p->doc, reinterpret_cast<const uint8_t *>(p->input), p->len, false).get(e);
    if (err != simdjson::SUCCESS) {
        return map_error(err);
    }
    *root = to_val(e);
    return UMG_JSON_OK;
}

extern "C" umg_json_err_t umg_json_parse(umg_json_parser_t *p, const char *buf, size_t len,
                                         umg_json_val_t *root) noexcept
{
    if (len > p->cap || p->input == nullptr) {
        umg_json_err_t e = grow(p, len);
        if (e != UMG_JSON_OK) {
            return e;
        }
    }
    if (len > 0) {
        std::memcpy(p->input, buf, len);
    }
    /* Zero what simdjson may look at past the end (old bytes of a longer body). */
    std::memset(p->input + len, 0, simdjson::SIMDJSON_PADDING);
    p->len = len;
    return parse_input(p, root);
}

extern "C" char *umg_json_input(umg_json_parser_t *p, size_t *len) noexcept
{
    *len = p->len;
    return p->input;
}

extern "C" umg_json_err_t umg_json_reparse(umg_json_parser_t *p, umg_json_val_t *root) noexcept
{
    if (p->input == nullptr) {
        return UMG_JSON_EOTHER;
    }
    return parse_input(p, root);
}

extern "C" const char *umg_json_strerror(umg_json_err_t e) noexcept
{
    switch (e) {
    case UMG_JSON_OK: return "no error";
    case UMG_JSON_EUTF8: return "the input is not valid UTF-8";
    case UMG_JSON_ESYNTAX: return "the input is not valid JSON";
    case UMG_JSON_EDEPTH: return "the document is nested too deeply";
    case UMG_JSON_ECAPACITY: return "the document is too large";
    case UMG_JSON_ENOMEM: return "out of memory";
    case UMG_JSON_ETYPE: return "the value has another type";
    case UMG_JSON_ERANGE: return "the number is out of range";
    case UMG_JSON_ENOTFOUND: return "no such key";
    case UMG_JSON_EOTHER: break;
    }
    return "JSON error";
}

extern "C" umg_json_type_t umg_json_type(umg_json_val_t v) noexcept
{
    switch (to_elem(v).type()) {
    case element_type::ARRAY: return UMG_JSON_ARRAY;
    case element_type::OBJECT: return UMG_JSON_OBJECT;
    case element_type::INT64: return UMG_JSON_INT64;
    case element_type::UINT64: return UMG_JSON_UINT64;
    case element_type::DOUBLE: return UMG_JSON_DOUBLE;
    case element_type::STRING: return UMG_JSON_STRING;
    case element_type::BOOL: return UMG_JSON_BOOL;
    case element_type::NULL_VALUE: break;
    }
    return UMG_JSON_NULL;
}

extern "C" umg_json_err_t umg_json_get_string(umg_json_val_t v, const char **ptr, size_t *len) noexcept
{
    std::string_view sv;
    simdjson::error_code err = to_elem(v).get_string().get(sv);
    if (err != simdjson::SUCCESS) {
        return map_error(err);
    }
    *ptr = sv.data();
    *len = sv.size();
    return UMG_JSON_OK;
}

extern "C" umg_json_err_t umg_json_get_int64(umg_json_val_t v, int64_t *out) noexcept
{
    return map_error(to_elem(v).get_int64().get(*out));
}

extern "C" umg_json_err_t umg_json_get_uint64(umg_json_val_t v, uint64_t *out) noexcept
{
    return map_error(to_elem(v).get_uint64().get(*out));
}

extern "C" umg_json_err_t umg_json_get_double(umg_json_val_t v, double *out) noexcept
{
    return map_error(to_elem(v).get_double().get(*out));
}

extern "C" umg_json_err_t umg_json_get_bool(umg_json_val_t v, int *out) noexcept
{
    bool b = false;
    simdjson::error_code err = to_elem(v).get_bool().get(b);
    if (err != simdjson::SUCCESS) {
        return map_error(err);
    }
    *out = b ? 1 : 0;
    return UMG_JSON_OK;
}

extern "C" size_t umg_json_array_size(umg_json_val_t v) noexcept
{
    simdjson::dom::array a;
    if (to_elem(v).get_array().get(a) != simdjson::SUCCESS) {
        return 0;
    }
    return a.size();
}

extern "C" size_t umg_json_object_size(umg_json_val_t v) noexcept
{
    simdjson::dom::object o;
    if (to_elem(v).get_object().get(o) != simdjson::SUCCESS) {
        return 0;
    }
    return o.size();
}

extern "C" int umg_json_object_foreach(umg_json_val_t obj, umg_json_member_cb cb, void *ctx) noexcept
{
    simdjson::dom::object o;
    if (to_elem(obj).get_object().get(o) != simdjson::SUCCESS) {
        return UMG_JSON_ETYPE;
    }
    for (auto it = o.begin(), end = o.end(); it != end; ++it) {
        std::string_view k = it.key();
        int rc = cb(ctx, k.data(), k.size(), to_val(it.value()));
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

extern "C" umg_json_err_t umg_json_object_find(umg_json_val_t obj, const char *key, size_t klen,
                                               umg_json_val_t *out) noexcept
{
    simdjson::dom::object o;
    if (to_elem(obj).get_object().get(o) != simdjson::SUCCESS) {
        return UMG_JSON_ETYPE;
    }
    std::string_view want(key, klen);
    for (auto it = o.begin(), end = o.end(); it != end; ++it) {
        if (it.key_equals(want)) {
            *out = to_val(it.value());
            return UMG_JSON_OK;
        }
    }
    return UMG_JSON_ENOTFOUND;
}

/*
 * The walk state lives inside the caller's umg_json_iter_t: constructed there
 * with placement new and used in place, which also spares the copies in and
 * out (and the store-forwarding stalls they caused).
 */
static inline shim_iter *iter_of(umg_json_iter_t *it) noexcept
{
    return std::launder(reinterpret_cast<shim_iter *>(it));
}

extern "C" umg_json_err_t umg_json_object_iter(umg_json_val_t obj, umg_json_iter_t *it) noexcept
{
    simdjson::dom::object o;
    if (to_elem(obj).get_object().get(o) != simdjson::SUCCESS) {
        return UMG_JSON_ETYPE;
    }
    new (static_cast<void *>(it)) shim_iter{o.begin(), o.end()};
    return UMG_JSON_OK;
}

/* Fills one item from an element; the key is set by the caller. */
static inline void fill_item(umg_json_item_t *item, element e) noexcept
{
    item->val = to_val(e);
    item->type = UMG_JSON_NULL;
    switch (e.type()) {
    case element_type::STRING: {
        std::string_view sv;
        if (e.get_string().get(sv) == simdjson::SUCCESS) {
            item->type = UMG_JSON_STRING;
            item->str = sv.data();
            item->len = sv.size();
        }
        return;
    }
    case element_type::INT64:
        if (e.get_int64().get(item->num.i) == simdjson::SUCCESS) {
            item->type = UMG_JSON_INT64;
        }
        return;
    case element_type::UINT64:
        if (e.get_uint64().get(item->num.u) == simdjson::SUCCESS) {
            item->type = UMG_JSON_UINT64;
        }
        return;
    case element_type::DOUBLE:
        if (e.get_double().get(item->num.d) == simdjson::SUCCESS) {
            item->type = UMG_JSON_DOUBLE;
        }
        return;
    case element_type::BOOL: {
        bool b = false;
        if (e.get_bool().get(b) == simdjson::SUCCESS) {
            item->type = UMG_JSON_BOOL;
            item->b = b ? 1 : 0;
        }
        return;
    }
    case element_type::ARRAY: item->type = UMG_JSON_ARRAY; return;
    case element_type::OBJECT: item->type = UMG_JSON_OBJECT; return;
    case element_type::NULL_VALUE: return;
    }
}

extern "C" size_t umg_json_object_next(umg_json_iter_t *it, umg_json_item_t *items, size_t max) noexcept
{
    shim_iter *si = iter_of(it);
    size_t n = 0;
    while (n < max && si->cur != si->end) {
        std::string_view k = si->cur.key();
        items[n].key = k.data();
        items[n].klen = k.size();
        fill_item(&items[n], si->cur.value());
        ++si->cur;
        n++;
    }
    return n;
}

extern "C" int umg_json_array_foreach(umg_json_val_t arr, umg_json_element_cb cb, void *ctx) noexcept
{
    simdjson::dom::array a;
    if (to_elem(arr).get_array().get(a) != simdjson::SUCCESS) {
        return UMG_JSON_ETYPE;
    }
    size_t i = 0;
    for (element e : a) {
        int rc = cb(ctx, i++, to_val(e));
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}
