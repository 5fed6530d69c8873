-- The other Profile hooks of sgp02-pol2: disable, delete, download, attributes, SM-SR change.
local m2m = require "m2m"
local plugin = require "plugin"

local S, R = m2m.subject, m2m.reason
local MNO, OTHER, SP = "1.3.6.1.4.1.47800.10", "1.3.6.1.4.1.47800.11", "1.3.6.1.4.1.47800.20"
local A, B = "89883010000000000100", "89883010000000000209"

local function on(hook, target, others, extra)
  local profiles = { target }
  for _, p in ipairs(others or {}) do profiles[#profiles + 1] = p end
  local t = { hook = hook, eis = fixtures.eis { profiles = profiles }, profile = target,
              caller = fixtures.caller { role = "MNO", oid = MNO } }
  for k, v in pairs(extra or {}) do t[k] = v end
  return policy.call(plugin, hook, fixtures.input(t))
end

describe("before_disable_profile", function()
  it("allows disabling the enabled Profile", function()
    assert.allowed(on("before_disable_profile", fixtures.profile { iccid = A, state = "Enabled" }))
  end)
  it("denies a Profile that is not enabled", function()
    assert.denied(on("before_disable_profile", fixtures.profile { iccid = A }), S.PROFILE_ICCID, R.INVALID_TRANSITION)
  end)
  it("denies disabling when POL2 says Not-Allowed", function()
    local p = fixtures.profile { iccid = A, state = "Enabled", pol2 = { { action = "DISABLE", qualification = "Not-Allowed" } } }
    assert.denied(on("before_disable_profile", p), S.POL2, R.REFUSED)
  end)
  it("asks for the deletion of an Auto-Delete Profile", function()
    local p = fixtures.profile { iccid = A, state = "Enabled", pol2 = { { action = "DISABLE", qualification = "Auto-Delete" } } }
    assert.same({ A }, assert.allowed(on("before_disable_profile", p)).auto_delete)
  end)
  it("protects the Fall-Back Profile", function()
    local p = fixtures.profile { iccid = A, state = "Enabled", fallback = true }
    assert.denied(on("before_disable_profile", p), S.PROFILE_ICCID, R.REFUSED)
  end)
end)

describe("before_delete_profile", function()
  it("allows deleting a disabled Profile", function()
    assert.allowed(on("before_delete_profile", fixtures.profile { iccid = A }))
  end)
  it("denies when POL2 says deletion not allowed", function()
    local p = fixtures.profile { iccid = A, pol2 = { { action = "DELETE", qualification = "Not-Allowed" } } }
    local d = on("before_delete_profile", p)
    assert.denied(d, S.POL2, R.REFUSED)
    assert.equal("deny 8.2.3/3.8: POL2 of the Profile does not allow deleting it", tostring(d))
  end)
  it("denies the Fall-Back Profile and an enabled Profile", function()
    assert.denied(on("before_delete_profile", fixtures.profile { iccid = A, fallback = true }), S.POL2, R.REFUSED)
    assert.denied(on("before_delete_profile", fixtures.profile { iccid = A, state = "Enabled" }), S.PROFILE_ICCID, R.INVALID_TRANSITION)
  end)
  it("lets an M2M SP delete under a PLMA", function()
    local p = fixtures.profile { iccid = A, mno_id = MNO }
    local sp = fixtures.caller { role = "M2MSP", oid = SP }
    local grant = fixtures.plma { mno_id = MNO, m2msp_id = SP, functions = { "DeleteProfile" } }
    assert.allowed(on("before_delete_profile", p, {}, { caller = sp, plma = { grant } }))
    assert.denied(on("before_delete_profile", p, {}, { caller = sp }), S.FUNCTION_REQUESTER, R.NOT_ALLOWED)
  end)
end)

describe("before_download_profile", function()
  local function download(args, profiles, remaining)
    return policy.call(plugin, "before_download_profile", fixtures.input {
      hook = "before_download_profile",
      operation = fixtures.operation { interface = "ES3", name = "CreateISDP", args = args },
      eis = fixtures.eis { profiles = profiles or {}, remaining_memory = remaining or 65536 },
    })
  end
  it("allows a download that fits", function()
    assert.allowed(download { iccid = B, required_memory = 20000 })
  end)
  it("denies a download larger than the free memory", function()
    assert.denied(download({ required_memory = 70000 }), S.EUICC, R.INSUFFICIENT_MEMORY)
  end)
  it("denies an ICCID already on the eUICC", function()
    assert.denied(download({ iccid = A }, { fixtures.profile { iccid = A } }), S.PROFILE_ICCID, R.ALREADY_IN_USE)
  end)
  it("has no opinion without an EIS", function()
    assert.allowed(policy.call(plugin, "before_download_profile", fixtures.input { hook = "before_download_profile" }))
  end)
end)

describe("attributes", function()
  it("keeps the Fall-Back and Emergency attributes on different Profiles", function()
    assert.denied(on("before_set_fallback_attribute", fixtures.profile { iccid = A, emergency = true }), S.PROFILE_ICCID, R.REFUSED)
    assert.denied(on("before_set_emergency_profile_attribute", fixtures.profile { iccid = A, fallback = true }), S.PROFILE_ICCID, R.REFUSED)
    assert.allowed(on("before_set_fallback_attribute", fixtures.profile { iccid = A }))
  end)
  it("refuses attributes on a Profile still being installed", function()
    assert.denied(on("before_set_fallback_attribute", fixtures.profile { iccid = A, state = "Created" }), S.PROFILE_ICCID, R.INVALID_TRANSITION)
    assert.denied(on("before_set_emergency_profile_attribute", fixtures.profile { iccid = A, state = "Created" }), S.PROFILE_ICCID, R.INVALID_TRANSITION)
  end)
  it("needs the other Operator's PLMA to take its Emergency attribute", function()
    local mine = fixtures.profile { iccid = A, mno_id = MNO }
    local theirs = fixtures.profile { iccid = B, mno_id = OTHER, emergency = true }
    assert.denied(on("before_set_emergency_profile_attribute", mine, { theirs }), S.FUNCTION_REQUESTER, R.NOT_ALLOWED)
    local grant = fixtures.plma { mno_id = OTHER, m2msp_id = MNO, functions = { "SetEmergencyProfileAttribute" } }
    assert.allowed(on("before_set_emergency_profile_attribute", mine, { theirs }, { plma = { grant } }))
  end)
end)

describe("before_smsr_change", function()
  local function change(profiles, caller)
    return policy.call(plugin, "before_smsr_change", fixtures.input {
      hook = "before_smsr_change", eis = fixtures.eis { profiles = profiles },
      caller = caller or fixtures.caller { role = "MNO", oid = MNO } })
  end
  it("allows an Operator with a Profile on the eUICC", function()
    assert.allowed(change { fixtures.profile { iccid = A, state = "Enabled" } })
  end)
  it("waits for downloads in progress", function()
    assert.denied(change { fixtures.profile { iccid = A, state = "Created" } }, S.EUICC, R.PENDING_OPERATION)
  end)
  it("refuses an Operator without a Profile there", function()
    assert.denied(change({ fixtures.profile { iccid = A, mno_id = OTHER } }), S.FUNCTION_REQUESTER, R.NOT_ALLOWED)
  end)
  it("has no opinion without an EIS", function()
    assert.allowed(policy.call(plugin, "before_smsr_change", fixtures.input { hook = "before_smsr_change" }))
  end)
end)
