-- The drill's browsing (shop_load.generators.browsing): GETs of the paths in WRK_PATHS (space-separated, each as
-- often as it should be asked for), one picked at random per request, paced to WRK_RATE requests/s in total;
-- statuses are counted and reported by the shared report.lua of shop_load.generators.wrk. Once the file
-- WRK_DRAIN_FILE exists no request is sent any more (every connection waits an hour), so the run can be stopped
-- without cutting any in flight.
package.path = os.getenv("WRK_SCRIPTS") .. "/?.lua;" .. package.path
local report = require("report")

setup = report.setup
done = report.done

local pace = report.pacer()
local drain_file = os.getenv("WRK_DRAIN_FILE")
local paths = {}

local function draining()
   if not drain_file then
      return false
   end
   local file = io.open(drain_file, "r")
   if file then
      file:close()
      return true
   end
   return false
end

function delay()
   if draining() then
      return 3600000
   end
   return pace and pace() or 0
end

function init(args)
   math.randomseed(os.time() + (thread_index or 0))
   for path in string.gmatch(os.getenv("WRK_PATHS") or "", "%S+") do
      table.insert(paths, path)
   end
   if #paths == 0 then
      table.insert(paths, wrk.path)
   end
end

function request()
   return wrk.format("GET", paths[math.random(#paths)])
end

function response(status, headers, body)
   report.count(status, headers)
end
