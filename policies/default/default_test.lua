-- The default bundle end to end: the three plugins composed as production composes them.
local m2m = require "m2m"

local S, R = m2m.subject, m2m.reason
local MNO, SMDP = "1.3.6.1.4.1.47800.10", "1.3.6.1.4.1.47800.3"
local A, B = "89883010000000000100", "89883010000000000209"

describe("default bundle", function()
  it("applies the SGP.02 POL2 rules", function()
    local a = fixtures.profile { iccid = A, state = "Enabled", pol2 = { { action = "DISABLE", qualification = "Not-Allowed" } } }
    local b = fixtures.profile { iccid = B }
    local input = fixtures.input { hook = "before_enable_profile", eis = fixtures.eis { profiles = { a, b } }, profile = b,
                                   caller = fixtures.caller { role = "MNO", oid = MNO } }
    assert.denied(policy.decide("before_enable_profile", input), S.POL2, R.REFUSED)
  end)

  it("routes to the owner and filters by its ONC", function()
    local n = fixtures.notification { type = "ProfileDisabled", iccid = A, mno_id = MNO, profile_type = "M2M_DEFAULT", smdp_id = SMDP }
    assert.routes(policy.route(fixtures.input { hook = "route_notification", notification = n }),
      { { via = "ES2", to = MNO, smdp = SMDP } })
    local onc = { fixtures.onc { mno_id = MNO, discarded = { "ProfileDisabled" } } }
    assert.dropped(policy.filter(fixtures.input { hook = "filter_notification", notification = n, onc = onc }))
    assert.kept(policy.filter(fixtures.input { hook = "filter_notification", notification = n }))
  end)

  it("allows what no layer objects to", function()
    local input = fixtures.input { hook = "before_download_profile" }
    assert.equal(m2m.allow(), policy.decide("before_download_profile", input))
  end)
end)
