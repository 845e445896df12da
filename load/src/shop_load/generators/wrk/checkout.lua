-- Checkouts: POSTs of a JSON body to the URL given to wrk, each with a fresh Idempotency-Key and a customer's
-- bearer token. Parameters (environment):
--   WRK_TOKENS_FILE  bearer tokens, one a line, used in turn (each thread starts at its own)
--   WRK_BODY         the body of every request, or
--   WRK_BODIES_FILE  bodies, one JSON a line, one picked at random per request (its line number, from 0, ends
--                    the key: "-b<n>", so whoever checks the payments later knows which body a key was sent with)
--   WRK_KEY_PREFIX   start of every key (default "wrk"); the key is <prefix>-<run id>-<thread>-<n>[-b<body>]
--   WRK_RATE         optional pacing: requests per second over all connections
--   WRK_RETRY_AFTER  "1": after a 503 with Retry-After a connection waits that long (at most
--                    WRK_RETRY_AFTER_CAP_MS, 5000, plus up to a quarter more so retries spread out) before its
--                    next request, as a client honouring the header does; otherwise it sends at once
-- wrk.format replaces wrk.headers by the table it is given, so every header is set here.
package.path = os.getenv("WRK_SCRIPTS") .. "/?.lua;" .. package.path
local report = require("report")

setup = report.setup
done = report.done

local pace = report.pacer()
local honour_retry_after = os.getenv("WRK_RETRY_AFTER") == "1"
local retry_after_cap_ms = tonumber(os.getenv("WRK_RETRY_AFTER_CAP_MS") or "5000")
-- Waits owed after 503s. wrk asks delay() once before each connection's next request, right after response()
-- for the same connection, in the same thread; when answers interleave, a wait may go to another connection of
-- the thread that just got its answer too, which keeps the number and length of the waits.
local waits = {}

if pace or honour_retry_after then
   delay = function()
      local wait = table.remove(waits, 1)
      if wait then
         return wait
      end
      return pace and pace() or 0
   end
end

local tokens = {}
local bodies = {}
local next_token = 1
local sent = 0
local key_prefix = ""

local function lines(path)
   local found = {}
   for line in io.lines(path) do
      if line ~= "" then
         table.insert(found, line)
      end
   end
   if #found == 0 then
      error("nothing in " .. path)
   end
   return found
end

function init(args)
   math.randomseed(os.time() + (thread_index or 0))
   tokens = lines(os.getenv("WRK_TOKENS_FILE"))
   if os.getenv("WRK_BODIES_FILE") then
      bodies = lines(os.getenv("WRK_BODIES_FILE"))
   end
   next_token = (thread_index or 0) % #tokens + 1
   key_prefix = (os.getenv("WRK_KEY_PREFIX") or "wrk") .. "-" .. os.getenv("WRK_RUN_ID") .. "-"
      .. tostring(thread_index or 0) .. "-"
   wrk.method = "POST"
   wrk.body = os.getenv("WRK_BODY")
end

function request()
   sent = sent + 1
   local key = key_prefix .. tostring(sent)
   local body = nil
   if #bodies > 0 then
      local index = math.random(#bodies)
      body = bodies[index]
      key = key .. "-b" .. tostring(index - 1)
   end
   local headers = {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. tokens[next_token],
      ["Idempotency-Key"] = key,
   }
   next_token = next_token % #tokens + 1
   return wrk.format(nil, nil, headers, body)
end

function response(status, headers, body)
   report.count(status, headers)
   if honour_retry_after and status == 503 then
      local seconds = report.retry_after(headers)
      if seconds then
         local ms = math.min(seconds * 1000, retry_after_cap_ms)
         table.insert(waits, math.floor(ms * (1 + 0.25 * math.random())))
      end
   end
end
