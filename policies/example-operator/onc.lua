-- example-operator: downloads of test Profiles are never reported, whatever the ONC says.
local m2m = require "m2m"

local Policy = {}

function Policy.filter_notification(ctx, conf)
  local n = ctx.notification
  if n ~= nil and n.type == "ProfileDownloaded" and n.profile_type ~= nil and n.profile_type:find("TEST_", 1, true) == 1 then
    return m2m.drop("downloads of test Profiles are not reported")
  end
  return nil
end

return Policy
