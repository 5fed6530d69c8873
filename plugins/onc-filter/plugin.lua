-- onc-filter: drops the notifications an Operator's ONC (ES4A.SetONC / ES2.SetONC data) asks
-- the SM-SR to discard for its Profiles of a Profile Type (SGP.02 v4 §3.21, §5.7: the list
-- names notifications to discard; the default is to send everything).
--
-- Hook: filter_notification(ctx, conf) -> m2m.drop(reason) or nil (no objection).
local m2m = require "m2m"

local contains = m2m.util.contains

local Plugin = {
  name = "onc-filter",
  version = "1.0.0",
  priority = 500,
}

function Plugin.filter_notification(ctx, conf)
  local n = ctx.notification
  if n == nil then return nil end
  local kind = n.type
  if contains(conf.never_discard, kind) then return nil end
  local entries = ctx.onc
  for i = 1, #entries do
    local e = entries[i]
    if e.mno_id == n.mno_id and e.profile_type == n.profile_type and contains(e.discarded, kind) then
      return m2m.drop("discarded by the ONC of " .. e.mno_id .. " for " .. e.profile_type)
    end
  end
  return nil
end

return Plugin
