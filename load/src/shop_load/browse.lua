-- The drill's browsing (shop_load.browsing): GETs of the paths in WRK_PATHS (space-separated, each as often as it
-- should be asked for), one picked at random per request, paced to WRK_RATE requests/s in total; statuses are
-- counted and reported by the shared report.lua of shop_load.wrk.
package.path = os.getenv("WRK_SCRIPTS") .. "/?.lua;" .. package.path
local report = require("report")

setup = report.setup
done = report.done
delay = report.pacer()

local paths = {}

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
