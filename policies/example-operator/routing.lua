-- example-operator: an audit copy of SM-SR changes and deletions for the Operator's
-- monitoring M2M SP, on top of the default routes.
local m2m = require "m2m"

local Policy = {}

function Policy.route_notification(ctx, routes, conf)
  local n = ctx.notification
  if n == nil or conf.audit_sp == nil then return nil end
  if n.type ~= "SMSRChange" and n.type ~= "ProfileDeleted" then return nil end
  routes[#routes + 1] = m2m.route { via = "ES4", to = conf.audit_sp, role = "M2MSP", retry = "best_effort" }
  return routes
end

return Policy
