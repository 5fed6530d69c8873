-- notification-router: where each Handle*Notification goes and how hard delivery is retried.
--
-- Hook: route_notification(ctx, routes, conf) -> routes. Recipients (SGP.02 v4 §3, §5.7):
--   * the Operator owning the Profile: ES2 through the Profile's SM-DP (ES3 to the SM-DP, which
--     relays ES2), or ES4 directly; `owner_via` and `operators` choose;
--   * every M2M SP holding a PLMA of that Operator for the Profile Type and this notification;
--   * SMSRChange goes to every Operator with a Profile on the eUICC (and their M2M SPs);
--   * the party whose own request caused the notification is not notified (unless
--     `notify_requester`).
-- Routes of earlier layers are kept (this layer appends to the list it is given).
local m2m = require "m2m"

local route, contains = m2m.route, m2m.util.contains

local Plugin = {
  name = "notification-router",
  version = "1.0.0",
  priority = 500,
}

-- true when `routes` already reaches `to` as `role`
local function has(routes, to, role)
  for i = 1, #routes do
    local r = routes[i]
    if r.to == to and r.role == role then return true end
  end
  return false
end

local function add_owner(routes, conf, mno, smdp, retry, requester)
  if mno == nil or (mno == requester and not conf.notify_requester) or has(routes, mno, "MNO") then return end
  local via = conf.operators[mno] or conf.owner_via
  if via == "auto" then via = smdp and "ES2" or "ES4" end
  if via == "ES2" and smdp == nil then via = "ES4" end  -- no SM-DP to relay: direct
  routes[#routes + 1] = route({ via = via, to = mno, smdp = (via == "ES2") and smdp or nil, role = "MNO", retry = retry })
end

local function add_service_providers(routes, conf, plma, mno, profile_type, kind, requester)
  for i = 1, #plma do
    local e = plma[i]
    if e.mno_id == mno and e.profile_type == profile_type and contains(e.notifications, kind) then
      local sp = e.m2msp_id
      if (sp ~= requester or conf.notify_requester) and not has(routes, sp, "M2MSP") then
        routes[#routes + 1] = route({ via = "ES4", to = sp, role = "M2MSP", retry = conf.m2msp_retry })
      end
    end
  end
end

function Plugin.route_notification(ctx, routes, conf)
  local n = ctx.notification
  if n == nil then return nil end
  local kind, requester = n.type, n.requester
  local retry = conf.retry[kind] or (contains(conf.critical, kind) and "critical") or "standard"
  local plma = ctx.plma
  if kind == "SMSRChange" then
    local e = ctx.eis
    if e ~= nil then
      local profiles = e.profiles
      for i = 1, #profiles do
        local p = profiles[i]
        add_owner(routes, conf, p.mno_id, p.smdp_id, retry, requester)
        add_service_providers(routes, conf, plma, p.mno_id, p.profile_type, kind, requester)
      end
    end
  else
    add_owner(routes, conf, n.mno_id, n.smdp_id, retry, requester)
    if n.mno_id ~= nil then add_service_providers(routes, conf, plma, n.mno_id, n.profile_type, kind, requester) end
  end
  return routes
end

return Plugin
