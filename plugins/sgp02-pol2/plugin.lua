-- sgp02-pol2: the POL2 rules of SGP.02 that the SM-SR enforces before it changes a Profile,
-- with the caller's authorisation (the owner Operator, or an M2M SP holding a PLMA).
--
-- Hooks: every before_* hook. Spec: SGP.02 v4 §3.2–3.8 (enable, disable, delete, SM-SR change),
-- §3.25–3.29 (Emergency and Fall-Back attributes), POL2Type in euicc.common.types.xsd; the
-- codes are those of shared/spec/sgp02-offcard.md (POL2 refusal 8.2.3/3.8, not the owner
-- 8.2.1/1.2). Engine/BuiltInRules.swift is the same logic in Swift (the fail-open floor); the
-- two are checked against each other.
local m2m = require "m2m"

-- Profile snapshots carry their POL2 as rules (`pol2`) and as four booleans derived from them
-- (`enable_not_allowed`, `disable_not_allowed`, `delete_not_allowed`, `auto_delete`); the input
-- carries the Profile enabled on the eUICC as `ctx.enabled_profile`.
local subject, reason = m2m.subject, m2m.reason
local eis = m2m.eis
local deny, allow = m2m.deny, m2m.allow

local Plugin = {
  name = "sgp02-pol2",
  version = "1.0.0",
  priority = 1000,  -- before operator logic: SGP.02 first
}

-- The function name a hook guards (for PLMA checks).
local FUNCTIONS = {
  before_enable_profile = "EnableProfile",
  before_disable_profile = "DisableProfile",
  before_delete_profile = "DeleteProfile",
  before_set_fallback_attribute = "SetFallBackAttribute",
  before_set_emergency_profile_attribute = "SetEmergencyProfileAttribute",
}

-- The target Profile, or a denial when the EIS does not know it.
local function target(ctx)
  local p = ctx.profile
  if p == nil then return nil, deny(subject.PROFILE_ICCID, reason.UNKNOWN, "unknown Profile") end
  return p
end

-- The owner Operator may act on its Profiles; an M2M SP needs a PLMA of the owner for the
-- function and the Profile Type (SGP.02 v4 §3.20, §5.7). Other callers (the SM-DP relaying
-- ES2 over ES3, the platform) are authorised upstream.
local function authorise(ctx, conf, p, hook)
  if not conf.check_authorisation then return nil end
  local caller = ctx.caller
  if caller == nil then return nil end
  local role = caller.role
  if role == "MNO" and caller.oid ~= p.mno_id then
    return deny(subject.PROFILE_ICCID, reason.NOT_ALLOWED, "the Profile belongs to another Operator")
  end
  if role == "M2MSP" then
    local fn = FUNCTIONS[hook]
    if not m2m.plma.authorises(ctx.plma, caller.oid, p.mno_id, p.profile_type, fn) then
      return deny(subject.FUNCTION_REQUESTER, reason.NOT_ALLOWED, "no PLMA of the Operator authorises " .. fn)
    end
  end
  return nil
end

-- target + authorisation, the start of every Profile hook
local function checked(ctx, conf, hook)
  local p, denial = target(ctx)
  if denial then return nil, denial end
  denial = authorise(ctx, conf, p, hook)
  if denial then return nil, denial end
  return p
end

--- Enabling a Profile disables the enabled one: its POL2 must allow that (§3.2).
function Plugin.before_enable_profile(ctx, conf)
  local p, denial = checked(ctx, conf, "before_enable_profile")
  if denial then return denial end
  local state = p.state
  if state == "Enabled" then
    return deny(subject.PROFILE_ICCID, reason.INVALID_TRANSITION, "the Profile is already enabled")
  end
  if state == "Created" then
    return deny(subject.PROFILE_ICCID, reason.INVALID_TRANSITION, "the Profile is not fully installed")
  end
  if p.enable_not_allowed then
    return deny(subject.POL2, reason.REFUSED, "POL2 of the Profile does not allow enabling it")
  end
  local current = ctx.enabled_profile
  if current ~= nil and current.iccid ~= p.iccid then
    if current.disable_not_allowed then
      return deny(subject.POL2, reason.REFUSED, "POL2 of the enabled Profile does not allow disabling it")
    end
    if current.auto_delete then
      return allow({ auto_delete = current.iccid })  -- "deletion is mandatory when it is disabled"
    end
  end
  return allow()
end

--- Disabling the enabled Profile (§3.3): the eUICC then enables the Fall-Back Profile.
function Plugin.before_disable_profile(ctx, conf)
  local p, denial = checked(ctx, conf, "before_disable_profile")
  if denial then return denial end
  if p.state ~= "Enabled" then
    return deny(subject.PROFILE_ICCID, reason.INVALID_TRANSITION, "the Profile is not enabled")
  end
  if conf.protect_fallback and p.fallback then
    return deny(subject.PROFILE_ICCID, reason.REFUSED, "the Fall-Back Profile cannot be disabled")
  end
  if p.disable_not_allowed then
    return deny(subject.POL2, reason.REFUSED, "POL2 of the Profile does not allow disabling it")
  end
  if p.auto_delete then
    return allow({ auto_delete = p.iccid })
  end
  return allow()
end

--- Deleting a Profile and its ISD-P (§3.4).
function Plugin.before_delete_profile(ctx, conf)
  local p, denial = checked(ctx, conf, "before_delete_profile")
  if denial then return denial end
  if p.delete_not_allowed then
    return deny(subject.POL2, reason.REFUSED, "POL2 of the Profile does not allow deleting it")
  end
  if conf.protect_fallback and p.fallback then
    return deny(subject.POL2, reason.REFUSED, "the Fall-Back Profile cannot be deleted")
  end
  if p.state == "Enabled" then
    return deny(subject.PROFILE_ICCID, reason.INVALID_TRANSITION, "the Profile is enabled: disable it first")
  end
  return allow()
end

--- A download needs the memory and a new ICCID (§3.1).
function Plugin.before_download_profile(ctx, conf)
  local op, e = ctx.operation, ctx.eis
  local args = op and op.args
  if args == nil or e == nil then return allow() end
  local required = args.required_memory
  if required ~= nil and e.remaining_memory < required then
    return deny(subject.EUICC, reason.INSUFFICIENT_MEMORY, "the eUICC does not have the memory the Profile needs")
  end
  if args.iccid ~= nil and eis.profile(e, args.iccid) ~= nil then
    return deny(subject.PROFILE_ICCID, reason.ALREADY_IN_USE, "a Profile with this ICCID is already on the eUICC")
  end
  return allow()
end

local function not_installed(p)
  if p.state == "Created" then
    return deny(subject.PROFILE_ICCID, reason.INVALID_TRANSITION, "the Profile is not fully installed")
  end
end

--- The Fall-Back Attribute (§3.27–3.29): not on the Emergency Profile.
function Plugin.before_set_fallback_attribute(ctx, conf)
  local p, denial = checked(ctx, conf, "before_set_fallback_attribute")
  if denial then return denial end
  denial = not_installed(p)
  if denial then return denial end
  if p.emergency then
    return deny(subject.PROFILE_ICCID, reason.REFUSED, "a Profile cannot hold both the Fall-Back and the Emergency attribute")
  end
  return allow()
end

--- The Emergency Profile Attribute (§3.25–3.26): not on the Fall-Back Profile; taking it
--- from another Operator's Profile needs a PLMA of that Operator.
function Plugin.before_set_emergency_profile_attribute(ctx, conf)
  local p, denial = checked(ctx, conf, "before_set_emergency_profile_attribute")
  if denial then return denial end
  denial = not_installed(p)
  if denial then return denial end
  if p.fallback then
    return deny(subject.PROFILE_ICCID, reason.REFUSED, "a Profile cannot hold both the Fall-Back and the Emergency attribute")
  end
  local other, e = nil, ctx.eis  -- another Operator's Profile holding the attribute
  if e ~= nil then
    local profiles = e.profiles
    for i = 1, #profiles do
      local q = profiles[i]
      if q.emergency and q.mno_id ~= p.mno_id then
        other = q
        break
      end
    end
  end
  local caller = ctx.caller
  if other ~= nil and caller ~= nil
     and not m2m.plma.authorises(ctx.plma, caller.oid, other.mno_id, other.profile_type, "SetEmergencyProfileAttribute") then
    return deny(subject.FUNCTION_REQUESTER, reason.NOT_ALLOWED, "replacing another Operator's Emergency Profile needs its PLMA")
  end
  return allow()
end

--- SM-SR change (§3.8): not while a download is in progress; an Operator initiator must own
--- a Profile on the eUICC.
function Plugin.before_smsr_change(ctx, conf)
  local e = ctx.eis
  if e == nil then return allow() end
  local profiles = e.profiles
  for i = 1, #profiles do
    if profiles[i].state == "Created" then
      return deny(subject.EUICC, reason.PENDING_OPERATION, "a Profile download is in progress on the eUICC")
    end
  end
  local caller = ctx.caller
  if caller ~= nil and caller.role == "MNO" and not m2m.util.contains(eis.owners(e), caller.oid) then
    return deny(subject.FUNCTION_REQUESTER, reason.NOT_ALLOWED, "the Operator owns no Profile on the eUICC")
  end
  return allow()
end

return Plugin
