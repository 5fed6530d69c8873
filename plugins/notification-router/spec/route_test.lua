-- route_notification of notification-router.
local m2m = require "m2m"
local plugin = require "plugin"

local MNO, OTHER, SP, SP2 = "1.3.6.1.4.1.47800.10", "1.3.6.1.4.1.47800.11", "1.3.6.1.4.1.47800.20", "1.3.6.1.4.1.47800.21"
local SMDP = "1.3.6.1.4.1.47800.3"
local A, B = "89883010000000000100", "89883010000000000209"

local function note(kind, extra)
  local t = { type = kind, iccid = A, mno_id = MNO, profile_type = "M2M_DEFAULT", smdp_id = SMDP }
  for k, v in pairs(extra or {}) do t[k] = v end
  return fixtures.notification(t)
end

local function route(n, plma, conf, eis)
  return policy.call(plugin, "route_notification",
    fixtures.input { hook = "route_notification", notification = n, plma = plma or {}, eis = eis }, conf)
end

describe("route_notification", function()
  it("sends a Profile notification to the owner through its SM-DP", function()
    assert.routes(route(note("ProfileEnabled")), { { via = "ES2", to = MNO, smdp = SMDP } })
  end)

  it("goes direct when the Profile has no SM-DP", function()
    local n = fixtures.notification { type = "ProfileDisabled", iccid = A, mno_id = MNO, profile_type = "M2M_DEFAULT" }
    assert.routes(route(n), { { via = "ES4", to = MNO } })
  end)

  it("follows owner_via and the per-Operator override", function()
    assert.routes(route(note("ProfileEnabled"), {}, { owner_via = "ES4" }), { { via = "ES4", to = MNO } })
    assert.routes(route(note("ProfileEnabled"), {}, { operators = { [MNO] = "ES4" } }), { { via = "ES4", to = MNO } })
  end)

  it("adds the M2M SPs whose PLMA lists the notification", function()
    local plma = {
      fixtures.plma { mno_id = MNO, m2msp_id = SP, notifications = { "ProfileEnabled" } },
      fixtures.plma { mno_id = MNO, m2msp_id = SP2, notifications = { "ProfileDeleted" } },
      fixtures.plma { mno_id = OTHER, m2msp_id = SP2, notifications = { "ProfileEnabled" } },
    }
    assert.routes(route(note("ProfileEnabled"), plma), {
      { via = "ES2", to = MNO, smdp = SMDP },
      { via = "ES4", to = SP, role = "M2MSP" },
    })
  end)

  it("does not notify the requester of its own call", function()
    assert.routes(route(note("ProfileEnabled", { requester = MNO })), {})
    assert.routes(route(note("ProfileEnabled", { requester = MNO }), {}, { notify_requester = true }),
      { { via = "ES2", to = MNO, smdp = SMDP } })
  end)

  it("retries deletions and SM-SR changes as critical", function()
    assert.routes(route(note("ProfileDeleted")), { { via = "ES2", to = MNO, smdp = SMDP, retry = "critical" } })
    assert.routes(route(note("ProfileDownloaded"), {}, { retry = { ProfileDownloaded = "best_effort" } }),
      { { via = "ES2", to = MNO, smdp = SMDP, retry = "best_effort" } })
  end)

  it("sends an SM-SR change to every Operator with a Profile on the eUICC, once", function()
    local eis = fixtures.eis { profiles = {
      fixtures.profile { iccid = A, mno_id = MNO, smdp_id = SMDP },
      fixtures.profile { iccid = B, mno_id = OTHER },
      fixtures.profile { iccid = "89883010000000000308", mno_id = MNO, smdp_id = SMDP },
    } }
    local n = fixtures.notification { type = "SMSRChange", smsr_id = "1.3.6.1.4.1.47800.9" }
    assert.routes(route(n, {}, nil, eis), {
      { via = "ES2", to = MNO, smdp = SMDP, retry = "critical" },
      { via = "ES4", to = OTHER, retry = "critical" },
    })
  end)

  it("keeps routes of earlier layers and adds no duplicate", function()
    local ctx = fixtures.input { hook = "route_notification", notification = note("ProfileEnabled") }
    local earlier = { m2m.route { via = "ES4", to = SP2, role = "M2MSP", retry = "none" } }
    local routes = policy.call(plugin, "route_notification", ctx, nil, earlier)
    assert.routes(routes, { { via = "ES4", to = SP2, role = "M2MSP", retry = "none" }, { via = "ES2", to = MNO, smdp = SMDP } })
    assert.equal(2, #policy.call(plugin, "route_notification", ctx, nil, routes))
  end)

  it("has no opinion without a notification", function()
    assert.is_nil(policy.call(plugin, "route_notification", fixtures.input { hook = "route_notification" }))
  end)
end)
