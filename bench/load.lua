-- wrk script for bench/signup.py: `wrk -s bench/load.lua URL -- MODE RUN`.
-- MODE "subscribe": every request is POST /subscribe with a JSON body naming a new address
-- (RUN, the thread's number and a counter make it unique); MODE "healthz": GET /healthz.
-- At the end, one line "WRK_JSON {...}" with the figures the harness reads.

local threads = {}

function setup(thread)
  thread:set("thread_number", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  mode = args[1] or "healthz"
  run = args[2] or "run"
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
