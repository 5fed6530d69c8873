-- example-operator: POL2 decisions beyond SGP.02 (which sgp02-pol2 has already applied).
local m2m = require "m2m"
local window = require "lib.window"

local S, R = m2m.subject, m2m.reason
local contains = m2m.util.contains

local Policy = {}

-- M2M SPs: not when blocked, and lifecycle changes only in the maintenance window.
local function service_provider(ctx, conf)
  local caller = ctx.caller
  if caller == nil or caller.role ~= "M2MSP" then return nil end
  if contains(conf.blocked_m2m_sps, caller.oid) then
    return m2m.deny(S.FUNCTION_REQUESTER, R.NOT_ALLOWED, "the Operator has blocked this M2M SP")
  end
  if not window.open(conf.maintenance, m2m.clock.utc()) then
    return m2m.deny(S.FUNCTION_REQUESTER, R.REFUSED, "outside the Operator's maintenance window")
  end
  return nil
end

local function is_test(profile_type)
  return profile_type ~= nil and profile_type:find("TEST_", 1, true) == 1
end

function Policy.before_enable_profile(ctx, conf)
  local denial = service_provider(ctx, conf)
  if denial then return denial end
  local p = ctx.profile
  if is_test(p.profile_type) then
    return m2m.warn(S.PROFILE_TYPE, R.CONDITIONS_OF_USE_NOT_SATISFIED, "a test Profile is now enabled")
  end
  return nil
end

function Policy.before_disable_profile(ctx, conf)
  return service_provider(ctx, conf)
end

function Policy.before_delete_profile(ctx, conf)
  local denial = service_provider(ctx, conf)
  if denial then return denial end
  if contains(conf.protected_profile_types, ctx.profile.profile_type) then
    return m2m.deny(S.PROFILE_TYPE, R.REFUSED, "the Operator never deletes Profiles of this type")
  end
  return nil
end

function Policy.before_download_profile(ctx, conf)
  local op = ctx.operation
  local wanted = op and op.args.profile_type
  if wanted ~= nil and not contains(conf.download_profile_types, wanted) then
    return m2m.deny(S.PROFILE_TYPE, R.UNSUPPORTED, "the Operator does not download Profiles of type " .. wanted)
  end
  return nil
end

return Policy
