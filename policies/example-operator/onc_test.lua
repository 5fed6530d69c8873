-- example-operator filtering: the ONC (onc-filter) plus the test-Profile rule (onc.lua).
local MNO = "1.3.6.1.4.1.47800.10"

local function filter(kind, profile_type, onc)
  local n = fixtures.notification { type = kind, iccid = "89883010000000000100", mno_id = MNO, profile_type = profile_type }
  return policy.filter(fixtures.input { hook = "filter_notification", notification = n, onc = onc or {} })
end

describe("filtering", function()
  it("drops downloads of test Profiles", function()
    assert.dropped(filter("ProfileDownloaded", "TEST_LAB"))
    assert.kept(filter("ProfileDownloaded", "M2M_DEFAULT"))
  end)

  it("applies the Operator's ONC but never drops SM-SR changes", function()
    local onc = { fixtures.onc { mno_id = MNO, profile_type = "M2M_DEFAULT", discarded = { "ProfileEnabled", "SMSRChange" } } }
    assert.dropped(filter("ProfileEnabled", "M2M_DEFAULT", onc))
    assert.kept(filter("SMSRChange", "M2M_DEFAULT", onc))
  end)
end)
