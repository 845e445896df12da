-- Shared by every script: status counts per thread (summed in done()) and one JSON line for shop_load.generators.wrk.
local report = {}

local threads = {}

function report.setup(thread)
   thread:set("thread_index", #threads)
   table.insert(threads, thread)
end

-- Per-thread counters, read back by done() with thread:get().
statuses = {}
retry_after_503 = 0
bare_503 = 0

-- The Retry-After header of a response, in seconds (nil: none, or a date, which the shop never sends).
function report.retry_after(headers)
   for name, value in pairs(headers) do
      if string.lower(name) == "retry-after" then
         return tonumber(value) or 0
      end
   end
   return nil
end

function report.count(status, headers)
   local key = tostring(status)
   statuses[key] = (statuses[key] or 0) + 1
   if status == 503 then
      if report.retry_after(headers) then
         retry_after_503 = retry_after_503 + 1
      else
         bare_503 = bare_503 + 1
      end
   end
end

-- Only answers within the timeout have a latency: later ones are counted as timeouts instead.
local function percentile(latency, requests, p)
   if requests == 0 then
      return "null"
   end
   return tostring(latency:percentile(p))
end

function report.done(summary, latency, requests)
   local totals = {}
   local with_retry, without_retry = 0, 0
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses") or {}) do
         totals[status] = (totals[status] or 0) + count
      end
      with_retry = with_retry + (thread:get("retry_after_503") or 0)
      without_retry = without_retry + (thread:get("bare_503") or 0)
   end
   local counts = {}
   for status, count in pairs(totals) do
      table.insert(counts, string.format('"%s": %d', status, count))
   end
   local errors = summary.errors
   local n = summary.requests
   local timed = n - errors.timeout
   io.write(string.format(
      'WRK_JSON {"requests": %d, "duration_us": %d, "statuses": {%s}, "socket_errors": %d, "timeouts": %d,'
         .. ' "non_2xx_3xx": %d, "p50_us": %s, "p99_us": %s, "max_us": %s, "retry_after_503": %d, "bare_503": %d}\n',
      n, summary.duration, table.concat(counts, ", "), errors.connect + errors.read + errors.write, errors.timeout,
      errors.status, percentile(latency, timed, 50.0), percentile(latency, timed, 99.0),
      timed <= 0 and "null" or tostring(latency.max), with_retry, without_retry
   ))
end

-- Pacing: WRK_RATE requests per second over WRK_CONNECTIONS connections, each waiting about
-- connections / rate between its answer and its next request (jittered so connections do not march in step).
function report.pacer()
   local rate = tonumber(os.getenv("WRK_RATE") or "")
   if not rate or rate <= 0 then
      return nil
   end
   local connections = tonumber(os.getenv("WRK_CONNECTIONS") or "1")
   local mean_ms = connections * 1000.0 / rate
   return function()
      return math.floor(mean_ms * (0.5 + math.random()))
   end
end

return report
