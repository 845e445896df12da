-- Checkouts: POST of WRK_BODY (JSON) to the URL given to wrk, a fresh Idempotency-Key per request (unique across
-- runs: WRK_KEY_PREFIX, then the run's id, the thread and a counter) and the bearer
-- tokens of WRK_TOKENS_FILE (one a line) in turn, each thread starting at its own; optionally paced (WRK_RATE/s).
-- wrk.format replaces wrk.headers by the table it is given, so every header is set here.
package.path = os.getenv("WRK_SCRIPTS") .. "/?.lua;" .. package.path
local report = require("report")

setup = report.setup
done = report.done
delay = report.pacer()

local tokens = {}
local next_token = 1
local sent = 0
local key_prefix = ""

function init(args)
   math.randomseed(os.time() + (thread_index or 0))
   for line in io.lines(os.getenv("WRK_TOKENS_FILE")) do
      if line ~= "" then
         table.insert(tokens, line)
      end
   end
   if #tokens == 0 then
      error("no token in " .. os.getenv("WRK_TOKENS_FILE"))
   end
   next_token = (thread_index or 0) % #tokens + 1
   key_prefix = (os.getenv("WRK_KEY_PREFIX") or "wrk") .. "-" .. os.getenv("WRK_RUN_ID") .. "-" .. tostring(thread_index or 0) .. "-"
   wrk.method = "POST"
   wrk.body = os.getenv("WRK_BODY")
end

function request()
   sent = sent + 1
   local headers = {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. tokens[next_token],
      ["Idempotency-Key"] = key_prefix .. tostring(sent),
   }
   next_token = next_token % #tokens + 1
   return wrk.format(nil, nil, headers, nil)
end

function response(status, headers, body)
   report.count(status, headers)
end
