/*
 * gen_cli.c - owns `unmogrowp gen`: its flags, finding the daemon and the
 * app's secret, cutting the generator's items into batches for
 * POST /v1/touches and POST /v1/events, the rate limit, the progress display
 * and the one-line JSON summary (docs/gen.md).
 *
 * Batches keep the generator's order within each kind, and no events batch
 * leaves before every touch generated ahead of its events has left (the
 * touches batch is flushed first), so the daemon never sees an install
 * before the click that earned it. --strict-order instead flushes whenever
 * the kind changes, which keeps the global order exactly but makes small
 * requests.
 */
#include "gen_int.h"
#include "umg_apps.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DAY_MS INT64_C(86400000)
#define BODY_MAX 1000000 /* under the daemon's default http.max_body_bytes (1 MiB) */
#define PRINT_REJECTED 5 /* rejected items shown on stderr */
#define MAX_AGE_MS (30 * DAY_MS)
#define MAX_FUTURE_MS (10 * 60 * 1000)

typedef struct cli_s {
    umg_gen_opts_t o;
    const char *url, *addr, *app, *secret, *signing, *app_json, *data, *out, *platform, *now;
    const char *labels, *ip_list, *kinds; /* --fraud-labels, --fraud-ip-list, --fraud-kinds */
    int64_t rate, batch;
    int strict, quiet, sign;
    /* resolved */
    char host[256], port[16], prefix[256];
    char app_id[64], app_secret[512], app_key[512], app_platform[16];
    char app_signing[512]; /* the signing secret (ss_...), "" when unknown */
} cli_t;

volatile sig_atomic_t umg__gen_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    umg__gen_interrupted = 1;
}

/* ---------------------------------------------------------------- usage */

/* "  FLAG  text" with the text wrapped at 100 columns under itself. */
static void wrap(FILE *f, const char *flag, const char *text)
{
    fprintf(f, "  %-18s ", flag);
    int col = 21;
    for (const char *p = text; *p;) {
        size_t w = strcspn(p, " ");
        if (col > 21 && col + 1 + (int)w > 100) {
            fprintf(f, "\n%21s", "");
            col = 21;
        } else if (col > 21) {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, w, f);
        col += (int)w;
        p += w;
        p += *p == ' ';
    }
    fputc('\n', f);
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: unmogrowp gen [--url http://HOST:PORT | --addr HOST:PORT | --data DIR]\n"
               "                     [--secret APP_SECRET | --app-json FILE | --data DIR [--app APP_ID]]\n"
               "                     [--devices N] [--days N] [--seed N] [--now TIME] [--rate N] [--batch N]\n"
               "                     [--out FILE] [options]\n\n"
               "Generates realistic traffic for one app - clicks and impressions from many networks,\n"
               "campaigns, adsets and countries; attributed and organic installs; sessions on a retention\n"
               "curve; in-app events and purchases - and sends it to a running daemon (POST /v1/touches and\n"
               "POST /v1/events with the app secret), or writes it to a request file with --out. The same\n"
               "options, --seed and --now give the same bytes. See docs/gen.md.\n\n"
               "Where to send (plain HTTP only: TLS is not supported; use the daemon's local port):\n"
               "  --url URL          http://HOST:PORT[/PREFIX] of the daemon\n"
               "  --addr HOST:PORT   the same as --url http://HOST:PORT ([::1]:8080 for IPv6)\n"
               "  --data DIR         the daemon's data directory: its address from DIR/daemon.addr, and\n"
               "                     the app's secret and platform from DIR/meta.db (with --app, or its only app)\n"
               "  --app APP_ID       the app (app_...), to pick it in --data and to check --app-json\n"
               "  --secret SECRET    the app secret (as_...); events' ip is taken only with it\n"
               "  --key KEY          the app key (ak_...; --app-json and --data give it too): spoofed\n"
               "                     installs (--fraud) are sent with it, as an SDK sends\n"
               "  --signing-secret S the app's signing secret (ss_...; --app-json and --data give it\n"
               "                     too), for --sign and the signed spoofed installs of --fraud\n"
               "  --app-json FILE    the app's id, secret and platform from the JSON that\n"
               "                     'unmogrowp admin app create' prints\n"
               "  --out FILE         write requests to FILE instead of sending ('-': standard output), one\n"
               "                     per line: 'POST /v1/touches<TAB>{...}' (no daemon or secret needed)\n\n"
               "What to generate:\n"
               "  --platform P       android or ios (default: the app's platform, else android)\n"
               "  --now TIME         the end of history: RFC 3339 or Unix milliseconds (default: now)\n");
    for (size_t i = 0; i < umg_gen_config_nitems; i++) {
        const umg_config_item_t *it = &umg_gen_config_items[i];
        char flag[40], text[512];
        snprintf(flag, sizeof(flag), "--%s N", it->name);
        snprintf(text, sizeof(text), "%s (%lld..%lld, default %s)", it->help, (long long)it->min, (long long)it->max,
                 it->def);
        wrap(f, flag, text);
    }
    fprintf(f, "\nHow to send:\n"
               "  --batch N          items per request, 1..1000 (default 500)\n"
               "  --rate N           items per second at most, 0 = unlimited (default 0)\n"
               "  --strict-order     send in exact time order, flushing a batch whenever the kind changes\n"
               "                     (many small requests); by default only touches may go ahead of events\n"
               "  --quiet            no progress display on standard error\n"
               "  --sign             sign every request with the app's signing secret (X-Signature,\n"
               "                     X-Signature-Timestamp); the daemon checks signatures only on requests\n"
               "                     with the app key, so its batches (sent with the app secret) pass either way\n\n"
               "Fraud (see docs/gen.md):\n"
               "  --fraud-kinds LIST with --fraud: only these kinds, of injection,flood,datacenter,bot,farm,spoof\n"
               "  --fraud-labels FILE  write a CSV label per install and click (honest ones too)\n"
               "  --fraud-ip-list FILE write the data-centre ranges of the datacenter kind, one CIDR a line\n\n"
               "Prints one JSON line on standard output: counts by kind, accepted, duplicates, rejected,\n"
               "seconds. Exit status 0 when every item was accepted (or written), 1 otherwise, 2 for bad usage.\n\n"
               "Example:\n"
               "  unmogrowp gen --addr 127.0.0.1:8080 --secret as_... --devices 2000 --days 14 --seed 1\n");
}

/* ---------------------------------------------------------------- setup */

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("unmogrowp gen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

/* HOST:PORT or [V6]:PORT. */
static int parse_hostport(cli_t *c, const char *s, size_t len, const char *dflt_port)
{
    const char *e = s + len, *colon = NULL, *hs = s, *he;
    if (len > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', len);
        if (rb == NULL) {
            return UMG_EINVAL;
        }
        hs = s + 1;
        he = rb;
        colon = rb + 1 < e && rb[1] == ':' ? rb + 1 : NULL;
        if (rb + 1 < e && colon == NULL) {
            return UMG_EINVAL;
        }
    } else {
        colon = memrchr(s, ':', len);
        he = colon ? colon : e;
    }
    const char *ps = colon ? colon + 1 : dflt_port, *pe = colon ? e : dflt_port + (dflt_port ? strlen(dflt_port) : 0);
    if (he == hs || ps == NULL || pe == ps || (size_t)(he - hs) >= sizeof(c->host) ||
        (size_t)(pe - ps) >= sizeof(c->port)) {
        return UMG_EINVAL;
    }
    long port = 0;
    for (const char *p = ps; p < pe; p++) {
        if (*p < '0' || *p > '9') {
            return UMG_EINVAL;
        }
        port = port < 100000 ? port * 10 + (*p - '0') : port;
    }
    if (port < 1 || port > 65535) {
        return UMG_EINVAL;
    }
    snprintf(c->host, sizeof(c->host), "%.*s", (int)(he - hs), hs);
    snprintf(c->port, sizeof(c->port), "%.*s", (int)(pe - ps), ps);
    return UMG_OK;
}

static int parse_url(cli_t *c, const char *url)
{
    if (strncasecmp(url, "https://", 8) == 0) {
        return fail("--url %s: TLS is not supported; give the daemon's plain HTTP address (http://...)", url);
    }
    if (strncasecmp(url, "http://", 7) != 0) {
        return fail("--url must look like http://HOST:PORT, got '%s'", url);
    }
    const char *h = url + 7, *slash = strchr(h, '/');
    size_t hlen = slash ? (size_t)(slash - h) : strlen(h);
    if (parse_hostport(c, h, hlen, "80") != UMG_OK) {
        return fail("--url must look like http://HOST:PORT, got '%s'", url);
    }
    if (slash != NULL) {
        size_t plen = strlen(slash);
        while (plen > 0 && slash[plen - 1] == '/') {
            plen--;
        }
        if (plen >= sizeof(c->prefix) || memchr(slash, '?', plen) || memchr(slash, ' ', plen)) {
            return fail("--url: the path '%s' is not usable as a prefix", slash);
        }
        snprintf(c->prefix, sizeof(c->prefix), "%.*s", (int)plen, slash);
    }
    return 0;
}

/* Reads a small file whole (NUL-terminated); caller frees. */
static char *read_small(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return NULL;
    }
    umg_buf_t b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len < (1 << 20)) {
        if (umg_buf_append(&b, chunk, n) != UMG_OK) {
            break;
        }
    }
    int bad = ferror(f) || b.len >= (1 << 20) || b.ptr == NULL;
    fclose(f);
    if (bad) {
        umg_buf_free(&b);
        errno = errno ? errno : EFBIG;
        return NULL;
    }
    *len = b.len;
    return b.ptr;
}

/* Takes app_id, app_secret and platform from one app object. */
static void take_app(cli_t *c, umg_slice_t obj)
{
    umg_slice_t v;
    if (umg__gen_json_member(obj, "app_id", &v) == UMG_OK) {
        umg__gen_json_string(v, c->app_id, sizeof(c->app_id));
    }
    if (umg__gen_json_member(obj, "app_secret", &v) == UMG_OK) {
        umg__gen_json_string(v, c->app_secret, sizeof(c->app_secret));
    }
    if (umg__gen_json_member(obj, "app_key", &v) == UMG_OK) {
        umg__gen_json_string(v, c->app_key, sizeof(c->app_key));
    }
    if (umg__gen_json_member(obj, "signing_secret", &v) == UMG_OK) {
        umg__gen_json_string(v, c->app_signing, sizeof(c->app_signing));
    }
    if (umg__gen_json_member(obj, "platform", &v) == UMG_OK) {
        umg__gen_json_string(v, c->app_platform, sizeof(c->app_platform));
    }
}

static int app_from_json(cli_t *c)
{
    size_t len;
    char *text = read_small(c->app_json, &len);
    if (text == NULL) {
        return fail("cannot read --app-json %s: %s", c->app_json, strerror(errno));
    }
    umg_slice_t v;
    if (umg__gen_json_member(umg_slice(text, len), "app_secret", &v) != UMG_OK) {
        umg_free(text);
        return fail("--app-json %s: not an object with app_id and app_secret (as 'unmogrowp admin app create' "
                    "prints)",
                    c->app_json);
    }
    take_app(c, umg_slice(text, len));
    umg_free(text);
    if (c->app != NULL && strcmp(c->app, c->app_id) != 0) {
        return fail("--app %s does not match the app in %s (%s)", c->app, c->app_json, c->app_id);
    }
    return 0;
}

static int app_from_data(cli_t *c)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof(path), "%s/meta.db", c->data);
    if (stat(path, &st) != 0) {
        return fail("--data %s: no meta.db there (%s)", c->data, strerror(errno));
    }
    umg_buf_t list = {0};
    int rc = umg_apps_list(c->data, &list);
    if (rc != UMG_OK) {
        umg_buf_free(&list);
        return fail("--data %s: cannot read the apps: %s", c->data, umg_strerror(rc));
    }
    umg_slice_t cur = umg_slice(list.ptr, list.len), el, v;
    int found = 0, count = 0;
    char id[64], ids[512] = "";
    while (umg__gen_json_next(&cur, &el) == UMG_OK) {
        count++;
        if (umg__gen_json_member(el, "app_id", &v) != UMG_OK || umg__gen_json_string(v, id, sizeof(id)) != UMG_OK) {
            continue;
        }
        size_t il = strlen(ids);
        snprintf(ids + il, sizeof(ids) - il, "%s%s", il ? ", " : "", id);
        if (c->app != NULL ? strcmp(c->app, id) == 0 : count == 1) {
            take_app(c, el);
            found = 1;
        }
    }
    umg_buf_free(&list);
    if (c->app == NULL && count > 1) {
        return fail("--data %s has %d apps (%s): name one with --app", c->data, count, ids);
    }
    if (!found) {
        return c->app ? fail("--data %s has no app %s (apps: %s)", c->data, c->app, ids[0] ? ids : "none")
                      : fail("--data %s has no app yet: create one with 'unmogrowp admin app create'", c->data);
    }
    return 0;
}

static int addr_from_data(cli_t *c)
{
    char path[4096];
    size_t len;
    snprintf(path, sizeof(path), "%s/daemon.addr", c->data);
    char *text = read_small(path, &len);
    if (text == NULL) {
        return fail("cannot read %s (is the daemon running with --data %s?): %s", path, c->data, strerror(errno));
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ')) {
        len--;
    }
    int rc = parse_hostport(c, text, len, NULL);
    umg_free(text);
    return rc == UMG_OK ? 0 : fail("%s does not hold HOST:PORT", path);
}

static int parse_now(cli_t *c)
{
    const char *s = c->now;
    char *end;
    if (s == NULL) {
        c->o.now_ms = umg_now_us() / 1000;
        return 0;
    }
    errno = 0;
    long long ms = strtoll(s, &end, 10);
    if (*s != '\0' && *end == '\0' && errno == 0) {
        c->o.now_ms = ms;
        return 0;
    }
    int64_t us;
    if (umg_time_parse_rfc3339(s, strlen(s), &us) != UMG_OK) {
        return fail("--now takes RFC 3339 (2026-11-27T10:00:00Z) or Unix milliseconds, got '%s'", s);
    }
    c->o.now_ms = us / 1000;
    return 0;
}

static int parse_flags(cli_t *c, int argc, char **argv)
{
    enum {
        O_URL = 256,
        O_ADDR,
        O_APP,
        O_SECRET,
        O_KEY,
        O_APPJSON,
        O_DATA,
        O_OUT,
        O_PLATFORM,
        O_NOW,
        O_RATE,
        O_BATCH,
        O_STRICT,
        O_QUIET,
        O_HELP,
        O_SIGN,
        O_LABELS,
        O_IPLIST,
        O_KINDS,
        O_SIGNING,
        O_TABLE /* last: the config table's flags take O_TABLE + i */
    };
    struct option opts[48] = {
        {"url", required_argument, NULL, O_URL},
        {"addr", required_argument, NULL, O_ADDR},
        {"app", required_argument, NULL, O_APP},
        {"secret", required_argument, NULL, O_SECRET},
        {"signing-secret", required_argument, NULL, O_SIGNING},
        {"key", required_argument, NULL, O_KEY},
        {"app-json", required_argument, NULL, O_APPJSON},
        {"data", required_argument, NULL, O_DATA},
        {"out", required_argument, NULL, O_OUT},
        {"platform", required_argument, NULL, O_PLATFORM},
        {"now", required_argument, NULL, O_NOW},
        {"rate", required_argument, NULL, O_RATE},
        {"batch", required_argument, NULL, O_BATCH},
        {"strict-order", no_argument, NULL, O_STRICT},
        {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, O_HELP},
        {"sign", no_argument, NULL, O_SIGN},
        {"fraud-labels", required_argument, NULL, O_LABELS},
        {"fraud-ip-list", required_argument, NULL, O_IPLIST},
        {"fraud-kinds", required_argument, NULL, O_KINDS},
    };
    size_t n = 0;
    while (opts[n].name != NULL) { /* the fixed options above; the generator's table follows */
        n++;
    }
    for (size_t i = 0; i < umg_gen_config_nitems && n + 1 < UMG_ARRAY_SIZE(opts); i++) {
        opts[n++] = (struct option){umg_gen_config_items[i].name, required_argument, NULL, O_TABLE + (int)i};
    }
    opts[n] = (struct option){NULL, 0, NULL, 0};
    c->batch = 500;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end, err[256];
        switch (ch) {
        case O_URL: c->url = optarg; break;
        case O_ADDR: c->addr = optarg; break;
        case O_APP: c->app = optarg; break;
        case O_SECRET: c->secret = optarg; break;
        case O_SIGNING: c->signing = optarg; break;
        case O_KEY: snprintf(c->app_key, sizeof(c->app_key), "%s", optarg); break;
        case O_APPJSON: c->app_json = optarg; break;
        case O_DATA: c->data = optarg; break;
        case O_OUT: c->out = optarg; break;
        case O_PLATFORM: c->platform = optarg; break;
        case O_NOW: c->now = optarg; break;
        case O_STRICT: c->strict = 1; break;
        case O_QUIET: c->quiet = 1; break;
        case O_SIGN: c->sign = 1; break;
        case O_LABELS: c->labels = optarg; break;
        case O_IPLIST: c->ip_list = optarg; break;
        case O_KINDS:
            c->kinds = optarg;
            if (umg_gen_fraud_kinds_parse(optarg, &c->o.fraud_kinds) != UMG_OK) {
                return fail("--fraud-kinds takes a comma-separated list of injection, flood, datacenter, bot, farm, "
                            "spoof; got '%s'",
                            optarg);
            }
            break;
        case 'h':
        case O_HELP: usage(stdout); return 1;
        case O_RATE:
        case O_BATCH: {
            errno = 0;
            long long v = strtoll(optarg, &end, 10);
            long long max = ch == O_RATE ? 100000000 : 1000, min = ch == O_RATE ? 0 : 1;
            if (*optarg == '\0' || *end != '\0' || errno != 0 || v < min || v > max) {
                return fail("--%s takes an integer from %lld to %lld, got '%s'", ch == O_RATE ? "rate" : "batch", min,
                            max, optarg);
            }
            *(ch == O_RATE ? &c->rate : &c->batch) = v;
            break;
        }
        default:
            if (ch >= O_TABLE && ch < O_TABLE + (int)umg_gen_config_nitems) {
                const umg_config_item_t *it = &umg_gen_config_items[ch - O_TABLE];
                if (umg_config_set(umg_gen_config_items, umg_gen_config_nitems, &c->o, it->name, optarg, err,
                                   sizeof(err)) != UMG_OK) {
                    return fail("--%s: %s", it->name, err);
                }
                break;
            }
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        return fail("unexpected argument '%s' (see --help)", argv[optind]);
    }
    return 0;
}

/* The fraud flags that go together. */
static int resolve_fraud(const cli_t *c)
{
    if (c->kinds != NULL && c->o.fraud_pct == 0) {
        return fail("--fraud-kinds needs --fraud PCT");
    }
    if (c->sign && c->out != NULL) {
        return fail("--sign signs requests sent to a daemon; a request file (--out) has no headers");
    }
    if ((double)c->o.devices * (double)c->o.fraud_pct / 100.0 > 999990.0) {
        return fail("--fraud %lld of --devices %lld makes more than 1,000,000 fraudulent installs",
                    (long long)c->o.fraud_pct, (long long)c->o.devices);
    }
    return 0;
}

/* Where to send, which app, which platform, and whether the history fits the server's window. */
static int resolve(cli_t *c)
{
    int rc;
    if (c->out != NULL && (c->url || c->addr)) {
        return fail("--out writes a file instead of sending: leave out --url and --addr");
    }
    if (c->url && c->addr) {
        return fail("give --url or --addr, not both");
    }
    if ((rc = resolve_fraud(c)) != 0) {
        return rc;
    }
    if ((c->app_json && (rc = app_from_json(c)) != 0)) {
        return rc;
    }
    if (c->secret != NULL) {
        snprintf(c->app_secret, sizeof(c->app_secret), "%s", c->secret);
    } else if (!c->app_secret[0] && c->data != NULL && (rc = app_from_data(c)) != 0) {
        return rc;
    }
    if (c->signing != NULL) {
        snprintf(c->app_signing, sizeof(c->app_signing), "%s", c->signing);
    }
    if (c->app != NULL && !c->app_id[0]) {
        snprintf(c->app_id, sizeof(c->app_id), "%s", c->app);
    }
    const char *pf = c->platform ? c->platform : c->app_platform[0] ? c->app_platform : "android";
    if (strcmp(pf, "android") == 0) {
        c->o.platform = UMG_GEN_ANDROID;
    } else if (strcmp(pf, "ios") == 0) {
        c->o.platform = UMG_GEN_IOS;
    } else {
        return fail(c->platform ? "--platform must be android or ios, got '%s'"
                                : "the app's platform is %s: give --platform android or ios",
                    pf);
    }
    if ((rc = parse_now(c)) != 0) {
        return rc;
    }
    if (c->o.now_ms < c->o.days * DAY_MS || c->o.now_ms > INT64_C(253402300799999)) {
        return fail("--now is out of range");
    }
    if (c->out != NULL) {
        return 0;
    }
    if (c->url) {
        rc = parse_url(c, c->url);
    } else if (c->addr) {
        rc = parse_hostport(c, c->addr, strlen(c->addr), NULL) == UMG_OK
                 ? 0
                 : fail("--addr must look like HOST:PORT, got '%s'", c->addr);
    } else if (c->data) {
        rc = addr_from_data(c);
    } else {
        rc = fail("where to? give --url, --addr or --data (or --out FILE to write requests)");
    }
    if (rc != 0) {
        return rc;
    }
    if (!c->app_secret[0]) {
        return fail("the app secret is needed: give --secret, --app-json or --data");
    }
    int spoofs = c->o.fraud_pct > 0 && (c->o.fraud_kinds == 0 || (c->o.fraud_kinds >> UMG_GEN_FRAUD_SPOOF & 1));
    if (spoofs && !c->app_key[0]) {
        fprintf(stderr, "unmogrowp gen: warning: without the app key (--key, --app-json or --data) spoofed installs "
                        "go with the app secret, and the daemon stores them as server-to-server installs (it checks "
                        "signatures only on requests with the app key)\n");
    }
    int64_t real = umg_now_us() / 1000;
    if (c->o.now_ms > real + MAX_FUTURE_MS) {
        return fail("--now is more than 10 minutes ahead of this clock: the daemon would refuse the items "
                    "(ts_in_future)");
    }
    if (c->o.now_ms - c->o.days * DAY_MS < real - MAX_AGE_MS + 3600 * 1000) {
        return fail("--now minus --days starts more than 30 days ago: the daemon refuses items that old "
                    "(ts_too_old, ingest.max_age); move --now closer or lower --days");
    }
    return 0;
}

/* ---------------------------------------------------------------- progress */

typedef struct progress_s {
    int on, tty;
    uint64_t total, t0, last;
} progress_t;

static void fmt_eta(double s, char *out, size_t cap)
{
    if (!(s >= 0) || s > 359999) {
        snprintf(out, cap, "--:--");
    } else if (s >= 3600) {
        snprintf(out, cap, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    } else {
        snprintf(out, cap, "%d:%02d", (int)s / 60, (int)s % 60);
    }
}

static void progress(progress_t *p, uint64_t done, int final)
{
    uint64_t now = umg_mono_ns();
    if (!p->on || (!final && now - p->last < (p->tty ? 100000000ull : 5000000000ull))) {
        return;
    }
    p->last = now;
    double secs = (double)(now - p->t0) / 1e9, rate = secs > 0 ? (double)done / secs : 0;
    double frac = p->total ? (double)done / (double)p->total : 1;
    frac = frac > 1 ? 1 : frac;
    char eta[32];
    fmt_eta(rate > 0 ? (double)(p->total - UMG_MIN(done, p->total)) / rate : -1, eta, sizeof(eta));
    if (p->tty) {
        char bar[31];
        int fill = (int)(frac * 30);
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, '.', (size_t)(30 - fill));
        bar[30] = '\0';
        fprintf(stderr, "\r[%s] %3d%%  %llu/%llu items  %.0f/s  ETA %s   %s", bar, (int)(frac * 100),
                (unsigned long long)done, (unsigned long long)p->total, rate, eta, final ? "\n" : "");
    } else {
        fprintf(stderr, "unmogrowp gen: %llu/%llu items (%d%%), %.0f/s, ETA %s\n", (unsigned long long)done,
                (unsigned long long)p->total, (int)(frac * 100), rate, eta);
    }
}

/* ---------------------------------------------------------------- batches */

typedef struct batch_s {
    const char *path, *open;
    umg_buf_t body;
    size_t n;
} batch_t;

/*
 * A flood install that click_flooding cannot see when it arrives is still flagged when a later install of its
 * source/site is seen to flood: the rule looks back as far as touches are kept (attribution.touch_retention,
 * 31 days by default). Its label row waits here for that, or for the end (detectable 0).
 */
#define FLOOD_LOOKBACK_MS (INT64_C(31) * 86400000)
typedef struct held_s {
    umg_buf_t rows;
    umg_buf_t at; /* per row: held_at_t */
} held_t;
typedef struct held_at_s {
    size_t digit; /* the detectable field's offset in rows */
    int64_t ts_ms;
} held_at_t;

typedef struct run_s {
    cli_t *c;
    const umg__gen_sink_ops_t *ops;
    void *sink;
    batch_t b[2]; /* [0] touches, [1] events */
    int64_t per_batch;
    uint64_t next_ns; /* the rate limit: the next request may leave then */
    uint64_t requests, sent;
    umg__gen_result_t tot;
    progress_t prog;
    FILE *labels; /* --fraud-labels */
    uint64_t label_rows;
    held_t held[4]; /* per flood site */
    uint64_t spoof_sent[UMG_GEN_SPOOF_KINDS], spoof_refused[UMG_GEN_SPOOF_KINDS], spoof_accepted;
    uint64_t links_sent, links_skipped; /* bot clicks through the click link */
    char msg[1024];
} run_t;

static int batch_reset(batch_t *b)
{
    b->body.len = 0;
    b->n = 0;
    return umg_buf_append(&b->body, b->open, strlen(b->open));
}

static void rate_wait(run_t *r, size_t n)
{
    if (r->c->rate <= 0) {
        return;
    }
    uint64_t now = umg_mono_ns();
    if (r->next_ns > now) {
        uint64_t d = r->next_ns - now;
        struct timespec ts = {(time_t)(d / 1000000000u), (long)(d % 1000000000u)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !umg__gen_interrupted) {
        }
        now = r->next_ns;
    }
    r->next_ns = now + (uint64_t)((double)n * 1e9 / (double)r->c->rate);
}

/* One request, at the rate asked, and its answer added to the totals. */
static int request(run_t *r, const umg__gen_req_t *req, umg__gen_result_t *res)
{
    rate_wait(r, req->n);
    int rc = r->ops->post(r->sink, req, res, r->msg, sizeof(r->msg));
    if (rc != UMG_OK) {
        r->tot.retries += res->retries; /* the attempts of a request that failed count too */
        return rc;
    }
    r->requests++;
    r->sent += req->n;
    r->tot.accepted += res->accepted;
    r->tot.duplicates += res->duplicates;
    r->tot.rejected += res->rejected;
    r->tot.retries += res->retries;
    return UMG_OK;
}

static int flush(run_t *r, batch_t *b)
{
    if (b->n == 0) {
        return UMG_OK;
    }
    if (umg_buf_append(&b->body, "]}", 2) != UMG_OK) {
        snprintf(r->msg, sizeof(r->msg), "out of memory");
        return UMG_ENOMEM;
    }
    umg__gen_result_t res;
    umg__gen_req_t req = {.path = b->path,
                          .body = b->body.ptr,
                          .len = b->body.len,
                          .n = b->n,
                          .sign = r->c->sign ? UMG__GEN_SIGN_OK : UMG__GEN_SIGN_NONE};
    int rc = request(r, &req, &res);
    if (rc != UMG_OK) {
        return rc;
    }
    progress(&r->prog, r->sent, 0);
    return batch_reset(b) == UMG_OK ? UMG_OK : UMG_ENOMEM;
}

/* ---------------------------------------------------------------- fraud */

/* A string member of an item's JSON into out ("" when absent). */
static void item_str(const umg_gen_item_t *it, const char *key, char *out, size_t cap)
{
    umg_slice_t v;
    out[0] = '\0';
    if (umg__gen_json_member(it->json, key, &v) != UMG_OK || umg__gen_json_string(v, out, cap) != UMG_OK) {
        out[0] = '\0';
    }
}

/* One row of --fraud-labels for an install or a click (docs/gen.md "Labels"). */
static int label_write(run_t *r, const char *row, size_t len)
{
    if (fwrite(row, 1, len, r->labels) != len) {
        snprintf(r->msg, sizeof(r->msg), "cannot write --fraud-labels %s: %s", r->c->labels, strerror(errno));
        return UMG_EIO;
    }
    return UMG_OK;
}

/* The held rows of a flood site: detectable when seen_ms (a later install's, seen to flood) reaches back to them;
 * seen_ms INT64_MIN: the end, none is. */
static int label_release(run_t *r, held_t *h, int64_t seen_ms)
{
    if (h->rows.len == 0) {
        return UMG_OK;
    }
    held_at_t *at = (held_at_t *)(void *)h->at.ptr;
    for (size_t i = 0; i < h->at.len / sizeof(*at); i++) {
        h->rows.ptr[at[i].digit] = seen_ms != INT64_MIN && at[i].ts_ms >= seen_ms - FLOOD_LOOKBACK_MS ? '1' : '0';
    }
    int rc = label_write(r, h->rows.ptr, h->rows.len);
    h->rows.len = h->at.len = 0;
    return rc;
}

static int label_row(run_t *r, const umg_gen_item_t *it)
{
    char id[64], source[300], day[16], row[1024];
    if (r->labels == NULL || (it->type != UMG_GEN_INSTALL && it->type != UMG_GEN_CLICK)) {
        return UMG_OK;
    }
    item_str(it, it->type == UMG_GEN_INSTALL ? "event_id" : "click_id", id, sizeof(id));
    if (it->kind == UMG_GEN_LINK) {
        const char *cid = memmem(it->json.ptr, it->json.len, "click_id=", 9);
        snprintf(id, sizeof(id), "%.32s", cid != NULL ? cid + 9 : "");
        snprintf(source, sizeof(source), "%s", it->fraud_source ? it->fraud_source : "");
    } else if (it->type == UMG_GEN_CLICK) {
        item_str(it, "source", source, sizeof(source));
    } else {
        snprintf(source, sizeof(source), "%s", it->fraud_source ? it->fraud_source : "");
    }
    time_t secs = (time_t)(it->ts_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(day, sizeof(day), "%Y-%m-%d", &tm);
    int fraud = it->fraud != UMG_GEN_HONEST;
    int digit = snprintf(row, sizeof(row), "%s,%s,%d,%s,%s,%s,", it->type == UMG_GEN_INSTALL ? "install" : "click", id,
                         fraud, umg_gen_fraud_name(it->fraud), fraud ? it->reason : "", day);
    int len = digit + snprintf(row + digit, sizeof(row) - (size_t)digit, "%s,%s,%s\n",
                               fraud ? (it->detectable ? "1" : "0") : "", source, it->claim);
    r->label_rows++;
    if (it->flood_site > 0 && it->flood_site <= (int)UMG_ARRAY_SIZE(r->held)) {
        held_t *h = &r->held[it->flood_site - 1];
        if (!it->detectable) {
            held_at_t at = {h->rows.len + (size_t)digit, it->ts_ms};
            if (umg_buf_append(&h->rows, row, (size_t)len) != UMG_OK ||
                umg_buf_append(&h->at, &at, sizeof(at)) != UMG_OK) {
                snprintf(r->msg, sizeof(r->msg), "out of memory");
                return UMG_ENOMEM;
            }
            return UMG_OK;
        }
        int rc = label_release(r, h, it->ts_ms);
        if (rc != UMG_OK) {
            return rc;
        }
    }
    return label_write(r, row, (size_t)len);
}

/* The end: the flood rows still held were never seen. */
static int labels_close(run_t *r)
{
    int rc = UMG_OK;
    for (size_t i = 0; i < UMG_ARRAY_SIZE(r->held); i++) {
        if (r->labels != NULL && rc == UMG_OK) {
            rc = label_release(r, &r->held[i], INT64_MIN);
        }
        umg_buf_free(&r->held[i].rows);
        umg_buf_free(&r->held[i].at);
    }
    if (r->labels != NULL && fclose(r->labels) != 0 && rc == UMG_OK) {
        snprintf(r->msg, sizeof(r->msg), "cannot write --fraud-labels %s: %s", r->c->labels, strerror(errno));
        rc = UMG_EIO;
    }
    r->labels = NULL;
    return rc;
}

/* A spoofed install goes alone, signed wrong as it says, after the touches before it; a 401 is
 * what it should get, and is counted. */
static int send_spoof(run_t *r, const umg_gen_item_t *it)
{
    static const umg__gen_sign_t how[] = {UMG__GEN_SIGN_NONE, UMG__GEN_SIGN_NONE, UMG__GEN_SIGN_BAD,
                                          UMG__GEN_SIGN_STALE};
    umg_buf_t body = {0};
    int rc = flush(r, &r->b[0]);
    if (rc != UMG_OK) {
        return rc;
    }
    if (umg_buf_append(&body, "{\"events\":[", 11) != UMG_OK ||
        umg_buf_append(&body, it->json.ptr, it->json.len) != UMG_OK || umg_buf_append(&body, "]}", 2) != UMG_OK) {
        umg_buf_free(&body);
        snprintf(r->msg, sizeof(r->msg), "out of memory");
        return UMG_ENOMEM;
    }
    umg__gen_result_t res;
    umg__gen_req_t req = {
        .path = "/v1/events", .body = body.ptr, .len = body.len, .n = 1, .sign = how[it->spoof], .spoof = 1};
    rc = request(r, &req, &res);
    umg_buf_free(&body);
    if (rc != UMG_OK) {
        return rc;
    }
    r->spoof_sent[it->spoof]++;
    r->spoof_refused[it->spoof] += res.unauthorized;
    r->spoof_accepted += res.accepted + res.duplicates;
    return UMG_OK;
}

/* A bot's click through the click link, with no User-Agent; it needs the app id, and a daemon. */
static int send_link(run_t *r, const umg_gen_item_t *it)
{
    umg_buf_t path = {0};
    if (r->c->out != NULL || !r->c->app_id[0]) {
        r->links_skipped++;
        return UMG_OK;
    }
    int rc = label_row(r, it);
    if (rc != UMG_OK) {
        return rc;
    }
    if (umg_buf_printf(&path, "/c/%s?%.*s", r->c->app_id, (int)it->json.len, it->json.ptr) != UMG_OK) {
        snprintf(r->msg, sizeof(r->msg), "out of memory");
        return UMG_ENOMEM;
    }
    umg__gen_result_t res;
    umg__gen_req_t req = {.path = path.ptr, .body = "", .n = 1, .link = 1};
    rc = request(r, &req, &res);
    umg_buf_free(&path);
    r->links_sent += rc == UMG_OK;
    return rc;
}

static int write_ip_list(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return fail("cannot create --fraud-ip-list %s: %s", path, strerror(errno));
    }
    fprintf(f, "# unmogrowp gen --fraud: the data-centre ranges the datacenter kind sends from\n");
    for (size_t i = 0; i < umg_gen_datacenter_ncidrs; i++) {
        fprintf(f, "%s\n", umg_gen_datacenter_cidrs[i]);
    }
    if (fclose(f) != 0) {
        return fail("cannot write --fraud-ip-list %s: %s", path, strerror(errno));
    }
    return 0;
}

/* The files the fraud flags ask for: the data-centre list now, the labels' header. */
static int fraud_files(run_t *r)
{
    const cli_t *c = r->c;
    if (c->ip_list != NULL && write_ip_list(c->ip_list) != 0) {
        return UMG_EIO;
    }
    if (c->labels != NULL) {
        r->labels = fopen(c->labels, "w");
        if (r->labels == NULL ||
            fputs("kind,id,label,fraud_type,expected_reason,day,detectable,source,claim_click_id\n", r->labels) < 0) {
            fprintf(stderr, "unmogrowp gen: cannot create --fraud-labels %s: %s\n", c->labels, strerror(errno));
            return UMG_EIO;
        }
    }
    return UMG_OK;
}

static int add(run_t *r, const umg_gen_item_t *it)
{
    if (it->kind == UMG_GEN_LINK) {
        return send_link(r, it);
    }
    int lrc = label_row(r, it);
    if (lrc != UMG_OK) {
        return lrc;
    }
    if (it->spoof != UMG_GEN_SPOOF_NONE && r->c->out == NULL) {
        return send_spoof(r, it);
    }
    batch_t *b = &r->b[it->kind == UMG_GEN_EVENT], *other = &r->b[it->kind != UMG_GEN_EVENT];
    int rc = UMG_OK;
    if (r->c->strict && other->n > 0) {
        rc = flush(r, other);
    }
    if (rc == UMG_OK && (b->n >= (size_t)r->per_batch || b->body.len + it->json.len + 3 > BODY_MAX)) {
        /* Touches generated before these events leave first. */
        if (it->kind == UMG_GEN_EVENT) {
            rc = flush(r, &r->b[0]);
        }
        rc = rc ? rc : flush(r, b);
    }
    if (rc != UMG_OK) {
        return rc;
    }
    if ((b->n > 0 && umg_buf_putc(&b->body, ',') != UMG_OK) ||
        umg_buf_append(&b->body, it->json.ptr, it->json.len) != UMG_OK) {
        snprintf(r->msg, sizeof(r->msg), "out of memory");
        return UMG_ENOMEM;
    }
    b->n++;
    return UMG_OK;
}

/* ---------------------------------------------------------------- summary */

/* The summary's "fraud" member: what the fraud layer made, and what became of the spoofs and links. */
static void summary_fraud(FILE *f, const run_t *r, const umg_gen_stats_t *st)
{
    const char *what[2] = {"installs", "clicks"};
    const uint64_t *counts[2] = {st->fraud_installs, st->fraud_clicks};
    fprintf(f, ",\"fraud\":{");
    for (int w = 0; w < 2; w++) {
        fprintf(f, "%s\"%s\":{", w ? "," : "", what[w]);
        for (int k = 1; k < UMG_GEN_FRAUD_KINDS; k++) {
            fprintf(f, "%s\"%s\":%llu", k > 1 ? "," : "", umg_gen_fraud_name((umg_gen_fraud_t)k),
                    (unsigned long long)counts[w][k]);
        }
        fprintf(f, "}");
    }
    uint64_t sent = 0;
    for (int k = 1; k < UMG_GEN_SPOOF_KINDS; k++) {
        sent += r->spoof_sent[k];
    }
    fprintf(f,
            ",\"items\":%llu,\"link_clicks\":{\"sent\":%llu,\"skipped\":%llu},\"spoof\":{\"sent\":%llu,"
            "\"accepted\":%llu,\"refused\":{",
            (unsigned long long)st->fraud_items, (unsigned long long)r->links_sent,
            (unsigned long long)r->links_skipped, (unsigned long long)sent, (unsigned long long)r->spoof_accepted);
    for (int k = 1; k < UMG_GEN_SPOOF_KINDS; k++) {
        fprintf(f, "%s\"%s\":%llu", k > 1 ? "," : "", umg_gen_spoof_name((umg_gen_spoof_t)k),
                (unsigned long long)r->spoof_refused[k]);
    }
    fprintf(f, "}}}");
}

static void summary(FILE *f, const run_t *r, const umg_gen_stats_t *st, double secs, const char *status)
{
    const cli_t *c = r->c;
    fprintf(f, "{\"status\":\"%s\",\"mode\":\"%s\"", status, c->out ? "file" : "http");
    if (c->app_id[0]) {
        fprintf(f, ",\"app\":\"%s\"", c->app_id);
    }
    fprintf(f,
            ",\"platform\":\"%s\",\"seed\":%lld,\"now\":%lld,\"devices\":%llu,\"items\":%llu,\"touches\":%llu,"
            "\"clicks\":%llu,\"impressions\":%llu,\"retargeting_clicks\":%llu,\"events\":%llu,\"installs\":%llu,"
            "\"installs_by_match\":{",
            c->o.platform == UMG_GEN_IOS ? "ios" : "android", (long long)c->o.seed, (long long)c->o.now_ms,
            (unsigned long long)st->devices, (unsigned long long)st->items, (unsigned long long)st->touches,
            (unsigned long long)st->clicks, (unsigned long long)st->impressions,
            (unsigned long long)st->retargeting_clicks, (unsigned long long)st->events,
            (unsigned long long)st->installs);
    for (int m = 0; m < UMG_GEN_MATCH_KINDS; m++) {
        fprintf(f, "%s\"%s\":%llu", m ? "," : "", umg_gen_match_name((umg_gen_match_t)m),
                (unsigned long long)st->installs_by_match[m]);
    }
    fprintf(f, "}");
    if (c->o.reinstall_pct > 0) {
        fprintf(f, ",\"reinstalls\":%llu,\"reinstall_clicks\":%llu", (unsigned long long)st->reinstalls,
                (unsigned long long)st->reinstall_clicks);
    }
    if (c->o.late_pct > 0) {
        fprintf(f, ",\"late\":%llu", (unsigned long long)st->late);
    }
    if (c->o.fraud_pct > 0) {
        summary_fraud(f, r, st);
    }
    if (r->labels != NULL) {
        fprintf(f, ",\"labels\":%llu", (unsigned long long)r->label_rows);
    }
    fprintf(f,
            ",\"sessions\":%llu,\"in_app_events\":%llu,\"purchases\":%llu,\"payers\":%llu,\"revenue_usd\":%.2f,"
            "\"requests\":%llu,\"sent\":%llu,\"accepted\":%llu,\"duplicates\":%llu,\"rejected\":%llu,\"retries\":%llu,"
            "\"seconds\":%.3f,\"items_per_second\":%.0f}\n",
            (unsigned long long)st->sessions, (unsigned long long)st->inapp, (unsigned long long)st->purchases,
            (unsigned long long)st->payers, st->revenue_usd, (unsigned long long)r->requests,
            (unsigned long long)r->sent, (unsigned long long)r->tot.accepted, (unsigned long long)r->tot.duplicates,
            (unsigned long long)r->tot.rejected, (unsigned long long)r->tot.retries, secs,
            secs > 0 ? (double)r->sent / secs : 0);
    fflush(f);
}

/* ---------------------------------------------------------------- run */

static int run(cli_t *c)
{
    run_t r = {.c = c};
    umg_gen_t *g = NULL;
    umg_gen_stats_t st = {0};
    int rc;
    r.b[0] = (batch_t){.path = "/v1/touches", .open = "{\"touches\":["};
    r.b[1] = (batch_t){.path = "/v1/events", .open = "{\"events\":["};
    /* With a rate limit, a batch is at most half a second of items, so that the rate stays smooth. */
    r.per_batch = c->rate > 0 ? UMG_MAX(1, UMG_MIN(c->batch, c->rate / 2)) : c->batch;
    if (batch_reset(&r.b[0]) != UMG_OK || batch_reset(&r.b[1]) != UMG_OK) {
        fprintf(stderr, "unmogrowp gen: out of memory\n");
        rc = UMG_ENOMEM;
        goto done;
    }
    if (c->out != NULL) {
        r.ops = &umg__gen_file_ops;
        rc = umg__gen_file_open(c->out, &r.sink, r.msg, sizeof(r.msg));
    } else {
        r.ops = &umg__gen_http_ops;
        umg__gen_http_config_t hc = {.host = c->host,
                                     .port = c->port,
                                     .prefix = c->prefix,
                                     .secret = c->app_secret,
                                     .key = c->app_key,
                                     .signing = c->app_signing,
                                     .max_print = PRINT_REJECTED};
        rc = umg__gen_http_open(&hc, &r.sink, r.msg, sizeof(r.msg));
    }
    if (rc != UMG_OK) {
        fprintf(stderr, "unmogrowp gen: %s\n", r.msg);
        goto done;
    }
    if ((rc = fraud_files(&r)) != UMG_OK) {
        goto done;
    }
    r.prog.on = !c->quiet;
    r.prog.tty = isatty(STDERR_FILENO);
    if (r.prog.on) {
        /* A first pass without JSON gives the total for the ETA (a few percent of the run). */
        umg_gen_stats_t pre;
        if (umg_gen_count(&c->o, &pre) == UMG_OK) {
            r.prog.total = pre.items;
        }
    }
    rc = umg_gen_new(&c->o, &g);
    if (rc != UMG_OK) {
        fprintf(stderr, "unmogrowp gen: cannot start the generator: %s\n", umg_strerror(rc));
        goto done;
    }
    r.prog.t0 = r.prog.last = umg_mono_ns();
    umg_gen_item_t it;
    while (!umg__gen_interrupted && (rc = umg_gen_next(g, &it)) == UMG_OK) {
        if ((rc = add(&r, &it)) != UMG_OK) {
            break;
        }
    }
    if (rc == UMG_ENOENT || rc == UMG_OK) {
        /* The end, or Ctrl-C: what is batched still goes (a second Ctrl-C ends the process). */
        rc = flush(&r, &r.b[0]);
        rc = rc ? rc : flush(&r, &r.b[1]);
    } else if (!r.msg[0]) {
        snprintf(r.msg, sizeof(r.msg), "the generator failed: %s", umg_strerror(rc));
    }
    progress(&r.prog, r.sent, 1);
    if (rc != UMG_OK) {
        fprintf(stderr, "unmogrowp gen: %s\n", r.msg[0] ? r.msg : umg_strerror(rc));
    }
done:
    if (r.sink != NULL) {
        char msg[512];
        if (r.ops->close(r.sink, msg, sizeof(msg)) != UMG_OK) {
            fprintf(stderr, "unmogrowp gen: %s\n", msg);
            rc = rc ? rc : UMG_EIO;
        }
    }
    if (labels_close(&r) != UMG_OK) {
        fprintf(stderr, "unmogrowp gen: %s\n", r.msg);
        rc = rc ? rc : UMG_EIO;
    }
    if (g != NULL) {
        umg_gen_stats(g, &st);
    }
    int stopped = umg__gen_interrupted && (rc == UMG_OK || rc == UMG_ECLOSED); /* Ctrl-C, also while retrying */
    const char *status = stopped ? "interrupted" : rc != UMG_OK ? "error" : r.tot.rejected ? "rejected" : "ok";
    summary(c->out && strcmp(c->out, "-") == 0 ? stderr : stdout, &r, &st,
            r.prog.t0 ? (double)(umg_mono_ns() - r.prog.t0) / 1e9 : 0, status);
    uint64_t spoofed = r.spoof_sent[1] + r.spoof_sent[2] + r.spoof_sent[3];
    if (spoofed > 0) {
        fprintf(stderr, "unmogrowp gen: spoofed installs refused with 401:");
        for (int k = 1; k < UMG_GEN_SPOOF_KINDS; k++) {
            fprintf(stderr, " %s %llu of %llu%s", umg_gen_spoof_name((umg_gen_spoof_t)k),
                    (unsigned long long)r.spoof_refused[k], (unsigned long long)r.spoof_sent[k],
                    k + 1 < UMG_GEN_SPOOF_KINDS ? "," : "\n");
        }
    }
    if (r.tot.rejected > 0) {
        fprintf(stderr, "unmogrowp gen: the daemon rejected %llu of %llu items (the first %d are shown above)\n",
                (unsigned long long)r.tot.rejected, (unsigned long long)r.sent, PRINT_REJECTED);
    }
    umg_gen_free(g);
    umg_buf_free(&r.b[0].body);
    umg_buf_free(&r.b[1].body);
    return stopped ? 130 : rc != UMG_OK || r.tot.rejected > 0 ? 1 : 0;
}

int umg_gen_cli(int argc, char **argv)
{
    cli_t c;
    memset(&c, 0, sizeof(c));
    umg_gen_opts_default(&c.o);
    int rc = parse_flags(&c, argc, argv);
    if (rc != 0) {
        return rc == 1 ? 0 : rc;
    }
    if ((rc = resolve(&c)) != 0) {
        return rc;
    }
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESTART | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    signal(SIGPIPE, SIG_IGN);
    umg__gen_interrupted = 0;
    rc = run(&c);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    memset(c.app_secret, 0, sizeof(c.app_secret));
    return rc;
}
