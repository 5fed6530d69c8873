/*
** The `m2m` PDK as seen from Lua: subject/reason constants, verdicts (allow, warn, deny, keep,
** drop, route), read-only module tables, m2m.log, m2m.clock, m2m.lookup, m2m.ctx, m2m.phase,
** and the host trampoline. Functions that only make sense inside a hook check the phase first,
** as Kong's PDK does (docs/plugins.md lists each function's phases).
**
** The host (Swift) is reached only through m2m_host_call: arguments are encoded into a C buffer,
** Swift answers with bytes or an error message and returns; only then does C raise.
*/
#include "m2m_internal.h"
#include <stdio.h>

#define VERDICT_MAGIC 0x56455244  /* 'VERD' */
#define CONST_MAGIC 0x434f4e53    /* 'CONS' */

typedef struct verdict {
  int magic;
  int kind;              /* M2M_VERDICT_* */
  int subject, reason;   /* table rows or -1 */
  int via, role, retry;  /* routes: vocabulary indexes */
} verdict;
/* user values: 1 message (or route 'to'), 2 obligations (array) or route 'smdp' */

typedef struct constant {
  int magic;
  int table;  /* 0 subject, 1 reason */
  int row;
} constant;
/* user value 1: {code=, name=, meaning=} */

static const char *const verdict_names[] = { "none", "allow", "warn", "deny", "keep", "drop", "route" };

/* ---- phases ---- */

#define ANY_HOOK ((1 << M2M_HOOK_DECISION) | (1 << M2M_HOOK_ROUTE) | (1 << M2M_HOOK_FILTER))

const char *m2m_phase_name(lua_State *L, m2m_state *S) {
  switch (S->phase) {
    case M2M_PHASE_NONE: return "none";
    case M2M_PHASE_LOAD: return "load";
    case M2M_PHASE_TEST: return "test";
    default: {
      lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_hooks);  /* push hook names */
      lua_rawgeti(L, -1, S->phase - M2M_PHASE_HOOK0 + 1);  /* push name */
      const char *name = lua_tostring(L, -1);  /* kept alive by the hook names table */
      lua_pop(L, 2);  /* pop name, hook names */
      return name ? name : "hook";
    }
  }
}

/* Raises unless the running phase is a hook of a kind in 'mask' (or the test phase). */
static void check_phase(lua_State *L, m2m_state *S, int mask, const char *fname) {
  if (S->phase == M2M_PHASE_TEST) return;
  if (S->phase >= M2M_PHASE_HOOK0) {
    int kind = S->hook_kind[S->phase - M2M_PHASE_HOOK0];
    if (mask & (1 << kind)) return;
  }
  luaL_error(L, "%s is not available in phase '%s'", fname, m2m_phase_name(L, S));
}

/* ---- safe strings (never call metamethods) ---- */

int m2m_safe_tostring(lua_State *L, int idx) {
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: lua_pushvalue(L, idx); break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, idx));
      else lua_pushfstring(L, "%f", (LUAI_UACNUMBER)lua_tonumber(L, idx));
      break;
    case LUA_TBOOLEAN: lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false"); break;
    case LUA_TNIL: lua_pushliteral(L, "nil"); break;
    default: lua_pushfstring(L, "<%s>", luaL_typename(L, idx)); break;
  }
  return 1;
}

/*
** Message handler of every protected call: appends a traceback to string errors; any other
** error object is described by its type, without running its metamethods (an error object
** whose __tostring loops or errors cannot hurt the host). Runs with allocator headroom.
*/
int m2m_msgh(lua_State *L) {
  m2m_state *S = m2m_get(L);
  S->mem_relaxed++;
  const char *msg;
  if (lua_type(L, 1) == LUA_TSTRING) msg = lua_tostring(L, 1);
  else msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);  /* push message + traceback */
  S->mem_relaxed--;
  return 1;
}

/* ---- host trampoline ---- */

/*
** Calls host function 'function' with stack values first..last and pushes its reply (one
** value, nil for an empty reply). A host error is raised here, in C, after Swift returned.
*/
int m2m_host_call(lua_State *L, int function, int first, int last) {
  m2m_state *S = m2m_get(L);
  if (S->host == NULL) {
    if (function == M2M_HOST_LOG) return 0;
    return luaL_error(L, "m2m: no host attached to this state");
  }
  m2m_encode_args(L, S, first, last, &S->scratch);
  m2m_host_reply reply = { NULL, 0, 0 };
  S->host(S->host_ud, function, S->scratch.data, S->scratch.length, &reply);  /* Swift; never raises */
  if (reply.is_error) {
    lua_pushlstring(L, (const char *)reply.data, reply.length);  /* push message */
    return lua_error(L);
  }
  if (reply.length == 0) lua_pushnil(L);
  else m2m_push_blob_value(L, reply.data, reply.length);  /* push decoded reply */
  return 1;
}

/* ---- constants ---- */

static constant *toconst(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TUSERDATA || lua_rawlen(L, idx) != sizeof(constant)) return NULL;
  constant *c = (constant *)lua_touserdata(L, idx);
  return c->magic == CONST_MAGIC ? c : NULL;
}

static int const_index(lua_State *L) {
  lua_getiuservalue(L, 1, 1);  /* push info */
  lua_pushvalue(L, 2);  /* push key */
  lua_rawget(L, -2);  /* replace by info[key] */
  return 1;
}

static int const_tostring(lua_State *L) {
  lua_getiuservalue(L, 1, 1);  /* push info */
  lua_getfield(L, -1, "code");  /* push code */
  return 1;
}

/*
** Builds the constants of one table from the vocabulary list at 'list' ({code, name, meaning}
** records): pushes a table NAME -> constant and stores the array row -> constant under *ref.
*/
static void build_constants(lua_State *L, m2m_state *S, int list, int which, int *ref, int *count) {
  lua_Integer n = luaL_len(L, list);
  lua_createtable(L, 0, (int)n);  /* push NAME -> constant */
  lua_createtable(L, (int)n, 0);  /* push row -> constant */
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, list, i);  /* push entry */
    int e = lua_gettop(L);
    constant *c = (constant *)lua_newuserdatauv(L, sizeof(constant), 1);  /* push constant */
    c->magic = CONST_MAGIC;
    c->table = which;
    c->row = (int)(i - 1);
    lua_createtable(L, 0, 3);  /* push info */
    lua_getfield(L, e, "code"); lua_setfield(L, -2, "code");
    lua_getfield(L, e, "name"); lua_setfield(L, -2, "name");
    lua_getfield(L, e, "meaning"); lua_setfield(L, -2, "meaning");
    lua_setiuservalue(L, -2, 1);  /* constant.uservalue = info; pops info */
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_const_mt);  /* push metatable */
    lua_setmetatable(L, -2);  /* pops metatable */
    lua_pushvalue(L, -1);  /* push constant again */
    lua_rawseti(L, e - 1, i);  /* rows[i] = constant */
    lua_getfield(L, e, "name");  /* push NAME */
    lua_pushvalue(L, -2);  /* push constant */
    lua_rawset(L, e - 2);  /* names[NAME] = constant */
    lua_pop(L, 2);  /* pop constant, entry */
  }
  *ref = luaL_ref(L, LUA_REGISTRYINDEX);  /* pops rows; NAME table stays on top */
  *count = (int)n;
}

/* ---- verdicts ---- */

static verdict *toverdict(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TUSERDATA || lua_rawlen(L, idx) != sizeof(verdict)) return NULL;
  verdict *v = (verdict *)lua_touserdata(L, idx);
  return v->magic == VERDICT_MAGIC ? v : NULL;
}

int m2m_verdict_kind(lua_State *L, int idx) {
  verdict *v = toverdict(L, idx);
  return v ? v->kind : -1;
}

static verdict *new_verdict(lua_State *L, int kind) {
  m2m_state *S = m2m_get(L);
  verdict *v = (verdict *)lua_newuserdatauv(L, sizeof(verdict), 2);  /* push verdict */
  v->magic = VERDICT_MAGIC;
  v->kind = kind;
  v->subject = v->reason = v->via = v->role = v->retry = -1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_verdict_mt);  /* push metatable */
  lua_setmetatable(L, -2);  /* pops metatable */
  return v;
}

/* the row of the constant at 'idx' of table 'which', or raises naming argument 'arg' */
static int check_constant(lua_State *L, int idx, int which, const char *fname) {
  constant *c = toconst(L, idx);
  if (c == NULL || c->table != which)
    luaL_error(L, "bad argument #%d to '%s' (%s expected, got %s)", idx, fname,
               which == 0 ? "an m2m.subject constant" : "an m2m.reason constant",
               c ? "the other table's constant" : luaL_typename(L, idx));
  return c->row;
}

static void check_message(lua_State *L, int idx, const char *fname) {
  int t = lua_type(L, idx);
  if (t != LUA_TNIL && t != LUA_TNONE && t != LUA_TSTRING)
    luaL_error(L, "bad argument #%d to '%s' (string expected, got %s)", idx, fname, luaL_typename(L, idx));
}

/*
** Reads the options of allow/warn ({auto_delete = iccid or {iccid, ...}}) at 'idx' into a fresh
** array stored as user value 2 of the verdict at 'v'.
*/
static void read_options(lua_State *L, int idx, int v, const char *fname) {
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx)) {  /* only known options */
    if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), "auto_delete") != 0)
      luaL_error(L, "%s: unknown option '%s'", fname, lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?");
    lua_pop(L, 1);
  }
  lua_getfield(L, idx, "auto_delete");  /* push option */
  int o = lua_gettop(L);
  lua_newtable(L);  /* push obligations */
  if (lua_type(L, o) == LUA_TSTRING) {
    lua_pushvalue(L, o);
    lua_rawseti(L, -2, 1);
  } else if (lua_type(L, o) == LUA_TTABLE) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, o);
    if (n > M2M_MAX_OBLIGATIONS) luaL_error(L, "%s: at most %d auto_delete entries", fname, M2M_MAX_OBLIGATIONS);
    for (lua_Integer i = 1; i <= n; i++) {
      if (lua_rawgeti(L, o, i) != LUA_TSTRING) luaL_error(L, "%s: auto_delete entries must be ICCID strings", fname);
      lua_rawseti(L, -2, i);
    }
  } else if (!lua_isnil(L, o)) {
    luaL_error(L, "%s: auto_delete must be an ICCID string or a list of them", fname);
  }
  lua_setiuservalue(L, v, 2);  /* verdict.obligations = obligations; pops them */
  lua_pop(L, 1);  /* pop option */
}

/* m2m.allow([options]) */
static int pdk_allow(lua_State *L) {
  m2m_state *S = m2m_get(L);
  check_phase(L, S, 1 << M2M_HOOK_DECISION, "m2m.allow");
  if (lua_isnoneornil(L, 1)) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_allow);  /* push the shared allow verdict */
    return 1;
  }
  new_verdict(L, M2M_VERDICT_ALLOW);  /* push verdict */
  read_options(L, 1, lua_gettop(L), "m2m.allow");
  return 1;
}

/* m2m.warn(subject, reason, message[, options]) and m2m.deny(subject, reason, message) */
static int warn_or_deny(lua_State *L, int kind, const char *fname) {
  m2m_state *S = m2m_get(L);
  check_phase(L, S, 1 << M2M_HOOK_DECISION, fname);
  lua_settop(L, 4);  /* options (or nil) at 4, the verdict at 5 */
  int subject = check_constant(L, 1, 0, fname);
  int reason = check_constant(L, 2, 1, fname);
  check_message(L, 3, fname);
  if (kind == M2M_VERDICT_DENY && !lua_isnoneornil(L, 4))
    luaL_error(L, "bad argument #4 to '%s' (a denial takes no options)", fname);
  verdict *v = new_verdict(L, kind);  /* push verdict */
  v->subject = subject;
  v->reason = reason;
  lua_pushvalue(L, 3);  /* push message (or nil) */
  lua_setiuservalue(L, -2, 1);
  if (kind == M2M_VERDICT_WARN) read_options(L, 4, lua_gettop(L), fname);
  return 1;
}
static int pdk_warn(lua_State *L) { return warn_or_deny(L, M2M_VERDICT_WARN, "m2m.warn"); }
static int pdk_deny(lua_State *L) { return warn_or_deny(L, M2M_VERDICT_DENY, "m2m.deny"); }

/* m2m.keep() */
static int pdk_keep(lua_State *L) {
  m2m_state *S = m2m_get(L);
  check_phase(L, S, 1 << M2M_HOOK_FILTER, "m2m.keep");
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_keep);  /* push the shared keep verdict */
  return 1;
}

/* m2m.drop([message]) */
static int pdk_drop(lua_State *L) {
  m2m_state *S = m2m_get(L);
  check_phase(L, S, 1 << M2M_HOOK_FILTER, "m2m.drop");
  check_message(L, 1, "m2m.drop");
  new_verdict(L, M2M_VERDICT_DROP);  /* push verdict */
  lua_pushvalue(L, 1);  /* push message */
  lua_setiuservalue(L, -2, 1);
  return 1;
}

/* true when the string at 'idx' is a dotted number (an OID) */
static int is_oid(lua_State *L, int idx) {
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);
  int digit = 0;
  if (s == NULL || n == 0 || n > 128) return 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] >= '0' && s[i] <= '9') digit = 1;
    else if (s[i] == '.' && digit) digit = 0;
    else return 0;
  }
  return digit;
}

/* index of the string field 'field' of table 'spec' in the name->index+1 map 'ref', or raises */
static int route_choice(lua_State *L, int spec, const char *field, int ref, const char *dflt) {
  lua_getfield(L, spec, field);  /* push value */
  if (lua_isnil(L, -1) && dflt) {
    lua_pop(L, 1);
    lua_pushstring(L, dflt);
  }
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "m2m.route: '%s' must be a string", field);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);  /* push map */
  lua_pushvalue(L, -2);  /* push value */
  if (lua_rawget(L, -2) != LUA_TNUMBER)  /* replace by index+1 */
    luaL_error(L, "m2m.route: unknown %s '%s'", field, lua_tostring(L, -3));
  int i = (int)lua_tointeger(L, -1) - 1;
  lua_pop(L, 3);  /* pop index, map, value */
  return i;
}

/* m2m.route{via = "ES2"|"ES4", to = oid, smdp = oid (ES2), role = "MNO"|"M2MSP", retry = class} */
static int pdk_route(lua_State *L) {
  m2m_state *S = m2m_get(L);
  check_phase(L, S, 1 << M2M_HOOK_ROUTE, "m2m.route");
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
    if (strcmp(k, "via") && strcmp(k, "to") && strcmp(k, "smdp") && strcmp(k, "role") && strcmp(k, "retry"))
      luaL_error(L, "m2m.route: unknown field '%s'", lua_type(L, -2) == LUA_TSTRING ? k : luaL_typename(L, -2));
    lua_pop(L, 1);
  }
  int via = route_choice(L, 1, "via", S->r_vias, NULL);
  int role = route_choice(L, 1, "role", S->r_roles, "MNO");
  int retry = route_choice(L, 1, "retry", S->r_retry, "standard");
  lua_getfield(L, 1, "to");  /* push to */
  if (!is_oid(L, -1)) luaL_error(L, "m2m.route: 'to' must be an OID string");
  lua_getfield(L, 1, "smdp");  /* push smdp */
  lua_getfield(L, 1, "via");  /* push via */
  int needs_smdp = strcmp(lua_tostring(L, -1), "ES2") == 0;
  lua_pop(L, 1);  /* pop via */
  if (needs_smdp && !is_oid(L, -1)) luaL_error(L, "m2m.route: a route via ES2 needs 'smdp', the OID of the relaying SM-DP");
  if (!needs_smdp && !lua_isnil(L, -1)) luaL_error(L, "m2m.route: 'smdp' is only for routes via ES2");
  verdict *v = new_verdict(L, M2M_VERDICT_ROUTE);  /* push verdict */
  v->via = via;
  v->role = role;
  v->retry = retry;
  lua_pushvalue(L, -3);  /* push to */
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, -2);  /* push smdp */
  lua_setiuservalue(L, -2, 2);
  return 1;
}

/* name of entry i (0-based) of the vocabulary list held by map 'ref' (name -> i+1) */
static void push_choice_name(lua_State *L, int ref, int i) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);  /* push map */
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_tointeger(L, -1) == i + 1) {
      lua_pop(L, 1);  /* pop index, keep name */
      lua_remove(L, -2);  /* remove map */
      return;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_pushnil(L);
}

/* verdict fields for plugins and tests: kind, subject, reason, message, auto_delete, via, to ... */
static int verdict_index(lua_State *L) {
  m2m_state *S = m2m_get(L);
  verdict *v = toverdict(L, 1);
  const char *k = lua_tostring(L, 2);
  if (v == NULL || k == NULL) return 0;
  if (strcmp(k, "kind") == 0) lua_pushstring(L, verdict_names[v->kind]);
  else if (strcmp(k, "subject") == 0 && v->subject >= 0) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_subjects);
    lua_rawgeti(L, -1, v->subject + 1);
  } else if (strcmp(k, "reason") == 0 && v->reason >= 0) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_reasons);
    lua_rawgeti(L, -1, v->reason + 1);
  } else if (v->kind == M2M_VERDICT_ROUTE) {
    if (strcmp(k, "to") == 0) lua_getiuservalue(L, 1, 1);
    else if (strcmp(k, "smdp") == 0) lua_getiuservalue(L, 1, 2);
    else if (strcmp(k, "via") == 0) push_choice_name(L, S->r_vias, v->via);
    else if (strcmp(k, "role") == 0) push_choice_name(L, S->r_roles, v->role);
    else if (strcmp(k, "retry") == 0) push_choice_name(L, S->r_retry, v->retry);
    else return 0;
  } else if (strcmp(k, "message") == 0) lua_getiuservalue(L, 1, 1);
  else if (strcmp(k, "auto_delete") == 0) {
    if (lua_getiuservalue(L, 1, 2) != LUA_TTABLE) return 1;
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);  /* a copy: verdicts stay immutable */
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, -2, i);
      lua_rawseti(L, -2, i);
    }
  } else return 0;
  return 1;
}

static int verdict_eq(lua_State *L) {
  verdict *a = toverdict(L, 1), *b = toverdict(L, 2);
  int eq = a && b && a->kind == b->kind && a->subject == b->subject && a->reason == b->reason &&
           a->via == b->via && a->role == b->role && a->retry == b->retry;
  for (int u = 1; eq && u <= 2; u++) {
    int ta = lua_getiuservalue(L, 1, u), tb = lua_getiuservalue(L, 2, u);
    if (ta == LUA_TTABLE && tb == LUA_TTABLE) {  /* obligation lists: same strings */
      lua_Unsigned n = lua_rawlen(L, -2);
      eq = n == lua_rawlen(L, -1);
      for (lua_Unsigned i = 1; eq && i <= n; i++) {
        lua_rawgeti(L, -2, (lua_Integer)i);
        lua_rawgeti(L, -2, (lua_Integer)i);
        eq = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
      }
    } else {
      eq = lua_rawequal(L, -1, -2);
    }
    lua_pop(L, 2);
  }
  lua_pushboolean(L, eq);
  return 1;
}

/* the code string of constant 'row' in the rows array 'ref' (kept alive by the constant) */
static const char *const_code(lua_State *L, int ref, int row) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);  /* push rows */
  lua_rawgeti(L, -1, row + 1);  /* push constant */
  lua_getiuservalue(L, -1, 1);  /* push info */
  lua_getfield(L, -1, "code");  /* push code */
  const char *code = lua_tostring(L, -1);
  lua_pop(L, 4);  /* pop code, info, constant, rows */
  return code;
}

static int verdict_tostring(lua_State *L) {
  m2m_state *S = m2m_get(L);
  verdict *v = toverdict(L, 1);
  if (v == NULL) return 0;
  int n = 1;
  lua_pushstring(L, verdict_names[v->kind]);  /* push kind */
  if (v->subject >= 0) {
    const char *subject = const_code(L, S->r_subjects, v->subject);
    const char *reason = const_code(L, S->r_reasons, v->reason);
    lua_pushfstring(L, " %s/%s", subject, reason);  /* push codes */
    n++;
  }
  if (v->kind == M2M_VERDICT_ROUTE) {
    push_choice_name(L, S->r_vias, v->via);  /* push via */
    lua_getiuservalue(L, 1, 1);  /* push to */
    push_choice_name(L, S->r_retry, v->retry);  /* push retry */
    lua_pushfstring(L, " via %s to %s (%s)", lua_tostring(L, -3), lua_tostring(L, -2), lua_tostring(L, -1));
    lua_replace(L, -4);  /* text replaces via */
    lua_pop(L, 2);  /* pop retry, to */
    n++;
  } else if (lua_getiuservalue(L, 1, 1) == LUA_TSTRING) {  /* push message */
    lua_pushliteral(L, ": ");
    lua_insert(L, -2);  /* ": " before the message */
    n += 2;
  } else {
    lua_pop(L, 1);  /* pop nil */
  }
  lua_concat(L, n);
  return 1;
}

/* Fills S->out from the verdict at 'idx' (kind, codes, message). */
void m2m_read_verdict(lua_State *L, m2m_state *S, int idx) {
  verdict *v = toverdict(L, idx);
  if (v == NULL) return;
  S->out.kind = v->kind;
  S->out.subject = v->subject;
  S->out.reason = v->reason;
  if (lua_getiuservalue(L, idx, 1) == LUA_TSTRING)  /* the verdict keeps the string alive */
    S->out.message = lua_tolstring(L, -1, &S->out.message_length);
  lua_pop(L, 1);
  if (lua_getiuservalue(L, idx, 2) == LUA_TTABLE) {
    lua_Unsigned n = lua_rawlen(L, -1);
    for (lua_Unsigned i = 1; i <= n && S->out.obligation_count < M2M_MAX_OBLIGATIONS; i++) {
      lua_rawgeti(L, -1, (lua_Integer)i);
      int k = S->out.obligation_count++;
      S->out.obligations[k] = lua_tolstring(L, -1, &S->out.obligation_lengths[k]);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

/* Fills 'r' from the route verdict at 'idx'; 0 when the value is not a route. */
int m2m_read_route(lua_State *L, m2m_state *S, int idx, m2m_route *r) {
  (void)S;
  verdict *v = toverdict(L, idx);
  if (v == NULL || v->kind != M2M_VERDICT_ROUTE) return 0;
  r->via = v->via;
  r->role = v->role;
  r->retry = v->retry;
  lua_getiuservalue(L, idx, 1);
  r->to = lua_tolstring(L, -1, &r->to_length);
  lua_getiuservalue(L, idx, 2);
  r->smdp = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &r->smdp_length) : NULL;
  if (r->smdp == NULL) r->smdp_length = 0;
  lua_pop(L, 2);
  return 1;
}

/* ---- read-only tables ---- */

static int ro_newindex(lua_State *L) {
  return luaL_error(L, "attempt to modify a read-only table (%s)", lua_tostring(L, lua_upvalueindex(1)));
}

/* iterator over the hidden table (upvalue 1): never hands the table itself to the plugin */
static int ro_next(lua_State *L) {
  lua_settop(L, 2);
  if (lua_next(L, lua_upvalueindex(1))) return 2;
  return 0;
}
static int ro_pairs(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));  /* push hidden table */
  lua_pushcclosure(L, ro_next, 1);  /* push iterator */
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}
static int ro_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lua_rawlen(L, lua_upvalueindex(1)));
  return 1;
}

/* Replaces the table at the top by a read-only proxy named 'name' (tables inside are frozen too). */
static void freeze_named(lua_State *L, const char *name, int depth) {
  int t = lua_gettop(L);
  if (depth < 8) {
    lua_pushnil(L);
    while (lua_next(L, t)) {  /* freeze nested plain tables first */
      if (lua_type(L, -1) == LUA_TTABLE && lua_getmetatable(L, -1) == 0) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        lua_pushfstring(L, "%s.%s", name, k);  /* push nested name */
        const char *nested = lua_tostring(L, -1);
        lua_pushvalue(L, -2);  /* push nested table */
        freeze_named(L, nested, depth + 1);  /* replace by proxy */
        lua_pushvalue(L, -4);  /* push key */
        lua_pushvalue(L, -2);  /* push proxy */
        lua_rawset(L, t);  /* t[key] = proxy (existing key: no new entry) */
        lua_pop(L, 3);  /* pop proxy, nested name, value */
      } else {
        if (lua_type(L, -1) == LUA_TTABLE) lua_pop(L, 1);  /* pop its metatable */
        lua_pop(L, 1);  /* pop value */
      }
    }
  }
  lua_createtable(L, 0, 0);  /* push proxy */
  lua_createtable(L, 0, 5);  /* push metatable */
  lua_pushvalue(L, t);
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, name);
  lua_pushcclosure(L, ro_newindex, 1);
  lua_setfield(L, -2, "__newindex");
  lua_pushvalue(L, t);
  lua_pushcclosure(L, ro_pairs, 1);
  lua_setfield(L, -2, "__pairs");
  lua_pushvalue(L, t);
  lua_pushcclosure(L, ro_len, 1);
  lua_setfield(L, -2, "__len");
  lua_pushliteral(L, "m2m: read-only table");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);  /* pops metatable */
  lua_replace(L, t);  /* proxy replaces the table */
}

void m2m_freeze(lua_State *L, const char *name) {
  freeze_named(L, name, 0);
}

/* ---- log, print ---- */

static int log_at(lua_State *L, int level) {
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1) luaL_addchar(&b, ' ');
    m2m_safe_tostring(L, i);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);  /* push message */
  int msg = lua_gettop(L);
  lua_pushinteger(L, level);  /* push level */
  lua_pushvalue(L, msg);  /* push message */
  m2m_host_call(L, M2M_HOST_LOG, msg + 1, msg + 2);
  return 0;
}
static int pdk_log_debug(lua_State *L) { return log_at(L, 0); }
static int pdk_log_info(lua_State *L) { return log_at(L, 1); }
int m2m_print(lua_State *L) { return log_at(L, 1); }
static int pdk_log_warn(lua_State *L) { return log_at(L, 2); }
static int pdk_log_error(lua_State *L) { return log_at(L, 3); }

/* ---- clock ---- */

static void civil(long long days, long long *y, int *m, int *d) {
  long long z = days + 719468;
  long long era = (z >= 0 ? z : z - 146096) / 146097;
  long long doe = z - era * 146097;
  long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  long long mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

static int pdk_clock_now(lua_State *L) {
  m2m_state *S = m2m_get(L);
  check_phase(L, S, ANY_HOOK, "m2m.clock.now");
  lua_pushinteger(L, S->now_s);
  return 1;
}

static int pdk_clock_utc(lua_State *L) {
  m2m_state *S = m2m_get(L);
  check_phase(L, S, ANY_HOOK, "m2m.clock.utc");
  long long t = lua_isnoneornil(L, 1) ? S->now_s : (long long)luaL_checkinteger(L, 1);
  long long days = (t >= 0 ? t : t - 86399) / 86400;
  long long sod = t - days * 86400, y;
  int m, d;
  civil(days, &y, &m, &d);
  lua_createtable(L, 0, 8);
  lua_pushinteger(L, y); lua_setfield(L, -2, "year");
  lua_pushinteger(L, m); lua_setfield(L, -2, "month");
  lua_pushinteger(L, d); lua_setfield(L, -2, "day");
  lua_pushinteger(L, sod / 3600); lua_setfield(L, -2, "hour");
  lua_pushinteger(L, sod / 60 % 60); lua_setfield(L, -2, "min");
  lua_pushinteger(L, sod % 60); lua_setfield(L, -2, "sec");
  lua_pushinteger(L, ((days % 7 + 11) % 7) + 1); lua_setfield(L, -2, "wday");  /* 1 = Sunday */
  return 1;
}

static int pdk_clock_iso(lua_State *L) {
  m2m_state *S = m2m_get(L);
  check_phase(L, S, ANY_HOOK, "m2m.clock.iso");
  long long t = lua_isnoneornil(L, 1) ? S->now_s : (long long)luaL_checkinteger(L, 1);
  long long days = (t >= 0 ? t : t - 86399) / 86400;
  long long sod = t - days * 86400, y;
  int m, d;
  civil(days, &y, &m, &d);
  char out[48];
  snprintf(out, sizeof out, "%04lld-%02d-%02dT%02lld:%02lld:%02lldZ", y, m, d, sod / 3600, sod / 60 % 60, sod % 60);
  lua_pushstring(L, out);
  return 1;
}

/* m2m.clock.parse(iso) -> seconds since the epoch (the host parses xs:dateTime exactly) */
static int pdk_clock_parse(lua_State *L) {
  luaL_checktype(L, 1, LUA_TSTRING);
  m2m_host_call(L, M2M_HOST_PARSE_TIME, 1, 1);  /* push {seconds, nanoseconds} */
  lua_geti(L, -1, 1);
  return 1;
}

/* ---- lookups (the data source), mockable in tests ---- */

static int pdk_lookup(lua_State *L) {
  m2m_state *S = m2m_get(L);
  const char *name = lua_tostring(L, lua_upvalueindex(1));
  check_phase(L, S, ANY_HOOK, "m2m.lookup");
  int n = lua_gettop(L);
  if (S->flags & M2M_FLAG_TEST) {  /* a mock wins */
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_mocks);
    if (lua_getfield(L, -1, name) == LUA_TFUNCTION) {
      lua_insert(L, 1);  /* mock under the arguments */
      lua_pop(L, 1);  /* pop mocks */
      lua_call(L, n, 1);
      return 1;
    }
    lua_pop(L, 2);
  }
  lua_pushvalue(L, lua_upvalueindex(1));  /* push lookup name */
  lua_insert(L, 1);  /* name first */
  return m2m_host_call(L, M2M_HOST_LOOKUP, 1, n + 1);
}

static int pdk_ctx(lua_State *L) {
  m2m_state *S = m2m_get(L);
  check_phase(L, S, ANY_HOOK, "m2m.ctx");
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_ctx);
  return 1;
}

static int pdk_phase(lua_State *L) {
  lua_pushstring(L, m2m_phase_name(L, m2m_get(L)));
  return 1;
}

/*
** Builds the m2m module from the vocabulary record at 'vocab' and leaves the (still writable)
** module table on the stack; m2m_state_setup freezes it after the prelude added its helpers.
*/
int m2m_pdk_open(lua_State *L, m2m_state *S) {
  int vocab = lua_gettop(L);
  /* metatables */
  lua_createtable(L, 0, 4);
  lua_pushcfunction(L, const_index); lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, const_tostring); lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "m2m.code"); lua_setfield(L, -2, "__name");
  lua_pushliteral(L, "m2m: read-only constant"); lua_setfield(L, -2, "__metatable");
  S->r_const_mt = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_createtable(L, 0, 5);
  lua_pushcfunction(L, verdict_index); lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, verdict_eq); lua_setfield(L, -2, "__eq");
  lua_pushcfunction(L, verdict_tostring); lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "m2m.verdict"); lua_setfield(L, -2, "__name");
  lua_pushliteral(L, "m2m: read-only verdict"); lua_setfield(L, -2, "__metatable");
  S->r_verdict_mt = luaL_ref(L, LUA_REGISTRYINDEX);
  new_verdict(L, M2M_VERDICT_ALLOW);
  S->r_allow = luaL_ref(L, LUA_REGISTRYINDEX);
  new_verdict(L, M2M_VERDICT_KEEP);
  S->r_keep = luaL_ref(L, LUA_REGISTRYINDEX);

  lua_createtable(L, 0, 24);  /* push m2m */
  int m = lua_gettop(L);
  lua_getfield(L, vocab, "subjects");  /* push list */
  build_constants(L, S, lua_gettop(L), 0, &S->r_subjects, &S->nsubjects);  /* push NAME -> constant */
  lua_setfield(L, m, "subject");
  lua_pop(L, 1);  /* pop list */
  lua_getfield(L, vocab, "reasons");
  build_constants(L, S, lua_gettop(L), 1, &S->r_reasons, &S->nreasons);
  lua_setfield(L, m, "reason");
  lua_pop(L, 1);

  static const luaL_Reg fns[] = {
    { "allow", pdk_allow }, { "warn", pdk_warn }, { "deny", pdk_deny },
    { "keep", pdk_keep }, { "drop", pdk_drop }, { "route", pdk_route },
    { "ctx", pdk_ctx }, { "phase", pdk_phase }, { NULL, NULL }
  };
  luaL_setfuncs(L, fns, 0);
  static const luaL_Reg logfns[] = {
    { "debug", pdk_log_debug }, { "info", pdk_log_info }, { "warn", pdk_log_warn },
    { "error", pdk_log_error }, { NULL, NULL }
  };
  luaL_newlib(L, logfns);
  lua_setfield(L, m, "log");
  static const luaL_Reg clockfns[] = {
    { "now", pdk_clock_now }, { "utc", pdk_clock_utc }, { "iso", pdk_clock_iso },
    { "parse", pdk_clock_parse }, { NULL, NULL }
  };
  luaL_newlib(L, clockfns);
  lua_setfield(L, m, "clock");
  lua_createtable(L, 0, 4);  /* push lookup */
  lua_getfield(L, vocab, "lookups");  /* push names */
  lua_Integer n = luaL_len(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, -1, i);  /* push name */
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, pdk_lookup, 1);  /* push closure(name) */
    lua_settable(L, -4);  /* lookup[name] = closure */
  }
  lua_pop(L, 1);  /* pop names */
  lua_setfield(L, m, "lookup");
  lua_pushliteral(L, "1.0");
  lua_setfield(L, m, "version");
  return 1;
}
