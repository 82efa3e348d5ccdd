-- bench/wrk/post.lua - POST a body read from a file, count every response status.
--
-- Used for both our daemon and the baselines (nginx, ClickHouse's HTTP
-- interface), so all of them get the same bytes from the same client.
--
-- Environment:
--   UMG_BODY_FILE      file whose bytes are the request body (required)
--   UMG_APP_KEY        sent as X-App-Key when set
--   UMG_CONTENT_TYPE   Content-Type (default application/json)
--   UMG_PATH           request path incl. query; default: the path of the wrk URL
--   UMG_IDS=1          replace every "@@EVENT_ID@@" in the body with a fresh UUID
--                      per request (costs wrk CPU; default: send the body as is)
--   UMG_COUNT_ACCEPTED=1  sum the "accepted":N of each response body
--   UMG_MAX_REQUESTS   stop after about this many responses (split over threads;
--                      set UMG_WRK_THREADS to wrk's -t so the split is right)
--
-- At the end one line is printed for scripts to parse:
--   UMG_WRK requests=N duration_us=N rps=F ok=N non2xx=N statuses=200:N,...
--           errors_connect=N errors_read=N errors_write=N errors_timeout=N
--           accepted=N p50_us=N p90_us=N p99_us=N p999_us=N max_us=N
-- A run whose non2xx or errors_* is not 0 is not a valid benchmark.

local threads = {}
local nthreads = 0

function setup(thread)
    nthreads = nthreads + 1
    thread:set("tid", nthreads)
    table.insert(threads, thread)
end

local function read_file(path)
    local f = assert(io.open(path, "rb"), "cannot open UMG_BODY_FILE " .. tostring(path))
    local s = f:read("*a")
    f:close()
    return s
end

local body_file = os.getenv("UMG_BODY_FILE")
assert(body_file and body_file ~= "", "UMG_BODY_FILE is not set")
local body = read_file(body_file)
local use_ids = os.getenv("UMG_IDS") == "1"
local count_accepted = os.getenv("UMG_COUNT_ACCEPTED") == "1"
local max_requests = tonumber(os.getenv("UMG_MAX_REQUESTS") or "0") or 0
local path = os.getenv("UMG_PATH")

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = os.getenv("UMG_CONTENT_TYPE") or "application/json"
local key = os.getenv("UMG_APP_KEY")
if key and key ~= "" then
    wrk.headers["X-App-Key"] = key
end
if path and path ~= "" then
    wrk.path = path
end

-- Per-thread state (each wrk thread has its own Lua state).
statuses = {}
accepted = 0
responses = 0
local my_max = 0
local seq = 0
local tid = 0

function init(args)
    tid = tonumber(wrk.thread:get("tid")) or 0
    -- init() runs before the later threads' setup(), so the count comes from the caller.
    local n = tonumber(os.getenv("UMG_WRK_THREADS") or "1") or 1
    if max_requests > 0 then
        my_max = math.ceil(max_requests / n)
    end
end

-- A v4-shaped UUID unique per (wrk process, thread, request): the first group is
-- a per-process random number, so two runs against one data dir do not collide.
local run_salt = nil

local function next_id()
    seq = seq + 1
    return string.format("%08x-%04x-4%03x-8%03x-%012x", run_salt, tid % 65536,
        math.floor(seq / 4096 / 4096) % 4096, math.floor(seq / 4096) % 4096,
        seq % 4096 + (tid * 0x100000000))
end

if use_ids then
    -- The body is split at the markers once; a request is the pieces joined with
    -- fresh ids (table.concat runs in C; gsub with a callback per marker is ~20x slower).
    local pieces = {}
    local pos = 1
    while true do
        local s, e = body:find("@@EVENT_ID@@", pos, true)
        if not s then break end
        table.insert(pieces, body:sub(pos, s - 1))
        pos = e + 1
    end
    local tail = body:sub(pos)
    local parts = {}
    request = function()
        if run_salt == nil then
            local f = io.open("/dev/urandom", "rb")
            local b = f:read(4)
            f:close()
            run_salt = b:byte(1) * 16777216 + b:byte(2) * 65536 + b:byte(3) * 256 + b:byte(4)
        end
        local n = 0
        for i = 1, #pieces do
            parts[n + 1] = pieces[i]
            parts[n + 2] = next_id()
            n = n + 2
        end
        parts[n + 1] = tail
        for i = n + 2, #parts do parts[i] = nil end
        return wrk.format(nil, nil, nil, table.concat(parts))
    end
end

function response(status, headers, resp_body)
    statuses[status] = (statuses[status] or 0) + 1
    responses = responses + 1
    if count_accepted and resp_body then
        local n = resp_body:match('"accepted"%s*:%s*(%d+)')
        if n then
            accepted = accepted + tonumber(n)
        end
    end
    if my_max > 0 and responses >= my_max then
        wrk.thread:stop()
    end
end

function done(summary, latency, requests)
    local all, total_accepted, ok, bad = {}, 0, 0, 0
    for _, t in ipairs(threads) do
        local st = t:get("statuses") or {}
        for code, n in pairs(st) do
            all[code] = (all[code] or 0) + n
        end
        total_accepted = total_accepted + (tonumber(t:get("accepted")) or 0)
    end
    local parts = {}
    for code, n in pairs(all) do
        table.insert(parts, string.format("%d:%d", code, n))
        if code >= 200 and code < 300 then ok = ok + n else bad = bad + n end
    end
    table.sort(parts)
    local e = summary.errors
    local secs = summary.duration / 1e6
    io.write(string.format(
        "UMG_WRK requests=%d duration_us=%d rps=%.1f ok=%d non2xx=%d statuses=%s " ..
        "errors_connect=%d errors_read=%d errors_write=%d errors_timeout=%d accepted=%d " ..
        "p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d\n",
        summary.requests, summary.duration, summary.requests / secs, ok, bad,
        (#parts > 0) and table.concat(parts, ",") or "-",
        e.connect, e.read, e.write, e.timeout, total_accepted,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), latency.max))
end
