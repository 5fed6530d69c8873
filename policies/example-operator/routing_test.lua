-- example-operator routing: default routes plus audit copies.
local MNO, SMDP, AUDIT = "1.3.6.1.4.1.47800.10", "1.3.6.1.4.1.47800.3", "1.3.6.1.4.1.47800.28"
local SP = "1.3.6.1.4.1.47800.20"

local function routes(kind, plma)
  local n = fixtures.notification { type = kind, iccid = "89883010000000000100", mno_id = MNO,
                                    profile_type = "M2M_DEFAULT", smdp_id = SMDP }
  return policy.route(fixtures.input { hook = "route_notification", notification = n, plma = plma or {} })
end

describe("routing", function()
  it("adds an audit copy of deletions", function()
    assert.routes(routes("ProfileDeleted"), {
      { via = "ES2", to = MNO, smdp = SMDP, retry = "critical" },
      { via = "ES4", to = AUDIT, role = "M2MSP", retry = "best_effort" },
    })
  end)

  it("leaves other notifications to the default router", function()
    local plma = { fixtures.plma { mno_id = MNO, m2msp_id = SP, notifications = { "ProfileDownloaded" } } }
    assert.routes(routes("ProfileDownloaded", plma), {
      { via = "ES2", to = MNO, smdp = SMDP, retry = "best_effort" },
      { via = "ES4", to = SP, role = "M2MSP" },
    })
  end)
end)
