-- filter_notification of onc-filter.
local plugin = require "plugin"

local MNO, OTHER = "1.3.6.1.4.1.47800.10", "1.3.6.1.4.1.47800.11"

local function filter(kind, onc, conf, profile_type)
  local n = fixtures.notification { type = kind, iccid = "89883010000000000100", mno_id = MNO,
                                    profile_type = profile_type or "M2M_DEFAULT" }
  return policy.call(plugin, "filter_notification",
    fixtures.input { hook = "filter_notification", notification = n, onc = onc or {} }, conf)
end

describe("filter_notification", function()
  it("has no opinion without an ONC entry", function()
    assert.is_nil(filter("ProfileEnabled"))
  end)

  it("drops what the owner's ONC discards for the Profile Type", function()
    local onc = { fixtures.onc { mno_id = MNO, profile_type = "M2M_DEFAULT", discarded = { "ProfileEnabled", "ProfileDisabled" } } }
    local d = assert.dropped(filter("ProfileEnabled", onc))
    assert.matches("ONC of " .. MNO, d.message)
    assert.is_nil(filter("ProfileDeleted", onc))
  end)

  it("ignores entries of other Operators and other Profile Types", function()
    local onc = {
      fixtures.onc { mno_id = OTHER, profile_type = "M2M_DEFAULT", discarded = { "ProfileEnabled" } },
      fixtures.onc { mno_id = MNO, profile_type = "OTHER_TYPE", discarded = { "ProfileEnabled" } },
    }
    assert.is_nil(filter("ProfileEnabled", onc))
  end)

  it("never drops what never_discard protects", function()
    local onc = { fixtures.onc { mno_id = MNO, discarded = { "ProfileDeleted" } } }
    assert.is_nil(filter("ProfileDeleted", onc, { never_discard = { "ProfileDeleted" } }))
  end)
end)
