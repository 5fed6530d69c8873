-- example-operator POL2: the whole pipeline (sgp02-pol2, then pol2.lua), as production runs it.
local m2m = require "m2m"
local window = require "lib.window"

local S, R = m2m.subject, m2m.reason
local MNO, SP, BLOCKED = "1.3.6.1.4.1.47800.10", "1.3.6.1.4.1.47800.20", "1.3.6.1.4.1.47800.29"
local A, B = "89883010000000000100", "89883010000000000209"

local function input(hook, target_fields, caller, plma)
  target_fields.iccid = target_fields.iccid or B
  target_fields.mno_id = MNO
  local target = fixtures.profile(target_fields)
  local enabled = fixtures.profile { iccid = A, state = "Enabled", mno_id = MNO }
  return fixtures.input {
    hook = hook,
    caller = caller or fixtures.caller { role = "MNO", oid = MNO },
    eis = fixtures.eis { profiles = { enabled, target } },
    profile = target,
    plma = plma or {},
  }
end

local function sp(oid)
  local caller = fixtures.caller { role = "M2MSP", oid = oid }
  local grant = fixtures.plma { mno_id = MNO, m2msp_id = oid,
                                functions = { "EnableProfile", "DisableProfile", "DeleteProfile" } }
  return caller, { grant }
end

describe("maintenance window", function()
  it("lets M2M SPs enable Profiles inside the window", function()
    mock.clock("2024-05-01T02:30:00Z")
    local caller, plma = sp(SP)
    assert.allowed(policy.decide("before_enable_profile", input("before_enable_profile", {}, caller, plma)))
  end)

  it("denies M2M SPs outside the window", function()
    mock.clock("2024-05-01T12:00:00Z")
    local caller, plma = sp(SP)
    local d = policy.decide("before_enable_profile", input("before_enable_profile", {}, caller, plma))
    assert.denied(d, S.FUNCTION_REQUESTER, R.REFUSED)
    assert.matches("maintenance window", d.message)
  end)

  it("does not restrict the Operator itself", function()
    mock.clock("2024-05-01T12:00:00Z")
    assert.allowed(policy.decide("before_enable_profile", input("before_enable_profile", {})))
  end)

  it("wraps past midnight", function()
    assert.is_true(window.open({ start_hour = 22, end_hour = 2 }, { hour = 23 }))
    assert.is_true(window.open({ start_hour = 22, end_hour = 2 }, { hour = 1 }))
    assert.is_false(window.open({ start_hour = 22, end_hour = 2 }, { hour = 12 }))
    assert.is_true(window.open(nil, { hour = 12 }))
    assert.is_true(window.open({ start_hour = 3, end_hour = 3 }, { hour = 12 }))
  end)
end)

describe("operator rules", function()
  it("blocks a blocked M2M SP even with a PLMA", function()
    mock.clock("2024-05-01T02:00:00Z")
    local caller, plma = sp(BLOCKED)
    assert.denied(policy.decide("before_disable_profile", input("before_disable_profile", { state = "Enabled" }, caller, plma)),
      S.FUNCTION_REQUESTER, R.NOT_ALLOWED)
  end)

  it("keeps SGP.02 first: a POL2 refusal is not overridden", function()
    mock.clock("2024-05-01T02:00:00Z")
    local d = policy.decide("before_delete_profile",
      input("before_delete_profile", { pol2 = { { action = "DELETE", qualification = "Not-Allowed" } } }))
    assert.denied(d, S.POL2, R.REFUSED)
  end)

  it("never deletes protected Profile Types", function()
    local d = policy.decide("before_delete_profile", input("before_delete_profile", { profile_type = "EMERGENCY_ONLY" }))
    assert.denied(d, S.PROFILE_TYPE, R.REFUSED)
    assert.allowed(policy.decide("before_delete_profile", input("before_delete_profile", {})))
  end)

  it("warns when a test Profile is enabled", function()
    local d = policy.decide("before_enable_profile", input("before_enable_profile", { profile_type = "TEST_LAB" }))
    assert.warned(d, S.PROFILE_TYPE, R.CONDITIONS_OF_USE_NOT_SATISFIED)
  end)

  it("downloads only the Operator's Profile Types", function()
    local function download(profile_type)
      return policy.decide("before_download_profile", fixtures.input {
        hook = "before_download_profile", operator = MNO,
        operation = fixtures.operation { interface = "ES2", name = "DownloadProfile", args = { profile_type = profile_type } },
        eis = fixtures.eis {},
      })
    end
    assert.allowed(download("M2M_LTE"))
    assert.denied(download("M2M_5G"), S.PROFILE_TYPE, R.UNSUPPORTED)
  end)

  it("merges the Auto-Delete obligation with a warning", function()
    local enabled = fixtures.profile { iccid = A, state = "Enabled", mno_id = MNO,
                                       pol2 = { { action = "DISABLE", qualification = "Auto-Delete" } } }
    local target = fixtures.profile { iccid = B, mno_id = MNO, profile_type = "TEST_LAB" }
    local d = policy.decide("before_enable_profile", fixtures.input {
      hook = "before_enable_profile", caller = fixtures.caller { role = "MNO", oid = MNO },
      eis = fixtures.eis { profiles = { enabled, target } }, profile = target })
    assert.warned(d)
    assert.same({ A }, d.auto_delete)
  end)
end)
