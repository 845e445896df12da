-- Plain GETs of the URL given to wrk, optionally paced (WRK_RATE requests/s in total).
package.path = os.getenv("WRK_SCRIPTS") .. "/?.lua;" .. package.path
local report = require("report")

setup = report.setup
done = report.done
delay = report.pacer()

function init(args)
   math.randomseed(os.time() + (thread_index or 0))
end

function response(status, headers, body)
   report.count(status, headers)
end
