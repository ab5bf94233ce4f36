-- wrk script for bench/signup.py, bench/bounces.py and bench/archive.py:
-- `wrk -s bench/load.lua URL -- MODE RUN [READERS AUTH | PATH]`.
-- MODE "subscribe": every request is POST /subscribe with a JSON body naming a new address
-- (RUN, the thread's number and a counter make it unique); MODE "healthz": GET /healthz;
-- MODE "postmark": POST /webhooks/postmark, a soft bounce of reader<n>@readers.example (n cycling
-- through 1..READERS) with a new event ID each time, and AUTH as its Authorization header;
-- MODE "get": GET PATH (the same page every time, no If-None-Match: a full answer each time).
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
  return wrk.format("GET", "/healthz")
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, '
      .. '"p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max
  ))
end
