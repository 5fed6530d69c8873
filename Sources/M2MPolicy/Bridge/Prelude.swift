// The prelude: trusted Lua run once per state, before the `m2m` module is frozen. It adds the
// PDK helpers written in Lua (m2m.pol2, m2m.eis, m2m.plma, m2m.util) and, in test states, the
// harness of `m2mrsp policy test` (describe/it/assert, fixtures, mocks, policy.*).
//
// It runs in a sandboxed environment like any plugin; its extra powers are the `internal`
// functions (C) it receives as an argument and keeps in upvalues plugins cannot reach.

enum Prelude {
    static let source = #"""
local m2m, internal, testing = ...
local exports = {}
local type, pairs, ipairs, tostring, error, select = type, pairs, ipairs, tostring, error, select
local concat = table.concat

-- m2m.util ------------------------------------------------------------------------------
local util = {}

--- True when `list` (a table or snapshot list) holds `value`.
function util.contains(list, value)
  if list == nil then return false end
  for i = 1, #list do
    if list[i] == value then return true end
  end
  return false
end

--- A deep copy of a snapshot (or any value) as plain, writable tables.
function util.copy(value, depth)
  depth = depth or 0
  if depth > 32 then error("m2m.util.copy: value nested too deeply", 2) end
  if type(value) == "table" or internal.is_snapshot(value) then
    local t = {}
    for k, v in pairs(value) do t[k] = util.copy(v, depth + 1) end
    return t
  end
  return value
end

--- Deep equality of plain values and snapshots.
function util.equal(a, b)
  if a == b then return true end
  local ta = type(a) == "table" or internal.is_snapshot(a)
  local tb = type(b) == "table" or internal.is_snapshot(b)
  if not (ta and tb) then return false end
  for k, v in pairs(a) do
    if not util.equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end
m2m.util = util

-- m2m.pol2 ------------------------------------------------------------------------------
local pol2 = {}

--- True when the Profile's POL2 holds a rule (PROFILE, action, qualification).
function pol2.has(profile, action, qualification)
  if profile == nil then return false end
  local rules = profile.pol2
  if rules == nil then return false end
  for i = 1, #rules do
    local r = rules[i]
    if r.action == action and r.qualification == qualification then return true end
  end
  return false
end
-- the snapshot carries these four as booleans (disable_not_allowed …); plain tables do not
local function flag(p, name, action, qualification)
  if p == nil then return false end
  local v = p[name]
  if v == nil then return pol2.has(p, action, qualification) end
  return v
end
function pol2.disabling_not_allowed(p) return flag(p, "disable_not_allowed", "DISABLE", "Not-Allowed") end
function pol2.deletion_not_allowed(p) return flag(p, "delete_not_allowed", "DELETE", "Not-Allowed") end
function pol2.enabling_not_allowed(p) return flag(p, "enable_not_allowed", "ENABLE", "Not-Allowed") end
function pol2.auto_delete_on_disable(p) return flag(p, "auto_delete", "DISABLE", "Auto-Delete") end
m2m.pol2 = pol2

-- m2m.eis -------------------------------------------------------------------------------
local eis = {}
local function find(e, test, arg)
  if e == nil then return nil end
  local profiles = e.profiles
  for i = 1, #profiles do
    local p = profiles[i]
    if test(p, arg) then return p end
  end
  return nil
end
local function enabled(p) return p.state == "Enabled" end
local function fallback(p) return p.fallback end
local function emergency(p) return p.emergency end
local function with_iccid(p, iccid) return p.iccid == iccid end

--- The enabled Profile of an EIS, or nil.
function eis.enabled_profile(e) return find(e, enabled) end
--- The Profile holding the Fall-Back Attribute, or nil.
function eis.fallback_profile(e) return find(e, fallback) end
--- The Profile holding the Emergency Profile Attribute, or nil.
function eis.emergency_profile(e) return find(e, emergency) end
--- The Profile with this ICCID, or nil.
function eis.profile(e, iccid) return find(e, with_iccid, iccid) end
--- The distinct owners (MNO OIDs) of the Profiles, in EIS order.
function eis.owners(e)
  local out, seen = {}, {}
  if e == nil then return out end
  for _, p in ipairs(e.profiles) do
    if not seen[p.mno_id] then
      seen[p.mno_id] = true
      out[#out + 1] = p.mno_id
    end
  end
  return out
end
m2m.eis = eis

-- m2m.plma ------------------------------------------------------------------------------
local plma = {}

--- True when an entry of `list` lets M2M SP `sp` use `what` (a function or a notification
--- type) on Profiles of Operator `mno` and type `profile_type`.
function plma.authorises(list, sp, mno, profile_type, what)
  if list == nil then return false end
  for i = 1, #list do
    local e = list[i]
    if e.m2msp_id == sp and e.mno_id == mno and e.profile_type == profile_type
       and (util.contains(e.functions, what) or util.contains(e.notifications, what)) then
      return true
    end
  end
  return false
end

--- The M2M SPs that `list` authorises to receive notification `kind` about Profiles of
--- Operator `mno` and type `profile_type`, in list order, without duplicates.
function plma.recipients(list, mno, profile_type, kind)
  local out, seen = {}, {}
  if list == nil then return out end
  for i = 1, #list do
    local e = list[i]
    if e.mno_id == mno and e.profile_type == profile_type and util.contains(e.notifications, kind)
       and not seen[e.m2msp_id] then
      seen[e.m2msp_id] = true
      out[#out + 1] = e.m2msp_id
    end
  end
  return out
end
m2m.plma = plma

if not testing then return exports end

-- the test harness ----------------------------------------------------------------------
local DEFAULT_CLOCK = 1704067200  -- 2024-01-01T00:00:00Z
local tests = {}
local root = { name = nil, before = {}, after = {} }
local stack = { root }

local env = {}

--- describe(name, fn): groups tests; names are joined with " › ".
function env.describe(name, fn)
  if type(name) ~= "string" or type(fn) ~= "function" then error("describe(name, function)", 2) end
  stack[#stack + 1] = { name = name, before = {}, after = {} }
  local ok, err = pcall(fn)
  stack[#stack] = nil
  if not ok then error(err, 0) end
end

--- it(name, fn): one test.
function env.it(name, fn)
  if type(name) ~= "string" or type(fn) ~= "function" then error("it(name, function)", 2) end
  local names, before, after = {}, {}, {}
  for i = 1, #stack do
    local level = stack[i]
    if level.name then names[#names + 1] = level.name end
    for _, f in ipairs(level.before) do before[#before + 1] = f end
  end
  for i = #stack, 1, -1 do
    for _, f in ipairs(stack[i].after) do after[#after + 1] = f end
  end
  names[#names + 1] = name
  tests[#tests + 1] = { name = concat(names, " › "), fn = fn, before = before, after = after }
end

function env.before_each(fn) local level = stack[#stack]; level.before[#level.before + 1] = fn end
function env.after_each(fn) local level = stack[#stack]; level.after[#level.after + 1] = fn end

-- assertions
local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end
local function fail(message, default, level)
  error(message or default, (level or 2) + 1)
end

local assert = {}
function assert.equal(expected, actual, message)
  if expected ~= actual then fail(message, "expected " .. show(expected) .. ", got " .. show(actual), 2) end
  return actual
end
assert.equals = assert.equal
function assert.not_equal(a, b, message)
  if a == b then fail(message, "expected a value other than " .. show(a), 2) end
end
function assert.same(expected, actual, message)
  if not util.equal(expected, actual) then
    fail(message, "values differ: expected " .. show(expected) .. ", got " .. show(actual), 2)
  end
  return actual
end
function assert.truthy(v, message) if not v then fail(message, "expected a true value, got " .. show(v), 2) end return v end
function assert.falsy(v, message) if v then fail(message, "expected a false value, got " .. show(v), 2) end return v end
function assert.is_true(v, message) if v ~= true then fail(message, "expected true, got " .. show(v), 2) end end
function assert.is_false(v, message) if v ~= false then fail(message, "expected false, got " .. show(v), 2) end end
function assert.is_nil(v, message) if v ~= nil then fail(message, "expected nil, got " .. show(v), 2) end end
function assert.not_nil(v, message) if v == nil then fail(message, "expected a value, got nil", 2) end return v end
function assert.matches(pattern, s, message)
  if type(s) ~= "string" or not s:find(pattern) then
    fail(message, "expected " .. show(s) .. " to match " .. show(pattern), 2)
  end
end
function assert.has_error(fn, pattern, message)
  local ok, err = pcall(fn)
  if ok then fail(message, "expected an error", 2) end
  if pattern and not tostring(err):find(pattern, 1, true) then
    fail(message, "expected an error containing " .. show(pattern) .. ", got " .. show(tostring(err)), 2)
  end
  return err
end
assert.error = assert.has_error

local function verdict(v, kind, subject, reason, message)
  if internal.verdict_kind(v) == nil then fail(message, "expected m2m." .. kind .. "(…), got " .. show(v), 3) end
  if v.kind ~= kind then fail(message, "expected " .. kind .. ", got " .. tostring(v), 3) end
  if subject ~= nil and v.subject ~= subject then
    fail(message, "expected subject " .. tostring(subject) .. ", got " .. tostring(v), 3)
  end
  if reason ~= nil and v.reason ~= reason then
    fail(message, "expected reason " .. tostring(reason) .. ", got " .. tostring(v), 3)
  end
  return v
end
function assert.allowed(v, message) return verdict(v, "allow", nil, nil, message) end
function assert.denied(v, subject, reason, message) return verdict(v, "deny", subject, reason, message) end
function assert.warned(v, subject, reason, message) return verdict(v, "warn", subject, reason, message) end
function assert.kept(v, message) return verdict(v, "keep", nil, nil, message) end
function assert.dropped(v, message) return verdict(v, "drop", nil, nil, message) end

--- assert.routes(routes, { {via=, to=, retry=, role=, smdp=}, ... }): the same routes, in order.
function assert.routes(routes, expected, message)
  if type(routes) ~= "table" then fail(message, "expected a list of routes, got " .. show(routes), 2) end
  local got = {}
  for i, r in ipairs(routes) do
    got[i] = r.via .. " " .. r.to .. (r.smdp and (" via " .. r.smdp) or "") .. " " .. r.role .. " " .. r.retry
  end
  local want = {}
  for i, e in ipairs(expected) do
    want[i] = e.via .. " " .. e.to .. (e.smdp and (" via " .. e.smdp) or "") .. " " .. (e.role or "MNO") .. " " .. (e.retry or "standard")
  end
  local a, b = concat(got, "; "), concat(want, "; ")
  if a ~= b then fail(message, "routes differ:\n      expected: " .. b .. "\n      got:      " .. a, 2) end
end

env.assert = setmetatable(assert, {
  __call = function(_, v, message, ...)
    if not v then error(message or "assertion failed!", 2) end
    return v, message, ...
  end,
})

-- fixtures: built by the host, validated like production snapshots
local fixtures = {}
for _, kind in ipairs({ "eis", "profile", "caller", "operation", "plma", "onc", "notification", "input" }) do
  fixtures[kind] = function(t)
    if t ~= nil and type(t) ~= "table" then error("fixtures." .. kind .. " takes a table", 2) end
    return internal.fixture(kind, t or {})
  end
end
env.fixtures = fixtures

-- mocks
env.mock = {
  --- mock.clock("2024-05-01T10:00:00Z") or mock.clock(seconds): what m2m.clock reports.
  clock = function(t)
    if type(t) == "string" then t = m2m.clock.parse(t) end
    internal.set_clock(t)
  end,
  --- mock.lookup("eis", function(eid) return fixtures.eis{...} end)
  lookup = function(name, fn) internal.set_mock(name, fn) end,
  reset = function()
    internal.clear_mocks()
    internal.set_clock(DEFAULT_CLOCK)
  end,
}

-- the policy under test
local function hook_kind(hook)
  local id, kind = internal.hook_id(hook)
  if id == nil then error("unknown hook '" .. tostring(hook) .. "'", 3) end
  return kind
end
env.policy = {
  --- The whole pipeline of the bundle under test, as production runs it.
  decide = function(hook, input)
    if hook_kind(hook) ~= 1 then error(hook .. " is not a decision hook", 2) end
    return internal.decide(0, hook, input)
  end,
  route = function(input) return internal.decide(0, "route_notification", input) end,
  filter = function(input) return internal.decide(0, "filter_notification", input) end,
  --- One plugin's hook with a configuration checked against its schema.
  call = function(plugin, hook, input, conf, routes)
    hook_kind(hook)
    local fn = plugin[hook]
    if fn == nil then return nil end
    return internal.call(fn, hook, input, internal.conf(plugin.name, conf or {}), routes)
  end,
}

exports.testenv = env
function exports.reset()
  tests = {}
  root = { name = nil, before = {}, after = {} }
  stack = { root }
end
function exports.count() return #tests end
function exports.run(i)
  local t = tests[i]
  internal.clear_mocks()
  internal.set_clock(DEFAULT_CLOCK)
  local ok, err = true, nil
  for _, f in ipairs(t.before) do
    ok, err = internal.xpcall(f, internal.traceback)
    if not ok then break end
  end
  if ok then ok, err = internal.xpcall(t.fn, internal.traceback) end
  for _, f in ipairs(t.after) do
    local ok2, err2 = internal.xpcall(f, internal.traceback)
    if ok and not ok2 then ok, err = ok2, err2 end
  end
  return { name = t.name, ok = ok, message = (not ok) and tostring(err) or nil }
end
function exports.name(i) return tests[i].name end
return exports
"""#
}
