-- wrk script for bench/signup.py, bench/bounces.py, bench/archive.py and bench/clicks.py:
-- `wrk -s bench/load.lua URL -- MODE RUN [READERS AUTH | PATH]`.
-- MODE "subscribe": every request is POST /subscribe with a JSON body naming a new address
-- (RUN, the thread's number and a counter make it unique); MODE "healthz": GET /healthz;
-- MODE "postmark": POST /webhooks/postmark, a soft bounce of reader<n>@readers.example (n cycling
-- through 1..READERS) with a new event ID each time, and AUTH as its Authorization header;
-- MODE "get": GET PATH (the same page every time, no If-None-Match: a full answer each time);
-- MODE "click": GET PATH with a browser's User-Agent (a reader following a tracked link), the
-- 302 answers counted (only in this mode is there a response callback: it costs wrk CPU).
-- At the end, one line "WRK_JSON {...}" with the figures the harness reads.

local threads = {}

function setup(thread)
  thread:set("thread_number", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  mode = args[1] or "healthz"
  run = args[2] or "run"
  readers = tonumber(args[3] or "1")
  auth = args[4] or ""
  path = args[3] or "/"
  counter = 0
  redirects = 0
  if mode == "click" then
    -- Read by wrk after init: defined in this mode only, so the others parse no headers.
    click_request = wrk.format("GET", path, {
      ["User-Agent"] = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 "
        .. "(KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    })
    response = function(status, headers, body)
      if status == 302 then
        redirects = redirects + 1
      end
    end
  end
end

function request()
  if mode == "subscribe" then
    counter = counter + 1
    local body = string.format(
      '{"email": "load-%s-%d-%d@readers.example", "newsletters": ["daily"]}',
      run, thread_number, counter
    )
    return wrk.format("POST", "/subscribe", { ["Content-Type"] = "application/json" }, body)
  end
  if mode == "postmark" then
    counter = counter + 1
    local reader = ((thread_number * 7919 + counter) % readers) + 1
    local body = string.format(
      '{"RecordType": "Bounce", "ID": %d%06d, "Type": "SoftBounce", "TypeCode": 4096, '
        .. '"Email": "reader%d@readers.example", "Details": "smtp;452 4.2.2 mailbox full", '
        .. '"BouncedAt": "2026-12-07T10:00:00Z"}',
      thread_number, counter, reader
    )
    local headers = { ["Content-Type"] = "application/json", ["Authorization"] = auth }
    return wrk.format("POST", "/webhooks/postmark", headers, body)
  end
  if mode == "get" then
    return wrk.format("GET", path)
  end
  if mode == "click" then
    return click_request
  end
  return wrk.format("GET", "/healthz")
end

function done(summary, latency, requests)
  local errors = summary.errors
  local redirected = 0
  for _, thread in ipairs(threads) do
    redirected = redirected + (thread:get("redirects") or 0)
  end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, '
      .. '"p50_us": %d, "p99_us": %d, "max_us": %d, "redirects": %d}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, redirected
  ))
end
