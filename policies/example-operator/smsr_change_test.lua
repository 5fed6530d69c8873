-- example-operator SM-SR change: the allow-list, on both sides of the change.
local m2m = require "m2m"

local S, R = m2m.subject, m2m.reason
local MNO = "1.3.6.1.4.1.47800.10"
local A = "89883010000000000100"
local PARTNER, UNKNOWN = "1.3.6.1.4.1.47800.40", "1.3.6.1.4.1.47800.49"

local function change(name, args)
  return fixtures.input {
    hook = "before_smsr_change",
    caller = fixtures.caller { role = "MNO", oid = MNO },
    eis = fixtures.eis { profiles = { fixtures.profile { iccid = A, state = "Enabled", mno_id = MNO } } },
    operation = fixtures.operation { interface = "ES4", name = name, args = args },
  }
end

describe("SM-SR allow-list", function()
  it("lets the current SM-SR hand over to a partner", function()
    assert.allowed(policy.decide("before_smsr_change", change("SMSRChange", { target_smsr_id = PARTNER })))
  end)
  it("refuses a target off the list", function()
    assert.denied(policy.decide("before_smsr_change", change("SMSRChange", { target_smsr_id = UNKNOWN })), S.SMSR, R.NOT_ALLOWED)
  end)
  it("lets the new SM-SR take over from a partner", function()
    assert.allowed(policy.decide("before_smsr_change", change("PrepareSMSRChange", { current_smsr_id = PARTNER })))
  end)
  it("refuses, on the new SM-SR, a current SM-SR off the list", function()
    assert.denied(policy.decide("before_smsr_change", change("PrepareSMSRChange", { current_smsr_id = UNKNOWN })), S.SMSR, R.NOT_ALLOWED)
  end)
end)
