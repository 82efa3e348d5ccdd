/*
 * umg_log_int.h - on-disk format of the embedded event log, shared by the log
 * backend, its tests and the segment-reader fuzz target.
 *
 * A log directory holds `meta` (format version and partition count),
 * segments `<base offset, 20 digits>.log` with their per-record indexes
 * `<base>.idx`, and `offsets/<group>` committed consumer offsets.
 *
 * Record (little-endian), 56-byte header then payload:
 *   u32 len      payload bytes
 *   u32 crc      CRC32C of header bytes 8..55 and the payload
 *   u64 offset   the record's log offset
 *   i64 recv_us  server receive time
 *   i64 event_us event time
 *   u32 app      internal app id
 *   u16 partition
 *   u8  kind     UMG_BUS_KIND_*
 *   u8  version  UMG_LOG_RECORD_VERSION
 *   u8  id[16]   event id (dedupe key with app)
 *
 * Index entry, 40 bytes per record, in offset order: the record's position in
 * the segment, app, id, receive and event time in seconds, partition, kind.
 * An index is a cache of its segment: it is rebuilt from the segment when its
 * size does not match. The active segment's file may end with zeros that the
 * writer wrote ahead of its records (log.c, prepare()); a zero header is never
 * a valid record, and recovery truncates them like a torn tail.
 */
#ifndef UMG_LOG_INT_H
#define UMG_LOG_INT_H

#include "umg_bus.h"

#define UMG_LOG_FORMAT_VERSION 1
#define UMG_LOG_RECORD_VERSION 1
#define UMG_LOG_HDR 56
#define UMG_LOG_MAX_PAYLOAD (16u << 20)

typedef struct umg_log_idx_s {
    uint32_t pos;
    uint32_t app;
    uint8_t id[16];
    uint32_t recv_s;
    uint32_t event_s;
    uint16_t partition;
    uint8_t kind;
    uint8_t pad[5];
} umg_log_idx_t;

_Static_assert(sizeof(umg_log_idx_t) == 40, "index entry size");

/* Encodes a record header for `m` (payload in m->payload) into hdr. */
void umg__log_encode_hdr(uint8_t hdr[UMG_LOG_HDR], const umg_bus_msg_t *m);

/*
 * Decodes the record at buf[0..avail). Returns the record's total size (>0),
 * 0 when the buffer ends inside the record (torn or not yet read), or
 * UMG_ECORRUPT when the bytes are not a valid record.
 */
long umg__log_decode(const uint8_t *buf, size_t avail, umg_bus_msg_t *m);

/*
 * Scans a segment file from its start, validating every record. Returns the
 * byte length of the valid prefix in *valid_len and the records found in
 * *count; entries (may be NULL) receives an index entry per record, grown
 * with umg_realloc (caller frees).
 */
int umg__log_scan_segment(const char *path, uint64_t *valid_len, uint64_t *count, umg_log_idx_t **entries);

/* Test hook: the next log write fails with this errno (0: none). */
extern int umg__log_inject_write_errno;
/* Test hook: the next fdatasync of a segment's records (by the syncer, the writer or at a start) fails with this
 * errno (0: none). */
extern _Atomic int umg__log_inject_sync_errno;
/* drop_behind readers drop cached pages in steps of this many bytes (a multiple of the page size). */
extern uint64_t umg__log_drop_step;
/* Test hook: a rewrite waits this long between replacing a segment's records and its index. */
extern long umg__log_rename_pause_us;

#endif
