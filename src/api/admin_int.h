/*
 * admin_int.h - what admin.c (plumbing) and admin_ep.c (endpoints) share.
 */
#ifndef UMG_ADMIN_INT_H
#define UMG_ADMIN_INT_H

#include "umg_admin.h"
#include "umg_json.h"
#include "umg_login_limit.h"

#include <pthread.h>

/* One admin request (or one queued audit record), copied off its loop thread. */
typedef struct job_s {
    struct job_s *next;
    umg_http_defer_t *defer;
    umg_principal_t who; /* kind NONE on anonymous endpoints */
    char method[8];
    char *path, *query, *body;
    size_t body_len;
    char ip[64];
    char request_id[40];
    /* the answer */
    int status;
    umg_buf_t out;
    char extra[256]; /* extra response headers, "Name: value\r\n" lines */
    /* an audit record only; with audited, the request waits for it (umg_admin_audit_then) */
    int audit_only;
    umg_audit_t audit;
    char *audit_strs;
    umg_http_resume_cb audited;
    void *audited_data;
    /* a login between its two turns on the worker: the password is checked on the password thread between */
    struct login_check_s *login;
} job_t;

/* What the password thread needs of a login, and what it answers. */
typedef struct login_check_s {
    char email[256];
    char hash[128]; /* the user's, or a dummy one when there is no such user (the same work either way) */
    char password[1025];
    size_t password_len;
    int found;
    int pending; /* its first turn is done: the password is to be checked */
    int checked, ok;
} login_check_t;

/* A login after its first turn, for the password thread. */
static inline int umg__login_waits(const job_t *j)
{
    return j->login != NULL && j->login->pending && !j->login->checked;
}

struct umg_admin_s {
    umg_auth_t *auth;
    umg_limits_t *limits;
    umg_limits_config_t lcfg;
    sqlite3 *db;      /* the worker's */
    sqlite3 *tick_db; /* the main thread's (limits and usage) */
    umg_json_parser_t *json;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job_t *head, *tail;
    size_t queued;
    int stopping;
    /* the password thread (argon2id, ~0.1 s a login): logins wait there, not in front of every admin request */
    pthread_t pw_thread;
    pthread_cond_t pw_cv;
    job_t *pw_head, *pw_tail;
    int pw_running, pw_stopping;
    umg_login_limit_t *login_limit; /* failed logins per address and account (admin worker only) */
    int64_t usage_saved_us;
    uint8_t privacy_key[32];
};

/* admin.c */
void umg__job_error(job_t *j, int status, const char *code, const char *field, const char *message);
void umg__admin_metrics_register(void);
void umg__admin_count_login(const char *outcome);
void umg__admin_usage_save(umg_admin_t *a);
void umg__admin_usage_load(umg_admin_t *a);

/* admin_ep.c: runs one request on the worker thread, filling j->status and j->out. */
void umg__admin_dispatch(umg_admin_t *a, job_t *j);

#endif
