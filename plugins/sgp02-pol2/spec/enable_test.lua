-- before_enable_profile of sgp02-pol2, hook by hook, with fixtures and the plugin's own conf.
local m2m = require "m2m"
local plugin = require "plugin"

local S, R = m2m.subject, m2m.reason
local MNO, OTHER, SP = "1.3.6.1.4.1.47800.10", "1.3.6.1.4.1.47800.11", "1.3.6.1.4.1.47800.20"
local A, B = "89883010000000000100", "89883010000000000209"

-- An eUICC with Profile A enabled (with `rules_a`) and Profile B disabled.
local function input(rules_a, caller, plma)
  local a = fixtures.profile { iccid = A, state = "Enabled", mno_id = MNO, pol2 = rules_a or {} }
  local b = fixtures.profile { iccid = B, state = "Disabled", mno_id = MNO }
  return fixtures.input {
    hook = "before_enable_profile",
    caller = caller or fixtures.caller { role = "MNO", oid = MNO },
    operation = fixtures.operation { interface = "ES4", name = "EnableProfile", args = { iccid = B } },
    eis = fixtures.eis { profiles = { a, b } },
    profile = b,
    plma = plma or {},
  }
end

local function enable(ctx, conf) return policy.call(plugin, "before_enable_profile", ctx, conf) end

describe("before_enable_profile", function()
  it("allows enabling a disabled Profile of the caller", function()
    assert.allowed(enable(input()))
  end)

  it("denies when the enabled Profile's POL2 does not allow disabling it", function()
    local d = enable(input { { action = "DISABLE", qualification = "Not-Allowed" } })
    assert.denied(d, S.POL2, R.REFUSED)
    assert.matches("enabled Profile", d.message)
  end)

  it("allows with auto_delete when the enabled Profile's POL2 says Auto-Delete", function()
    local d = assert.allowed(enable(input { { action = "DISABLE", qualification = "Auto-Delete" } }))
    assert.same({ A }, d.auto_delete)
  end)

  it("denies an Operator that does not own the Profile", function()
    local d = enable(input(nil, fixtures.caller { role = "MNO", oid = OTHER }))
    assert.denied(d, S.PROFILE_ICCID, R.NOT_ALLOWED)
  end)

  it("lets an M2M SP act only under a PLMA for EnableProfile", function()
    local sp = fixtures.caller { role = "M2MSP", oid = SP }
    assert.denied(enable(input(nil, sp)), S.FUNCTION_REQUESTER, R.NOT_ALLOWED)
    local grant = fixtures.plma { mno_id = MNO, m2msp_id = SP, functions = { "EnableProfile" } }
    assert.allowed(enable(input(nil, sp, { grant })))
    local other = fixtures.plma { mno_id = MNO, m2msp_id = SP, functions = { "DisableProfile" } }
    assert.denied(enable(input(nil, sp, { other })), S.FUNCTION_REQUESTER, R.NOT_ALLOWED)
  end)

  it("skips the authorisation checks when check_authorisation is off", function()
    local d = enable(input(nil, fixtures.caller { role = "MNO", oid = OTHER }), { check_authorisation = false })
    assert.allowed(d)
  end)

  it("denies an already enabled or half-installed target", function()
    local a = fixtures.profile { iccid = A, state = "Enabled" }
    local c = fixtures.profile { iccid = B, state = "Created" }
    local e = fixtures.eis { profiles = { a, c } }
    assert.denied(enable(fixtures.input { hook = "before_enable_profile", eis = e, profile = a }), S.PROFILE_ICCID, R.INVALID_TRANSITION)
    assert.denied(enable(fixtures.input { hook = "before_enable_profile", eis = e, profile = c }), S.PROFILE_ICCID, R.INVALID_TRANSITION)
  end)

  it("denies a target whose POL2 forbids enabling it", function()
    local b = fixtures.profile { iccid = B, pol2 = { { action = "ENABLE", qualification = "Not-Allowed" } } }
    local d = enable(fixtures.input { hook = "before_enable_profile", eis = fixtures.eis { profiles = { b } }, profile = b })
    assert.denied(d, S.POL2, R.REFUSED)
  end)

  it("denies an unknown Profile", function()
    assert.denied(enable(fixtures.input { hook = "before_enable_profile", eis = fixtures.eis {} }), S.PROFILE_ICCID, R.UNKNOWN)
  end)

  it("refuses a configuration that does not match the schema", function()
    assert.has_error(function() enable(input(), { check_authorisation = "yes" }) end, "a boolean is expected")
    assert.has_error(function() enable(input(), { unknown = 1 }) end, "unknown field")
  end)
end)
