/*
 * main.c - the unmogrowp binary: `serve` runs the daemon, `admin` manages
 * organizations and apps in a data directory (also while the daemon runs),
 * `config docs` prints the configuration reference. Everything else lives in
 * the library.
 */
#include "umg_admin.h"
#include "umg_apps.h"
#include "umg_attr_ep.h"
#include "umg_rollup.h"
#include "umg_bus.h"
#include "umg_cost.h"
#include "umg_fraud_train.h"
#include "umg_fraud_net.h"
#include "umg_query_ep.h"
#include "umg_gen.h"
#include "umg_http.h"
#include "umg_ingest.h"
#include "umg_live.h"
#include "umg_pipeline.h"
#include "umg_privacy.h"

#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define UMG_VERSION "0.1.0"

typedef struct serve_cfg_s {
    char *data;
    char *log_level;
    umg_http_config_t http;
    umg_ingest_config_t ingest;
    int64_t partitions;
    char *fsync;
    int64_t segment_bytes, retention_ms, retention_bytes, queue_bytes;
    int64_t dedupe_horizon_ms, dedupe_max_ids;
    umg_auth_config_t auth;
    char *rate_eps, *rate_burst;
    int64_t monthly_quota;
    umg_privacy_runner_config_t privacy;
    char *pii_key_file, *encrypt_fields;
    umg_pipeline_config_t pipeline;
    int64_t store_map_bytes;
    int64_t device_cache_bytes;
    char *ip_lists, *bot_ua_patterns;
    int64_t sig_replay_entries;
    char *web;
} serve_cfg_t;

#define OFF(f) offsetof(serve_cfg_t, f)

static const umg_config_item_t serve_items[] = {
    {"data", UMG_CFG_STRING, "./data", 0, 0, OFF(data), "Data directory (event log, meta.db). Also --data."},
    {"listen", UMG_CFG_STRING, "127.0.0.1:8080", 0, 0, OFF(http.listen),
     "Address to serve on, HOST:PORT; port 0 picks a free one. Also --listen."},
    {"web", UMG_CFG_STRING, "auto", 0, 0, OFF(web),
     "The built web dashboard (index.html, assets/) served at /: a directory, auto (web/dist of the source tree "
     "the binary was built in, or of the working directory, when built), or off (API only). Also --web."},
    {"threads", UMG_CFG_INT, "0", 0, 256, OFF(http.threads),
     "Event-loop threads; 0 means one per core. Also --threads."},
    {"log_level", UMG_CFG_STRING, "info", 0, 0, OFF(log_level), "debug, info, warn or error."},
    {"http.max_body_bytes", UMG_CFG_SIZE, "1m", 1024, 64ll << 20, OFF(http.max_body_bytes),
     "Largest request body; larger ones get 413 body_too_large."},
    {"http.max_header_bytes", UMG_CFG_SIZE, "16k", 1024, 256 << 10, OFF(http.max_header_bytes),
     "Largest total of request line and headers; larger ones get 431 headers_too_large."},
    {"http.idle_timeout", UMG_CFG_DURATION_MS, "10s", 100, 3600000, OFF(http.idle_timeout_ms),
     "Close a connection that sends nothing (or too slowly) for this long."},
    {"http.max_connections", UMG_CFG_INT, "10000", 1, 1000000, OFF(http.max_connections),
     "Open connections at most; more are answered 503 too_many_connections and closed."},
    {"http.tls_cert", UMG_CFG_STRING, "", 0, 0, OFF(http.tls_cert),
     "PEM certificate chain; with http.tls_key turns TLS on. Also --tls-cert."},
    {"http.tls_key", UMG_CFG_STRING, "", 0, 0, OFF(http.tls_key), "PEM private key. Also --tls-key."},
    {"http.trusted_proxies", UMG_CFG_STRING, "", 0, 0, OFF(http.trusted_proxies),
     "Comma-separated addresses/CIDRs of proxies whose X-Forwarded-For is believed."},
    {"ingest.max_events", UMG_CFG_INT, "1000", 1, 100000, OFF(ingest.max_events),
     "Events per request at most; more get 413 too_many_events."},
    {"ingest.max_future", UMG_CFG_DURATION_MS, "10m", 0, 86400000, OFF(ingest.max_future_ms),
     "Event times further ahead of the server clock are rejected (ts_in_future)."},
    {"ingest.max_age", UMG_CFG_DURATION_MS, "30d", 60000, 3650ll * 86400000, OFF(ingest.max_age_ms),
     "Event times older than this are rejected (ts_too_old)."},
    {"log.partitions", UMG_CFG_INT, "16", 1, 4096, OFF(partitions),
     "Partitions of the event log (by device); fixed when the log is created."},
    {"log.fsync", UMG_CFG_STRING, "always", 0, 0, OFF(fsync),
     "always (acknowledge after the fsync that covers the event), interval:MS, or never."},
    {"log.segment_bytes", UMG_CFG_SIZE, "128m", 1 << 20, 1ll << 30, OFF(segment_bytes),
     "Roll log segments at this size (at most 1g: index positions are 32-bit)."},
    {"log.retention", UMG_CFG_DURATION_MS, "30d", 0, 36500ll * 86400000, OFF(retention_ms),
     "Delete sealed segments older than this; 0 keeps everything. A segment is kept while the attribution "
     "pipeline has not applied all of it, or while it holds ids within dedupe.horizon (a warning says so)."},
    {"log.retention_bytes", UMG_CFG_SIZE, "0", 0, 1ll << 50, OFF(retention_bytes),
     "Delete the oldest sealed segments while the log is larger; 0 means no limit. The same segments are kept "
     "as for log.retention, so the log may stay larger."},
    {"log.queue_bytes", UMG_CFG_SIZE, "256m", 1 << 20, 1ll << 40, OFF(queue_bytes),
     "Bytes waiting for the log writer before ingest answers 503 overloaded."},
    {"dedupe.horizon", UMG_CFG_DURATION_MS, "7d", 60000, 365ll * 86400000, OFF(dedupe_horizon_ms),
     "How long an event_id is remembered for deduplication."},
    {"dedupe.max_ids", UMG_CFG_INT, "50000000", 1000, 4000000000ll, OFF(dedupe_max_ids),
     "Event ids held at most (39 to 77 bytes of memory each); past it the oldest are forgotten early, by the "
     "minute they came in (two or more minutes for a dedupe.horizon over 22 days); within that, in no "
     "particular order."},
    {"auth.jwt_alg", UMG_CFG_STRING, "HS256", 0, 0, OFF(auth.jwt_alg),
     "Access-token signature: HS256, RS256 or ES256. Tokens with any other algorithm are refused."},
    {"auth.jwt_secret_file", UMG_CFG_STRING, "", 0, 0, OFF(auth.jwt_secret_file),
     "HS256 secret (at least 32 bytes); empty: DATA/jwt.secret, made on first start (mode 0600)."},
    {"auth.jwt_private_key", UMG_CFG_STRING, "", 0, 0, OFF(auth.jwt_private_key),
     "PEM private key for RS256 (RSA) or ES256 (P-256)."},
    {"auth.jwt_public_key", UMG_CFG_STRING, "", 0, 0, OFF(auth.jwt_public_key),
     "PEM public key matching auth.jwt_private_key."},
    {"auth.access_ttl", UMG_CFG_DURATION_MS, "15m", 60000, 86400000, OFF(auth.access_ttl_ms),
     "Lifetime of an access token (JWT)."},
    {"auth.refresh_ttl", UMG_CFG_DURATION_MS, "30d", 3600000, 365ll * 86400000, OFF(auth.refresh_ttl_ms),
     "Lifetime of a refresh token; each refresh rotates it."},
    {"auth.login_max_failures", UMG_CFG_INT, "10", 1, 1000000, OFF(auth.login_max_failures),
     "Failed logins allowed per account and per IP address within auth.login_window; more get 429."},
    {"auth.login_window", UMG_CFG_DURATION_MS, "15m", 1000, 86400000, OFF(auth.login_window_ms),
     "The window over which failed logins are counted."},
    {"auth.key_overlap", UMG_CFG_DURATION_MS, "24h", 0, 30ll * 86400000, OFF(auth.key_overlap_ms),
     "Default time a rotated-out app key or secret keeps working."},
    {"auth.invite_ttl", UMG_CFG_DURATION_MS, "7d", 60000, 90ll * 86400000, OFF(auth.invite_ttl_ms),
     "Lifetime of an invitation token."},
    {"limits.rate", UMG_CFG_STRING, "0", 0, 0, OFF(rate_eps),
     "Default ingest rate limit per app in events/second (apps can override); 0: unlimited."},
    {"limits.burst", UMG_CFG_STRING, "0", 0, 0, OFF(rate_burst),
     "Default burst per app in events; 0: one second of limits.rate."},
    {"limits.monthly_quota", UMG_CFG_INT, "0", 0, 1ll << 60, OFF(monthly_quota),
     "Default events per organization per calendar month (UTC; organizations can override); 0: unlimited."},
    {"privacy.check_interval", UMG_CFG_DURATION_MS, "10s", 100, 3600000, OFF(privacy.check_interval_ms),
     "How often pending forget requests are looked for; a request is done within this plus one log rewrite."},
    {"privacy.ip_retention", UMG_CFG_DURATION_MS, "7d", 0, 3650ll * 86400000, OFF(privacy.ip_retention_ms),
     "Stored IP addresses older than this are truncated (IPv4 /24, IPv6 /48); 0 keeps them whole."},
    {"privacy.ip_interval", UMG_CFG_DURATION_MS, "1h", 1000, 7ll * 86400000, OFF(privacy.ip_interval_ms),
     "How often the log is checked for IP addresses past privacy.ip_retention (and PII under an old key)."},
    {"privacy.pii_key_file", UMG_CFG_STRING, "", 0, 0, OFF(pii_key_file),
     "Key file for PII encrypted at rest (AES-256-GCM): one 'KEYID HEX64' per line, the last one encrypts."},
    {"privacy.encrypt_fields", UMG_CFG_STRING, "", 0, 0, OFF(encrypt_fields),
     "Fields stored encrypted: any of ip, user_id, idfa, idfv, gaid, android_id, oaid, custom_id (comma-separated)."},
    {"attribution.store_map_bytes", UMG_CFG_SIZE, "64g", 16 << 20, 1ll << 44, OFF(store_map_bytes),
     "Largest size of the attribution store (DATA/attr, LMDB); address space only, the file grows as needed."},
    {"attribution.device_cache", UMG_CFG_SIZE, "512m", 0, 1ll << 40, OFF(device_cache_bytes),
     "Memory for the pipeline's cache of devices (about 600 bytes each): installs and in-app events of a cached "
     "device read it without the store, and its changes are written once per store transaction. Filled as "
     "devices come, then steady; 0: none."},
    {"attribution.batch", UMG_CFG_INT, "50000", 1, 1000000, OFF(pipeline.batch),
     "Log records the attribution pipeline applies per store transaction at most (a backlog is applied in "
     "transactions this large; fewer, larger transactions write each changed page once). A transaction that "
     "changes more pages than LMDB holds is split by itself."},
    {"attribution.batch_time", UMG_CFG_DURATION_MS, "200", 1, 10000, OFF(pipeline.batch_ms),
     "A store transaction of the pipeline ends after this long even when it holds fewer records, so that "
     "reports and GET /v1/attribution see applied records at least this often while it works through a "
     "backlog (once it has caught up, each transaction ends when the log does)."},
    {"attribution.poll", UMG_CFG_DURATION_MS, "2", 1, 1000, OFF(pipeline.poll_ms),
     "How long the pipeline waits before looking again when it has caught up with the log; if the log has not "
     "grown by then, it sleeps until the log says it has (at most 100 ms), so an idle daemon does not poll."},
    {"attribution.nice", UMG_CFG_INT, "0", 0, 19, OFF(pipeline.nice),
     "Nice value of the pipeline thread. Above 0, acknowledging events goes first when the cores are short and "
     "the pipeline catches up when they are free (umg_pipeline_lag_records shows how far behind it is); results "
     "reach GET /v1/attribution later under load (docs/attribution.md)."},
    {"attribution.decode_thread", UMG_CFG_BOOL, "true", 0, 1, OFF(pipeline.decode_thread),
     "Read and decode the log's records on a thread of their own, ahead of the pipeline thread that applies them "
     "to the attribution store, so that the two share the work on two cores; false: the pipeline thread does both."},
    {"attribution.touch_retention", UMG_CFG_DURATION_MS, "31d", 3600000, 3650ll * 86400000,
     OFF(pipeline.touch_retention_ms),
     "Touches older than this (behind the newest log record) leave the touch store; keep it above every window."},
    {"attribution.sync_interval", UMG_CFG_DURATION_MS, "1s", 10, 3600000, OFF(pipeline.sync_interval_ms),
     "How often the attribution store is flushed to disk (by a helper thread, beside the pipeline); a machine "
     "crash replays the rest from the log (log retention keeps it until then)."},
    {"fraud.rules", UMG_CFG_BOOL, "true", 0, 1, OFF(pipeline.fraud),
     "Run the fraud rules (docs/fraud.md; each app sets its own rules); false: no rule runs for any app."},
    {"fraud.horizon", UMG_CFG_DURATION_MS, "1d", 86400000, 3650ll * 86400000, OFF(pipeline.fraud_horizon_ms),
     "Items dated more than this before they arrive escape the windowed rules; raise it to judge backfilled "
     "history (memory: about 100 bytes per click within it)."},
    {"fraud.ip_lists", UMG_CFG_STRING, "", 0, 0, OFF(ip_lists),
     "IP lists for the blocked_ip rule as NAME=PATH,... (one CIDR or address a line); reloaded on SIGHUP."},
    {"fraud.bot_ua_patterns", UMG_CFG_STRING, "default", 0, 0, OFF(bot_ua_patterns),
     "bot_user_agent patterns, comma-separated ('default': the built-in list; '@FILE': one a line; '^' anchors)."},
    {"fraud.signature_replay_entries", UMG_CFG_INT, "1048576", 1024, 1ll << 30, OFF(sig_replay_entries),
     "Signatures remembered to refuse replays (16 bytes each, taken as used); see docs/fraud.md."},
};

/* ------------------------------------------------- the fraud rules' inputs */

/* The blocked_ip rule's lists (reloaded on SIGHUP), the bot_user_agent rule's patterns and the model, for the
 * pipeline. */
typedef struct fraud_ctx_s {
    umg_ingest_t *ing;
    umg_fraud_scorer_t *scorer;
} fraud_ctx_t;

/* A SIGHUP's reload of the IP lists, on a thread of its own: the main thread goes on refreshing apps and
 * credentials and answering signals while the lists are read and built (at idle priority, minutes on a busy
 * machine with millions of prefixes). A SIGHUP during a reload asks for one more after it. */
typedef struct reload_s {
    umg_iplists_t *lists;
    pthread_t th;
    int running, again;
    _Atomic int done;
    char err[512];
} reload_t;

static void *reload_main(void *arg)
{
    reload_t *r = arg;
    umg_thread_name("umg-reload");
    if (umg_iplists_reload(r->lists, r->err, sizeof(r->err)) != UMG_OK) {
        umg_log(UMG_LOG_ERROR, "serve", "SIGHUP: IP lists not reloaded, the old ones stay: %s", r->err);
    }
    atomic_store(&r->done, 1);
    return NULL;
}

/* On each turn of the main loop: a finished reload joined, and one started when asked (sighup) or owed. */
static void reload_step(reload_t *r, int sighup)
{
    if (r->running && atomic_load(&r->done)) {
        pthread_join(r->th, NULL);
        r->running = 0;
    }
    r->again |= sighup;
    if (!r->running && r->again) {
        r->again = 0;
        atomic_store(&r->done, 0);
        if (pthread_create(&r->th, NULL, reload_main, r) == 0) {
            r->running = 1;
        } else {
            reload_main(r); /* no thread to be had: here */
        }
    }
}

static int fraud_ip_listed(void *ctx, umg_slice_t ip, const char **list)
{
    umg_ingest_t *ing = ((fraud_ctx_t *)ctx)->ing;
    int id = -1;
    if (ing->iplists == NULL || umg_iplists_lookup(ing->iplists, ip, &id, NULL) != UMG_OK || id < 0) {
        return 0;
    }
    if (list != NULL) {
        *list = umg_iplists_name(ing->iplists, id);
    }
    return 1;
}

static int fraud_bot_ua(void *ctx, umg_slice_t ua)
{
    umg_ingest_t *ing = ((fraud_ctx_t *)ctx)->ing;
    return ing->botua != NULL && umg_botua_match(ing->botua, ua) >= 0; /* empty User-Agents: the rule's own check */
}

static int fraud_score(void *ctx, uint32_t app, const float *x, size_t nf, double *score)
{
    return umg_fraud_scorer_score(((fraud_ctx_t *)ctx)->scorer, app, x, nf, score);
}

/* ---------------------------------------------------------------- usage */

static int is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

static void usage_main(FILE *f)
{
    fprintf(f,
            "unmogrowp %s - self-hosted mobile attribution\n\n"
            "Usage: unmogrowp COMMAND [options]\n\n"
            "Commands:\n"
            "  serve                 run the daemon\n"
            "  admin app create      create an app (and its organization) and print its keys\n"
            "  admin app list        list apps with their keys\n"
            "  admin app settings    show or change an app's attribution windows\n"
            "  admin app fraud       show or change an app's fraud rules and model mode\n"
            "  admin user create     create a dashboard user (password on standard input)\n"
            "  admin privacy forget  forget a device (GDPR / CCPA erasure)\n"
            "  import costs|rates    import ad spend or currency rates from a CSV file\n"
            "  gen                   send realistic synthetic traffic for an app (or write request files)\n"
            "  fraud train           train an app's fraud model from labelled installs\n"
            "  config docs           print the configuration reference (Markdown)\n\n"
            "Run 'unmogrowp COMMAND --help' for a command's options.\n",
            UMG_VERSION);
}

static void usage_serve(FILE *f)
{
    fprintf(f, "Usage: unmogrowp serve [--data DIR] [--listen HOST:PORT] [--config FILE] [--threads N]\n"
               "                       [--tls-cert FILE --tls-key FILE] [--web DIR|auto|off] [--set KEY=VALUE]...\n\n"
               "Runs the daemon. Settings come from defaults, then --config FILE (key = value lines),\n"
               "then the flags in order. Keys (see docs/config.md):\n\n");
    for (size_t i = 0; i < UMG_ARRAY_SIZE(serve_items); i++) {
        fprintf(f, "  %-24s default %-16s %s\n", serve_items[i].name,
                serve_items[i].def[0] ? serve_items[i].def : "(none)", serve_items[i].help);
    }
}

static void usage_app_create(FILE *f)
{
    fprintf(f, "Usage: unmogrowp admin app create --data DIR --org NAME --name NAME --platform android|ios|web\n"
               "                                  [--store-url URL] [--timezone ZONE] [--currency CODE]\n\n"
               "Creates the app (and the organization when it is new) and prints one JSON object:\n"
               "org_id, app_id, app_key (public, sent by SDKs), app_secret (server-to-server; never\n"
               "in an app), signing_secret (signs SDK requests when the app requires signatures).\n"
               "--timezone (IANA, default UTC) and --currency (ISO 4217, default USD) set its reporting\n"
               "settings.timezone and settings.currency.\n"
               "Works while the daemon runs; it accepts the new keys within a second.\n");
}

/* ---------------------------------------------------------------- serve */

static void *server_thread(void *arg)
{
    umg_http_server_run(arg);
    return NULL;
}

static int parse_fsync(const char *s, umg_bus_config_t *bc)
{
    if (strcmp(s, "always") == 0) {
        bc->fsync_policy = UMG_FSYNC_ALWAYS;
        return UMG_OK;
    }
    if (strcmp(s, "never") == 0) {
        bc->fsync_policy = UMG_FSYNC_NEVER;
        return UMG_OK;
    }
    if (strncmp(s, "interval:", 9) == 0) {
        char *end;
        long ms = strtol(s + 9, &end, 10);
        if (*end == '\0' && ms >= 1 && ms <= 60000) {
            bc->fsync_policy = UMG_FSYNC_INTERVAL;
            bc->fsync_interval_ms = ms;
            return UMG_OK;
        }
    }
    return UMG_EINVAL;
}

/*
 * The web dashboard: `auto` looks for web/dist (with an index.html) in the source tree the
 * binary sits in (build/unmogrowp -> ../web/dist), then in the working directory, and serves
 * the API alone when neither is built; `off` never serves it; a directory must hold a build.
 */
static int open_web(const char *opt, const char *argv0, umg_http_static_t **out)
{
    *out = NULL;
    if (strcmp(opt, "off") == 0 || opt[0] == '\0') {
        umg_log(UMG_LOG_INFO, "web", "dashboard off (web=off): serving the API only");
        return UMG_OK;
    }
    char cand[2][4096];
    int ncand = 0;
    if (strcmp(opt, "auto") != 0) {
        snprintf(cand[ncand++], sizeof(cand[0]), "%s", opt);
    } else {
        char exe[3072];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n > 0) {
            exe[n] = '\0';
            char *slash = strrchr(exe, '/');
            if (slash != NULL) {
                *slash = '\0';
                snprintf(cand[ncand++], sizeof(cand[0]), "%s/../web/dist", exe);
            }
        }
        (void)argv0;
        snprintf(cand[ncand++], sizeof(cand[0]), "web/dist");
    }
    for (int i = 0; i < ncand; i++) {
        char index[4200];
        snprintf(index, sizeof(index), "%s/index.html", cand[i]);
        if (access(index, R_OK) != 0) {
            if (strcmp(opt, "auto") != 0) {
                fprintf(stderr, "unmogrowp serve: --web %s holds no index.html (build it with `make web`)\n", opt);
                return UMG_ENOENT;
            }
            continue;
        }
        char real[PATH_MAX];
        const char *dir = realpath(cand[i], real) != NULL ? real : cand[i];
        int rc = umg_http_static_open(dir, out);
        if (rc != UMG_OK) {
            fprintf(stderr, "unmogrowp serve: cannot load the dashboard from %s: %s\n", dir, umg_strerror(rc));
            return rc;
        }
        umg_log(UMG_LOG_INFO, "web", "dashboard at / from %s (%zu files, %lld bytes, %lld gzipped)", dir,
                umg_http_static_count(*out), (long long)umg_http_static_bytes(*out),
                (long long)umg_http_static_gz_bytes(*out));
        return UMG_OK;
    }
    umg_log(UMG_LOG_WARN, "web",
            "dashboard not built (no web/dist/index.html): serving the API only; `make web` builds it");
    return UMG_OK;
}

static const umg_http_route_t base_routes[] = {
    {"GET", "/c/", 1, umg_ingest_click},
    {"GET", "/v/", 1, umg_ingest_impression},
    {"POST", "/v1/touches", 0, umg_ingest_touches},
    {"GET", "/v1/export/touches", 0, umg_ingest_export_touches},
    {"POST", "/v1/events", 0, umg_ingest_events},
    {"GET", "/v1/live", 0, umg_live_ep},
    {"GET", "/v1/export/events", 0, umg_ingest_export},
    {"GET", "/healthz", 0, umg_ingest_healthz},
    {"GET", "/readyz", 0, umg_ingest_readyz},
    {"GET", "/metrics", 0, umg_ingest_metrics},
    {"GET", "/v1/attribution", 0, umg_attr_ep_attribution},
    {"GET", "/v1/export/installs", 0, umg_attr_ep_export_installs},
    {"GET", "/v1/reports/mta", 0, umg_attr_ep_report_mta},
    {"GET", "/v1/reports/overview", 0, umg_query_ep_overview},
    {"GET", "/v1/reports/cohorts", 0, umg_query_ep_cohorts},
    {"GET", "/v1/reports/activity", 0, umg_query_ep_activity},
    {"GET", "/v1/reports/funnel", 0, umg_query_ep_funnel},
    {"GET", "/v1/reports/fraud", 0, umg_query_ep_fraud},
    {"*", "/v1/costs", 0, umg_cost_ep_costs},
    {"*", "/v1/rates", 0, umg_cost_ep_rates},
};

static int cmd_serve(int argc, char **argv)
{
    serve_cfg_t cfg;
    char err[512];
    const size_t n = UMG_ARRAY_SIZE(serve_items);
    /* What no setting names keeps its module's default (the pipeline's helper sync, its rollup folds), not stack
     * garbage: until the fourteenth session the rollup log was folded at every batch, one row per transaction. */
    memset(&cfg, 0, sizeof(cfg));
    umg_pipeline_config_defaults(&cfg.pipeline);
    umg_config_defaults(serve_items, n, &cfg);
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},     {"listen", required_argument, NULL, 'l'},
        {"config", required_argument, NULL, 'c'},   {"threads", required_argument, NULL, 't'},
        {"tls-cert", required_argument, NULL, 'C'}, {"tls-key", required_argument, NULL, 'K'},
        {"web", required_argument, NULL, 'w'},      {"set", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    /* Pass 1: the config file, so flags override it whatever their order. getopt takes any unique start of a long
     * option ("--conf"), and so does this pass (it ignored one before: found in review). */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const char *file = NULL, *a = argv[i], *eq = strchr(a, '=');
        size_t nl = eq != NULL ? (size_t)(eq - a) : strlen(a);
        if (nl > 2 && strncmp(a, "--", 2) == 0 && strncmp("config", a + 2, nl - 2) == 0) {
            file = eq != NULL ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
        }
        if (file != NULL && umg_config_load_file(serve_items, n, &cfg, file, err, sizeof(err)) != UMG_OK) {
            fprintf(stderr, "unmogrowp serve: %s\n", err);
            return 2;
        }
    }
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        const char *key = NULL;
        switch (c) {
        case 'd': key = "data"; break;
        case 'l': key = "listen"; break;
        case 't': key = "threads"; break;
        case 'C': key = "http.tls_cert"; break;
        case 'K': key = "http.tls_key"; break;
        case 'w': key = "web"; break;
        case 'c': continue;
        case 'h': usage_serve(stdout); return 0;
        case 's': {
            /* The value whole, however long (a copy into a fixed buffer cut long lists: found in review). */
            const char *eq = strchr(optarg, '=');
            char *k = eq != NULL ? umg_strndup(optarg, (size_t)(eq - optarg)) : NULL;
            if (eq == NULL || k == NULL) {
                fprintf(stderr, "unmogrowp serve: --set takes KEY=VALUE, got '%s'\n", optarg);
                return 2;
            }
            int src = umg_config_set(serve_items, n, &cfg, k, eq + 1, err, sizeof(err));
            umg_free(k);
            if (src != UMG_OK) {
                fprintf(stderr, "unmogrowp serve: %s\n", err);
                return 2;
            }
            continue;
        }
        default: usage_serve(stderr); return 2;
        }
        if (umg_config_set(serve_items, n, &cfg, key, optarg, err, sizeof(err)) != UMG_OK) {
            fprintf(stderr, "unmogrowp serve: %s\n", err);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "unmogrowp serve: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (umg_log_level_parse(cfg.log_level, &umg_log_min_level) != UMG_OK) {
        fprintf(stderr, "unmogrowp serve: log_level must be debug, info, warn or error\n");
        return 2;
    }
    if (cfg.data == NULL || cfg.data[0] == '\0') {
        fprintf(stderr, "unmogrowp serve: data (--data) must name a directory\n");
        return 2;
    }
    umg_bus_config_t bc;
    umg_bus_config_defaults(&bc);
    if (parse_fsync(cfg.fsync, &bc) != UMG_OK) {
        fprintf(stderr, "unmogrowp serve: log.fsync must be always, never or interval:MS (1..60000)\n");
        return 2;
    }
    char logdir[4096];
    snprintf(logdir, sizeof(logdir), "%s/log", cfg.data);
    bc.dir = logdir;
    bc.partitions = (int)cfg.partitions;
    bc.segment_bytes = cfg.segment_bytes;
    bc.retention_ms = cfg.retention_ms;
    bc.retention_bytes = cfg.retention_bytes;
    bc.queue_bytes = cfg.queue_bytes;
    bc.dedupe_horizon_ms = cfg.dedupe_horizon_ms;
    bc.dedupe_max_ids = cfg.dedupe_max_ids;
    bc.hold_for_reader = 1; /* retention waits for the attribution pipeline (it says how far it got) */

    int rc = 1;
    umg_ingest_t ing;
    memset(&ing, 0, sizeof(ing));
    ing.cfg = cfg.ingest;
    ing.cfg.max_body_bytes = cfg.http.max_body_bytes;
    ing.bus_ops = &umg_bus_log_ops;
    umg_http_server_t *srv = NULL;
    pthread_t tid;
    int started = 0;
    umg_privacy_runner_t *privacy = NULL;
    umg_store_t *store = NULL;
    umg_pipeline_t *pipeline = NULL;
    umg_attr_worker_t *attr_worker = NULL;
    umg_rollup_t *rollup = NULL;
    umg_tz_cache_t *tzc = NULL;
    umg_http_static_t *web = NULL;
    umg_live_t *live = NULL;
    umg_fraud_scorer_t *scorer = NULL;
    fraud_ctx_t fraud_ctx = {0};
    umg_iplists_t *iplists = NULL;
    umg_botua_t *botua = NULL;
    umg_sig_cache_t *sig_cache = NULL;
    int lock_fd = -1;

    /* Signals are blocked in every thread and taken by sigwait in this one; blocked before any
     * thread starts (the admin, cost and report workers inherit the mask). */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGQUIT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (umg_mkdirs(cfg.data, 0755) != UMG_OK) {
        fprintf(stderr, "unmogrowp serve: cannot create the data directory %s: %s\n", cfg.data, strerror(errno));
        goto done;
    }
    {
        /* One daemon per data directory: a second one would append to the same log segments. */
        char path[4096];
        long holder = 0;
        snprintf(path, sizeof(path), "%s/daemon.lock", cfg.data);
        int lrc = umg_file_lock(path, &lock_fd, &holder);
        if (lrc == UMG_EEXIST) {
            fprintf(stderr,
                    "unmogrowp serve: another daemon (pid %ld) is serving %s; stop it first, or give this one "
                    "another --data\n",
                    holder, cfg.data);
            goto done;
        }
        if (lrc != UMG_OK) {
            fprintf(stderr, "unmogrowp serve: cannot lock %s\n", path);
            goto done;
        }
    }
    if (umg_apps_open(cfg.data, &ing.apps) != UMG_OK) {
        goto done;
    }
    char *end1, *end2;
    umg_limits_config_t lcfg = {.rate_eps = strtod(cfg.rate_eps, &end1),
                                .rate_burst = strtod(cfg.rate_burst, &end2),
                                .monthly_quota = cfg.monthly_quota};
    if (*end1 || *end2 || !(lcfg.rate_eps >= 0 && lcfg.rate_eps <= 1e9) ||
        !(lcfg.rate_burst >= 0 && lcfg.rate_burst <= 1e12)) {
        fprintf(stderr, "unmogrowp serve: limits.rate and limits.burst must be non-negative numbers\n");
        goto done;
    }
    if (*cfg.encrypt_fields && !*cfg.pii_key_file) {
        fprintf(stderr, "unmogrowp serve: privacy.encrypt_fields needs privacy.pii_key_file\n");
        goto done;
    }
    if (*cfg.pii_key_file) {
        if (umg_pii_load(cfg.pii_key_file, cfg.encrypt_fields, &ing.pii, err, sizeof(err)) != UMG_OK) {
            fprintf(stderr, "unmogrowp serve: %s\n", err);
            goto done;
        }
        cfg.privacy.pii = ing.pii;
    }
    if (umg_auth_open(cfg.data, &cfg.auth, ing.apps, &ing.auth, err, sizeof(err)) != UMG_OK) {
        fprintf(stderr, "unmogrowp serve: %s\n", err);
        goto done;
    }
    if (umg_iplists_new(cfg.ip_lists, &iplists, err, sizeof(err)) != UMG_OK ||
        umg_iplists_reload(iplists, err, sizeof(err)) != UMG_OK ||
        umg_botua_compile(cfg.bot_ua_patterns, &botua, err, sizeof(err)) != UMG_OK) {
        fprintf(stderr, "unmogrowp serve: %s\n", err);
        goto done;
    }
    if (umg_sig_cache_new((size_t)cfg.sig_replay_entries, &sig_cache) != UMG_OK) {
        fprintf(stderr, "unmogrowp serve: out of memory for the signature replay cache\n");
        goto done;
    }
    ing.iplists = iplists;
    ing.botua = botua;
    ing.sig_cache = sig_cache;
    if (umg_limits_new(&ing.limits) != UMG_OK ||
        umg_admin_new(cfg.data, ing.auth, ing.limits, &lcfg, &ing.admin) != UMG_OK) {
        fprintf(stderr, "unmogrowp serve: cannot start the admin API\n");
        goto done;
    }
    if (umg_cost_ep_start(cfg.data) != UMG_OK || umg_query_ep_start(cfg.data) != UMG_OK) {
        fprintf(stderr, "unmogrowp serve: cannot start the costs API\n");
        goto done;
    }
    umg_http_route_t routes[UMG_ARRAY_SIZE(base_routes) + 64];
    size_t nroutes = 0;
    for (size_t i = 0; i < UMG_ARRAY_SIZE(base_routes); i++) {
        routes[nroutes++] = base_routes[i];
    }
    for (size_t i = 0; i < umg_admin_nroutes && nroutes < UMG_ARRAY_SIZE(routes); i++) {
        routes[nroutes++] = umg_admin_routes[i];
    }
    if (open_web(cfg.web, argc > 0 ? argv[0] : NULL, &web) != UMG_OK) {
        goto done;
    }
    if (umg_live_new(2048, 2048, &live) != UMG_OK) {
        fprintf(stderr, "unmogrowp serve: out of memory for the live feed\n");
        goto done;
    }
    umg_live_set_head(live, (uint64_t)umg_now_us()); /* a Last-Event-ID of an earlier start is not taken */
    ing.live = live;
    umg_http_hooks_t hooks = {
        .thread_init = umg_ingest_thread_init, .thread_fini = umg_ingest_thread_fini, .server_data = &ing, .web = web};
    if (umg_http_server_new(&cfg.http, routes, nroutes, &hooks, &srv) != UMG_OK) {
        goto done;
    }
    if (pthread_create(&tid, NULL, server_thread, srv) != 0) {
        goto done;
    }
    started = 1;
    {
        char path[4096], text[128];
        snprintf(path, sizeof(path), "%s/daemon.addr", cfg.data);
        int tn = snprintf(text, sizeof(text), "%s\n", umg_http_server_addr(srv));
        umg_write_file_atomic(path, text, (size_t)tn);
    }
    umg_log(UMG_LOG_INFO, "serve", "listening on %s%s (%zu apps, data %s)", umg_http_server_addr(srv),
            cfg.http.tls_cert && *cfg.http.tls_cert ? " with TLS" : "", umg_apps_count(ing.apps), cfg.data);
    /* Recovery runs while /healthz already answers and /readyz says 503. */
    if (ing.bus_ops->open(&bc, &ing.bus) != UMG_OK) {
        umg_log(UMG_LOG_ERROR, "serve", "cannot open the event log in %s", logdir);
        goto done;
    }
    {
        char storedir[4096];
        snprintf(storedir, sizeof(storedir), "%s/attr", cfg.data);
        umg_store_config_t sc = {.map_bytes = cfg.store_map_bytes, .device_cache_bytes = cfg.device_cache_bytes};
        if (umg_store_open(storedir, &sc, &store) != UMG_OK ||
            umg_pipeline_new(&cfg.pipeline, store, ing.bus_ops, ing.bus, ing.apps, ing.pii, &pipeline) != UMG_OK ||
            umg_tz_cache_new(&tzc) != UMG_OK || umg_rollup_new(&rollup) != UMG_OK ||
            umg_pipeline_set_reports(pipeline, rollup, tzc) != UMG_OK ||
            umg_fraud_scorer_new(cfg.data, ing.apps, &scorer) != UMG_OK) {
            umg_log(UMG_LOG_ERROR, "serve", "cannot start the attribution pipeline (store in %s)", storedir);
            goto done;
        }
        umg_pipeline_fraud_t fh = {
            .ip_listed = fraud_ip_listed, .bot_ua = fraud_bot_ua, .score = fraud_score, .ctx = &fraud_ctx};
        fraud_ctx.ing = &ing;
        fraud_ctx.scorer = scorer;
        umg_pipeline_set_fraud(pipeline, &fh);
        umg_pipeline_set_live(pipeline, live);
        if (umg_pipeline_start(pipeline) != UMG_OK) {
            umg_log(UMG_LOG_ERROR, "serve", "cannot start the attribution pipeline (store in %s)", storedir);
            goto done;
        }
        ing.store = store;
        ing.pipeline = pipeline;
        ing.rollup = rollup;
        ing.tzc = tzc;
        if (umg_attr_worker_start(&attr_worker) != UMG_OK) {
            umg_log(UMG_LOG_ERROR, "serve", "cannot start the report worker");
            goto done;
        }
        ing.attr_worker = attr_worker;
        cfg.privacy.forgotten = umg_pipeline_forgotten;
        cfg.privacy.done = umg_pipeline_forget_done;
        cfg.privacy.forget_ctx = pipeline;
    }
    if (umg_privacy_runner_start(cfg.data, ing.bus_ops, ing.bus, &cfg.privacy, &privacy) != UMG_OK) {
        umg_log(UMG_LOG_ERROR, "serve", "cannot start the privacy thread");
        goto done;
    }
    atomic_store_explicit(&ing.ready, 1, memory_order_release);
    umg_log(UMG_LOG_INFO, "serve", "ready");
    /* This thread also refreshes the app registry, off the event loops (SQLite may wait). */
    reload_t reload = {.lists = iplists};
    for (;;) {
        struct timespec tick = {0, 250 * 1000 * 1000};
        int sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig < 0) {
            umg_apps_refresh(ing.apps);
            umg_auth_refresh(ing.auth);
            umg_admin_tick(ing.admin);
            reload_step(&reload, 0);
        } else if (sig == SIGHUP) {
            /* The IP lists are rebuilt off the event loops and this thread, and swapped in; other settings take
             * a restart. */
            reload_step(&reload, 1);
        } else {
            break;
        }
    }
    umg_log(UMG_LOG_INFO, "serve", "stopping");
    if (reload.running) {
        pthread_join(reload.th, NULL);
    }
    /* New ingest gets 503 not_ready; what is queued is written and answered while the loops
     * still run, so no client whose events were stored sees a closed connection. */
    atomic_store_explicit(&ing.ready, 0, memory_order_release);
    for (int i = 0; i < 500; i++) {
        umg_bus_stats_t st;
        ing.bus_ops->stats(ing.bus, &st);
        if (st.queue_bytes == 0) {
            break;
        }
        usleep(10000);
    }
    usleep(100000);
    rc = 0;
done:
    /* Queued reports are answered while the loops still run. */
    umg_attr_worker_stop(attr_worker);
    umg_cost_ep_stop();
    umg_query_ep_stop(); /* after the report worker stopped */
    if (srv != NULL) {
        umg_http_server_stop(srv);
    }
    if (started) {
        pthread_join(tid, NULL);
    }
    umg_privacy_runner_stop(privacy);
    umg_pipeline_free(pipeline); /* stops it: the batch in hand is committed or undone */
    umg_fraud_scorer_free(scorer);
    umg_store_close(store);
    umg_rollup_free(rollup);
    /* Completes what was queued; the completions find their loops stopped and are dropped. */
    if (ing.bus != NULL) {
        ing.bus_ops->close(ing.bus);
    }
    umg_http_server_free(srv);
    umg_http_static_free(web);
    umg_live_free(live);
    umg_attr_worker_free(attr_worker);
    umg_tz_cache_free(tzc);
    umg_admin_free(ing.admin);
    umg_limits_free(ing.limits);
    umg_auth_close(ing.auth);
    umg_apps_close(ing.apps);
    umg_pii_free(ing.pii);
    umg_iplists_free(iplists);
    umg_botua_free(botua);
    umg_sig_cache_free(sig_cache);
    umg_file_unlock(lock_fd); /* last: everything above is written and closed */
    umg_config_free(serve_items, n, &cfg);
    return rc;
}

/* ---------------------------------------------------------------- admin */

static int cmd_app_create(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"org", required_argument, NULL, 'o'},
        {"name", required_argument, NULL, 'n'},
        {"platform", required_argument, NULL, 'p'},
        {"store-url", required_argument, NULL, 'u'},
        {"timezone", required_argument, NULL, 'z'},
        {"currency", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *data = NULL;
    umg_app_spec_t spec = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'o': spec.org = optarg; break;
        case 'n': spec.name = optarg; break;
        case 'p': spec.platform = optarg; break;
        case 'u': spec.store_url = optarg; break;
        case 'z': spec.timezone = optarg; break;
        case 'c': spec.currency = optarg; break;
        case 'h': usage_app_create(stdout); return 0;
        default: usage_app_create(stderr); return 2;
        }
    }
    if (data == NULL || spec.org == NULL || spec.name == NULL || spec.platform == NULL) {
        fprintf(stderr, "unmogrowp admin app create: --data, --org, --name and --platform are required\n");
        usage_app_create(stderr);
        return 2;
    }
    umg_buf_t out = {0};
    char msg[512] = "";
    int rc = umg_apps_create(data, &spec, &out, msg, sizeof(msg));
    if (rc != UMG_OK) {
        fprintf(stderr, "unmogrowp admin app create: %s\n", msg[0] ? msg : umg_strerror(rc));
        umg_buf_free(&out);
        return rc == UMG_EEXIST ? 3 : 1;
    }
    printf("%.*s\n", (int)out.len, out.ptr);
    umg_buf_free(&out);
    return 0;
}

static int cmd_app_list(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const char *data = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd') {
            data = optarg;
        } else {
            printf("Usage: unmogrowp admin app list --data DIR\n\nPrints a JSON array of apps with their keys.\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (data == NULL) {
        fprintf(stderr, "unmogrowp admin app list: --data is required\n");
        return 2;
    }
    if (!umg_meta_exists(data, "unmogrowp admin app list")) {
        return 1;
    }
    umg_buf_t out = {0};
    int rc = umg_apps_list(data, &out);
    if (rc == UMG_OK) {
        printf("%.*s\n", (int)out.len, out.ptr);
    } else {
        fprintf(stderr, "unmogrowp admin app list: %s\n", umg_strerror(rc));
    }
    umg_buf_free(&out);
    return rc == UMG_OK ? 0 : 1;
}

static void usage_app_settings(FILE *f)
{
    fprintf(f, "Usage: unmogrowp admin app settings --data DIR --app APP_ID [--set KEY=VALUE ...]\n"
               "                                    [--source-window SOURCE=DAYS ...] [--json OBJECT]\n\n"
               "Shows, or changes, an app's attribution settings and prints them as one JSON object (the same\n"
               "settings and checks as PATCH /v1/apps/{app_id}, docs/api.md; audited as actor 'cli').\n"
               "  --set KEY=N             click_lookback_days (1-30), view_lookback_hours (1-168),\n"
               "                          reattribution_window_days (1-365), probabilistic_window_hours (1-24),\n"
               "                          reengagement_lookback_days (1-30) or reengagement_window_days (1-90);\n"
               "                          --set timezone=ZONE (IANA, such\n"
               "                          as Europe/Berlin) or currency=CODE (ISO 4217, such as EUR);\n"
               "                          --set require_signature=true|false (signed SDK requests, docs/fraud.md)\n"
               "  --source-window S=DAYS  a source's own click window (1-30 days), used for its clicks that\n"
               "                          bring no lookback of their own; repeat for several sources. The list\n"
               "                          given replaces the stored one ('--json {\"source_click_lookback_days\":{}}'\n"
               "                          clears it)\n"
               "  --json OBJECT           settings members as JSON, e.g. '{\"redirect_allowlist\":[\"example.com\"]}'\n"
               "Works while the daemon runs: new touches and installs use the new windows within a second.\n");
}

static int cmd_app_settings(int argc, char **argv)
{
    static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                         {"app", required_argument, NULL, 'a'},
                                         {"set", required_argument, NULL, 's'},
                                         {"source-window", required_argument, NULL, 'w'},
                                         {"json", required_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *data = NULL, *app = NULL, *json = NULL;
    umg_buf_t sets = {0}, sources = {0}, body = {0};
    int c, bad = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        const char *eq = optarg ? strchr(optarg, '=') : NULL;
        char *end = NULL;
        long long v = eq ? strtoll(eq + 1, &end, 10) : 0;
        switch (c) {
        case 'd': data = optarg; break;
        case 'a': app = optarg; break;
        case 'j': json = optarg; break;
        case 's':
        case 'w':
            /* --set also takes text values (timezone=Europe/Berlin), sent as JSON strings. */
            if (eq == NULL || eq == optarg || (c == 'w' && (end == eq + 1 || *end != '\0'))) {
                fprintf(stderr, "unmogrowp admin app settings: --%s takes NAME=%s, got '%s'\n",
                        c == 's' ? "set" : "source-window", c == 's' ? "VALUE" : "INTEGER", optarg);
                bad = 1;
                break;
            }
            {
                umg_buf_t *b = c == 's' ? &sets : &sources;
                if (b->len) {
                    umg_buf_putc(b, ',');
                }
                umg_buf_json_str(b, optarg, (size_t)(eq - optarg));
                if (strcmp(eq + 1, "true") == 0 || strcmp(eq + 1, "false") == 0) {
                    umg_buf_printf(b, ":%s", eq + 1); /* require_signature=true */
                } else if (end == eq + 1 || *end != '\0') {
                    umg_buf_putc(b, ':');
                    umg_buf_json_str(b, eq + 1, strlen(eq + 1));
                } else {
                    umg_buf_printf(b, ":%lld", v);
                }
            }
            break;
        case 'h': usage_app_settings(stdout); return 0;
        default: usage_app_settings(stderr); return 2;
        }
    }
    if (!bad && (data == NULL || app == NULL)) {
        fprintf(stderr, "unmogrowp admin app settings: --data and --app are required\n");
        bad = 1;
    }
    if (!bad && json != NULL && (sets.len || sources.len)) {
        fprintf(stderr, "unmogrowp admin app settings: give either --json or --set/--source-window\n");
        bad = 1;
    }
    int rc = UMG_OK;
    if (!bad && (sets.len || sources.len)) {
        umg_buf_putc(&body, '{');
        umg_buf_append(&body, sets.ptr, sets.len);
        if (sources.len) {
            umg_buf_printf(&body, "%s\"source_click_lookback_days\":{%.*s}", sets.len ? "," : "", (int)sources.len,
                           sources.ptr);
        }
        umg_buf_putc(&body, '}');
        umg_buf_putc(&body, '\0');
        json = body.ptr;
    }
    umg_buf_t out = {0};
    if (!bad && !umg_meta_exists(data, "unmogrowp admin app settings")) {
        rc = UMG_ENOENT;
    } else if (!bad) {
        rc = umg_admin_cli_app_settings(data, app, json, &out);
        if (rc == UMG_OK) {
            printf("%.*s\n", (int)out.len, out.ptr);
        } else {
            fprintf(stderr, "unmogrowp admin app settings: %.*s\n", (int)out.len, out.ptr);
        }
    }
    umg_buf_free(&out);
    umg_buf_free(&sets);
    umg_buf_free(&sources);
    umg_buf_free(&body);
    return bad ? 2 : rc == UMG_OK ? 0 : 1;
}

static void usage_app_fraud(FILE *f)
{
    fprintf(f, "Usage: unmogrowp admin app fraud --data DIR --app APP_ID [--json OBJECT]\n\n"
               "Shows, or changes, an app's fraud settings and prints them as one JSON object: the same settings\n"
               "and checks as PUT /v1/apps/{app_id}/fraud (docs/fraud.md); audited as actor 'cli'.\n"
               "  --json OBJECT   members to change, e.g. '{\"rules\":{\"click_spam\":{\"action\":\"flag\"}},\n"
               "                  \"model\":{\"mode\":\"shadow\",\"shadow_sample\":0.05}}'\n"
               "Works while the daemon runs: new records use the new settings within a second.\n");
}

static int cmd_app_fraud(int argc, char **argv)
{
    static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                         {"app", required_argument, NULL, 'a'},
                                         {"json", required_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *data = NULL, *app = NULL, *json = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'a': app = optarg; break;
        case 'j': json = optarg; break;
        case 'h': usage_app_fraud(stdout); return 0;
        default: usage_app_fraud(stderr); return 2;
        }
    }
    if (data == NULL || app == NULL) {
        fprintf(stderr, "unmogrowp admin app fraud: --data and --app are required\n");
        return 2;
    }
    if (!umg_meta_exists(data, "unmogrowp admin app fraud")) {
        return 1;
    }
    umg_buf_t out = {0};
    int rc = umg_admin_cli_app_fraud(data, app, json, &out);
    fprintf(rc == UMG_OK ? stdout : stderr, "%s%.*s\n", rc == UMG_OK ? "" : "unmogrowp admin app fraud: ", (int)out.len,
            out.ptr);
    umg_buf_free(&out);
    return rc == UMG_OK ? 0 : 1;
}

static void usage_user_create(FILE *f)
{
    fprintf(f, "Usage: unmogrowp admin user create --data DIR --org NAME --email EMAIL\n"
               "                                   --role owner|admin|analyst|marketer|viewer [--apps ID,...]\n\n"
               "Creates a dashboard user in the organization (made when new) and prints one JSON object:\n"
               "user_id, org_id, email, role, apps. The password is read from standard input (the first\n"
               "line, 8 to 1024 bytes). --apps limits the user to those apps (app ids of the organization).\n"
               "Works while the daemon runs.\n");
}

static int cmd_user_create(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"org", required_argument, NULL, 'o'},
        {"email", required_argument, NULL, 'e'},
        {"role", required_argument, NULL, 'r'},
        {"apps", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *data = NULL, *org = NULL, *email = NULL, *role = NULL, *apps = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'o': org = optarg; break;
        case 'e': email = optarg; break;
        case 'r': role = optarg; break;
        case 'a': apps = optarg; break;
        case 'h': usage_user_create(stdout); return 0;
        default: usage_user_create(stderr); return 2;
        }
    }
    if (data == NULL || org == NULL || email == NULL || role == NULL) {
        fprintf(stderr, "unmogrowp admin user create: --data, --org, --email and --role are required\n");
        usage_user_create(stderr);
        return 2;
    }
    umg_role_t r = umg_role_parse(role, strlen(role));
    if (r == UMG_ROLE_NONE) {
        fprintf(stderr, "unmogrowp admin user create: --role must be owner, admin, analyst, marketer or viewer\n");
        return 2;
    }
    char password[1100];
    if (fgets(password, sizeof(password), stdin) == NULL) {
        fprintf(stderr, "unmogrowp admin user create: give the password on standard input\n");
        return 2;
    }
    password[strcspn(password, "\r\n")] = '\0';
    sqlite3 *db = NULL;
    if (umg_meta_open(data, &db) != UMG_OK) {
        fprintf(stderr, "unmogrowp admin user create: cannot open %s/meta.db\n", data);
        return 1;
    }
    umg_buf_t out = {0};
    char msg[256] = "", org_pid[40];
    const char *field = NULL;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? UMG_OK : UMG_EIO;
    int64_t org_id = rc == UMG_OK ? umg_meta_org_by_name(db, org, 1, org_pid, sizeof(org_pid)) : -1;
    if (org_id < 0) {
        snprintf(msg, sizeof(msg), "cannot open or create the organization: %s", sqlite3_errmsg(db));
        rc = UMG_EIO;
    } else {
        umg_meta_user_t u = {.org_id = org_id,
                             .email = email,
                             .password = password,
                             .password_len = strlen(password),
                             .role = r,
                             .apps = apps};
        rc = umg_meta_user_create(db, &u, &out, &field, msg, sizeof(msg));
    }
    if (rc == UMG_OK) {
        umg_audit_t a = {.org_id = org_id, .actor = "cli", .action = "user.create", .target = email, .outcome = "ok"};
        rc = umg_meta_audit(db, &a);
    }
    if (rc == UMG_OK && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(msg, sizeof(msg), "%s", sqlite3_errmsg(db));
        rc = UMG_EIO;
    }
    if (rc != UMG_OK) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        fprintf(stderr, "unmogrowp admin user create: %s%s%s\n", field ? "--" : "", field ? field : "",
                msg[0] ? (field ? ": " : "") : umg_strerror(rc));
        if (msg[0]) {
            fprintf(stderr, "%s\n", msg);
        }
    } else {
        printf("%.*s\n", (int)out.len, out.ptr);
    }
    memset(password, 0, sizeof(password));
    umg_buf_free(&out);
    sqlite3_close(db);
    return rc == UMG_OK ? 0 : rc == UMG_EEXIST ? 3 : 1;
}

static void usage_forget(FILE *f)
{
    fprintf(f, "Usage: unmogrowp admin privacy forget --data DIR --app APP_ID --id KIND=VALUE [--id KIND=VALUE]...\n\n"
               "Records a forget request (GDPR / CCPA erasure) for the device with these identifiers;\n"
               "KIND is idfa, idfv, gaid, android_id, oaid, custom_id or user_id. The running daemon\n"
               "removes the device's events from the log within privacy.check_interval plus one log\n"
               "rewrite (or when it next starts). Prints {request_id, status, identifiers, created_at}.\n");
}

static int cmd_forget(int argc, char **argv)
{
    static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                         {"app", required_argument, NULL, 'a'},
                                         {"id", required_argument, NULL, 'i'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *data = NULL, *app = NULL;
    umg_meta_id_t ids[64];
    size_t n = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'a': app = optarg; break;
        case 'i': {
            char *eq = strchr(optarg, '=');
            if (eq == NULL || n == UMG_ARRAY_SIZE(ids)) {
                fprintf(stderr, "unmogrowp admin privacy forget: --id takes KIND=VALUE (at most 64)\n");
                return 2;
            }
            *eq = '\0';
            ids[n++] = (umg_meta_id_t){optarg, eq + 1};
            break;
        }
        case 'h': usage_forget(stdout); return 0;
        default: usage_forget(stderr); return 2;
        }
    }
    if (data == NULL || app == NULL || n == 0) {
        fprintf(stderr, "unmogrowp admin privacy forget: --data, --app and at least one --id are required\n");
        return 2;
    }
    if (!umg_meta_exists(data, "unmogrowp admin privacy forget")) {
        return 1;
    }
    sqlite3 *db = NULL;
    uint8_t key[32];
    if (umg_meta_open(data, &db) != UMG_OK || umg_meta_privacy_key(data, key) != UMG_OK) {
        fprintf(stderr, "unmogrowp admin privacy forget: cannot open %s/meta.db or its privacy key\n", data);
        sqlite3_close(db);
        return 1;
    }
    sqlite3_stmt *st = NULL;
    int64_t app_id = -1, org_id = -1;
    if (sqlite3_prepare_v2(db, "SELECT id, org_id FROM apps WHERE public_id = ?", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, app, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            app_id = sqlite3_column_int64(st, 0);
            org_id = sqlite3_column_int64(st, 1);
        }
    }
    sqlite3_finalize(st);
    if (app_id < 0) {
        fprintf(stderr, "unmogrowp admin privacy forget: no app %s\n", app);
        sqlite3_close(db);
        return 1;
    }
    umg_buf_t out = {0};
    char msg[160] = "";
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? UMG_OK : UMG_EIO;
    rc = rc ? rc : umg_meta_forget_create(db, key, org_id, app_id, "cli", ids, n, &out, msg, sizeof(msg));
    if (rc == UMG_OK) {
        umg_audit_t a = {.org_id = org_id, .actor = "cli", .action = "privacy.forget", .target = app, .outcome = "ok"};
        rc = umg_meta_audit(db, &a);
    }
    if (rc == UMG_OK && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = UMG_EIO;
    }
    if (rc != UMG_OK) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        fprintf(stderr, "unmogrowp admin privacy forget: %s\n", msg[0] ? msg : umg_strerror(rc));
    } else {
        printf("%.*s\n", (int)out.len, out.ptr);
    }
    umg_buf_free(&out);
    sqlite3_close(db);
    return rc == UMG_OK ? 0 : rc == UMG_EINVAL ? 2 : 1;
}

static int cmd_config_docs(void)
{
    umg_buf_t out = {0};
    int rc = umg_config_markdown(serve_items, UMG_ARRAY_SIZE(serve_items), &out);
    if (rc == UMG_OK) {
        fwrite(out.ptr, 1, out.len, stdout);
    }
    umg_buf_free(&out);
    return rc == UMG_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    /* What the daemon and the commands write is theirs alone: meta.db holds app secrets and password hashes, the
     * log raw IPs and device ids (they were 0644 in a 0755 directory: found in review). */
    umask(077);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage_main(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("unmogrowp %s\n", UMG_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "serve") == 0) {
        return cmd_serve(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "import") == 0) {
        return umg_cost_cli_import(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "gen") == 0) {
        return umg_gen_cli(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "fraud") == 0 && argc >= 3 && strcmp(argv[2], "train") == 0) {
        return umg_fraud_train_cli(argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "fraud") == 0 && (argc < 3 || is_help(argv[2]))) { /* its one subcommand's help */
        char *help[] = {"train", "--help", NULL};
        return umg_fraud_train_cli(2, help) == 0 && argc >= 3 ? 0 : 2;
    }
    if (strcmp(argv[1], "admin") == 0 && argc >= 4 && strcmp(argv[2], "app") == 0) {
        if (strcmp(argv[3], "create") == 0) {
            return cmd_app_create(argc - 3, argv + 3);
        }
        if (strcmp(argv[3], "list") == 0) {
            return cmd_app_list(argc - 3, argv + 3);
        }
        if (strcmp(argv[3], "settings") == 0) {
            return cmd_app_settings(argc - 3, argv + 3);
        }
        if (strcmp(argv[3], "fraud") == 0) {
            return cmd_app_fraud(argc - 3, argv + 3);
        }
    }
    if (strcmp(argv[1], "admin") == 0 && argc >= 4 && strcmp(argv[2], "privacy") == 0 &&
        strcmp(argv[3], "forget") == 0) {
        return cmd_forget(argc - 3, argv + 3);
    }
    if (strcmp(argv[1], "admin") == 0 && argc >= 4 && strcmp(argv[2], "user") == 0 && strcmp(argv[3], "create") == 0) {
        return cmd_user_create(argc - 3, argv + 3);
    }
    if (strcmp(argv[1], "admin") == 0) {
        if (argc >= 3 && is_help(argv[argc - 1])) {
            usage_app_create(stdout);
            printf("\nAlso: unmogrowp admin app list --data DIR\n\n");
            usage_app_settings(stdout);
            printf("\n");
            usage_app_fraud(stdout);
            printf("\n");
            usage_user_create(stdout);
            printf("\n");
            usage_forget(stdout);
            return 0;
        }
        fprintf(stderr,
                "unmogrowp admin: expected 'app create', 'app list', 'app settings', 'app fraud', 'user create' or "
                "'privacy forget' ('unmogrowp admin --help' shows them all)\n");
        return 2;
    }
    if (strcmp(argv[1], "config") == 0 && (argc < 3 || is_help(argv[argc - 1]))) {
        fprintf(argc < 3 ? stderr : stdout, "Usage: unmogrowp config docs\n\n"
                                            "Prints the configuration reference (every key of 'serve --set' and "
                                            "--config, with its default and range) as Markdown. No options.\n");
        return argc < 3 ? 2 : 0;
    }
    if (strcmp(argv[1], "config") == 0 && strcmp(argv[2], "docs") == 0) {
        return cmd_config_docs();
    }
    fprintf(stderr, "unmogrowp: unknown command '%s'\n\n", argv[1]);
    usage_main(stderr);
    return 2;
}
