/*
 * err.c - owns the names of the UMG_E* error codes. Every code declared in
 * umg_core.h has a string here; anything else is reported as unknown.
 */
#include "umg_core.h"

const char *umg_strerror(int err)
{
    switch (err) {
    case UMG_OK: return "success";
    case UMG_ENOMEM: return "out of memory";
    case UMG_EINVAL: return "invalid argument";
    case UMG_EIO: return "I/O error";
    case UMG_ENOENT: return "not found";
    case UMG_EEXIST: return "already exists";
    case UMG_EAGAIN: return "try again";
    case UMG_ECORRUPT: return "data corrupt";
    case UMG_EFULL: return "resource full";
    case UMG_ERANGE: return "value out of range";
    case UMG_ECLOSED: return "closed";
    case UMG_ENOSPC: return "no space left on device";
    case UMG_EPARSE: return "syntax error";
    case UMG_EAUTH: return "authentication failed";
    case UMG_ETOOBIG: return "too much for one transaction";
    case UMG_EBUSY: return "more work to do: call again";
    default: return "unknown error";
    }
}
