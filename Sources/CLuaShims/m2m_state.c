/*
** The policy state: a lua_State with a capped allocator, an instruction/deadline hook, a
** sandbox built from a trimmed linit.c (base, coroutine, table, string, math, utf8), per-chunk
** _ENV tables, module scopes for `require`, hook pipelines, and the protected entry points
** Swift calls. Every entry point runs its work in a C function under lua_pcall with m2m_msgh as
** message handler, and returns a status: nothing here raises into Swift.
*/
#include "m2m_internal.h"
#include <time.h>

#define M2M_HEADROOM (256u << 10)  /* extra bytes the message handler may use past the cap */

/* ---- allocators ---- */

/*
** The l_alloc of lauxlib.c with a cap: growth past mem_limit is refused (Lua then runs an
** emergency collection and retries, or raises LUA_ERRMEM). Frees and shrinks never fail.
*/
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  m2m_state *S = (m2m_state *)ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    if (ptr) {
      S->mem_used -= old;
      free(ptr);
    }
    return NULL;
  }
  if (nsize > old && S->mem_limit > 0) {
    size_t limit = S->mem_limit + (S->mem_relaxed > 0 ? M2M_HEADROOM : 0);
    if (S->mem_used - old + nsize > limit) return NULL;  /* refused: over the cap */
  }
  void *p = realloc(ptr, nsize);
  if (p == NULL) return NULL;
  S->mem_used = S->mem_used - old + nsize;
  return p;
}

/* the benchmark baseline's allocator: lauxlib's, plus the same bookkeeping-free path */
static void *raw_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud; (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, nsize);
}

/* ---- budget hook ---- */

static unsigned long long mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/*
** Count hook (every 'interval' instructions): charges the instruction budget and checks the
** deadline. Once tripped, it fires at every instruction and raises each time, so a plugin that
** catches the error with pcall is stopped again at its next instruction. Line events feed the
** coverage of `m2m policy test`.
*/
static void m2m_hook(lua_State *L, lua_Debug *ar) {
  m2m_state *S = m2m_get(L);
  if (ar->event == LUA_HOOKLINE) {
    m2m_coverage_line(L, S, ar);
    return;
  }
  if (!S->active) return;
  if (!S->tripped) {
    S->instr_used += S->interval;
    if (S->instr_limit > 0 && S->instr_used > S->instr_limit) S->tripped = M2M_TRIP_INSTRUCTIONS;
    else if (S->timeout_ns > 0 && mono_ns() > S->deadline) S->tripped = M2M_TRIP_DEADLINE;
  }
  if (S->tripped) {
    lua_sethook(L, m2m_hook, lua_gethookmask(L) | LUA_MASKCOUNT, 1);  /* next instruction too */
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_errors);  /* push messages (preallocated) */
    lua_rawgeti(L, -1, S->tripped);  /* push this one */
    lua_remove(L, -2);  /* remove messages */
    lua_error(L);
  }
}

static int hook_mask(m2m_state *S) {
  return LUA_MASKCOUNT | ((S->flags & M2M_FLAG_COVERAGE) ? LUA_MASKLINE : 0);
}

/* ---- lifecycle ---- */

m2m_state *m2m_state_new(const m2m_limits *limits, int flags) {
  m2m_state *S = (m2m_state *)calloc(1, sizeof(m2m_state));
  if (S == NULL) return NULL;
  S->flags = flags;
  m2m_state_set_limits(S, limits);
  S->L = lua_newstate((flags & M2M_FLAG_RAW) ? raw_alloc : capped_alloc, S);
  if (S->L == NULL) {
    free(S);
    return NULL;
  }
  *(m2m_state **)lua_getextraspace(S->L) = S;
  lua_gc(S->L, LUA_GCGEN, 0, 0);  /* generational: per-call snapshots and verdicts die young */
  S->out.layer = S->out.subject = S->out.reason = -1;
  return S;
}

void m2m_state_free(m2m_state *S) {
  if (S == NULL) return;
  if (S->L) lua_close(S->L);
  m2m_buf_free(&S->scratch);
  m2m_buf_free(&S->result);
  m2m_coverage_free(S);
  free(S);
}

lua_State *m2m_state_lua(m2m_state *S) { return S->L; }
const m2m_outcome *m2m_state_outcome(m2m_state *S) { return &S->out; }
const m2m_route *m2m_outcome_route(const m2m_outcome *o, int i) { return &o->routes[i]; }
const char *m2m_outcome_obligation(const m2m_outcome *o, int i, size_t *length) {
  *length = o->obligation_lengths[i];
  return o->obligations[i];
}
size_t m2m_state_memory(m2m_state *S) { return S->mem_used; }

void m2m_state_set_limits(m2m_state *S, const m2m_limits *limits) {
  S->mem_limit = limits ? limits->memory_limit : 0;
  S->instr_limit = limits ? limits->instruction_limit : 0;
  S->timeout_ns = limits ? limits->timeout_ns : 0;
  S->interval = (limits && limits->hook_interval > 0) ? limits->hook_interval : 1000;
}

void m2m_state_set_clock(m2m_state *S, int64_t seconds, int32_t nanoseconds) {
  S->now_s = seconds;
  S->now_ns = nanoseconds;
}

/* ---- protected entry ---- */

/*
** Runs 'body' (a lua_CFunction receiving S as light userdata) under lua_pcall with the message
** handler and the call budget; leaves 'nresults' results on the stack (m2m_finish pops them).
*/
static int protect(m2m_state *S, lua_CFunction body, int nresults) {
  lua_State *L = S->L;
  m2m_outcome *o = &S->out;
  o->kind = M2M_VERDICT_NONE;
  o->tripped = M2M_TRIP_NONE;
  o->layer = o->subject = o->reason = -1;
  o->message = NULL; o->message_length = 0;
  o->obligation_count = 0;
  o->route_count = 0;
  o->error = NULL; o->error_length = 0;
  o->bytes = NULL; o->bytes_length = 0;
  o->invalid_result = 0;
  S->out_base = lua_gettop(L);
  if (!lua_checkstack(L, 8)) {
    o->status = LUA_ERRMEM;
    o->tripped = M2M_TRIP_MEMORY;
    return LUA_ERRMEM;
  }
  S->tripped = 0;
  S->instr_used = 0;
  S->mem_relaxed = 0;
  S->deadline = S->timeout_ns > 0 ? mono_ns() + (unsigned long long)S->timeout_ns : 0;
  if (!(S->flags & M2M_FLAG_RAW)) lua_sethook(L, m2m_hook, hook_mask(S), S->interval);  /* resets the count */
  S->active = 1;
  lua_pushcfunction(L, m2m_msgh);  /* push message handler */
  lua_pushcfunction(L, body);  /* push body */
  lua_pushlightuserdata(L, S);  /* push its argument */
  int status = lua_pcall(L, 1, nresults, S->out_base + 1);
  if (S->gen) m2m_end_call_values(L, S);  /* the call's snapshots expire, even after an error */
  S->active = 0;
  S->mem_relaxed = 0;
  lua_remove(L, S->out_base + 1);  /* remove message handler */
  o->status = status;
  o->tripped = S->tripped;
  if (status == LUA_ERRMEM && o->tripped == M2M_TRIP_NONE) o->tripped = M2M_TRIP_MEMORY;
  if (status != LUA_OK && lua_type(L, -1) == LUA_TSTRING) o->error = lua_tolstring(L, -1, &o->error_length);
  o->instructions = S->instr_used;
  o->memory_in_use = S->mem_used;
  return status;
}

void m2m_finish(m2m_state *S) { lua_settop(S->L, S->out_base); }

/* ---- sandbox ---- */

/* setmetatable for plugins: no __gc (finalizers run with hooks off), protected metatables stay */
static int sb_setmetatable(lua_State *L) {
  int t = lua_type(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
    return luaL_error(L, "cannot change a protected metatable");
  if (t == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL) return luaL_error(L, "__gc metamethods are not allowed in policies");
    lua_pop(L, 1);
  }
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

/*
** xpcall for plugins: the handler runs after the stack has unwound, once, as an ordinary call.
** No Lua code ever runs as a message handler, so a handler that loops or errors is stopped by
** the budget like any code (Lua 5.4.4 can overflow its stack when a message handler keeps
** failing: "Lua-stack overflow when C stack overflows while handling an error").
*/
static int sb_xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_checkstack(L, n + 3, "too many arguments");
  lua_pushboolean(L, 1);  /* n+1: status */
  lua_pushvalue(L, 1);  /* n+2: function */
  for (int i = 3; i <= n; i++) lua_pushvalue(L, i);  /* its arguments */
  if (lua_pcall(L, n - 2, LUA_MULTRET, 0) == LUA_OK) return lua_gettop(L) - n;  /* true, results */
  lua_pushvalue(L, 2);  /* push handler */
  lua_insert(L, -2);  /* handler under the error object */
  lua_call(L, 1, 1);  /* its answer (its own errors propagate) */
  lua_pushboolean(L, 0);
  lua_replace(L, n + 1);  /* status = false */
  return 2;
}

static const char *const base_allowed[] = {
  "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget", "rawlen",
  "select", "tonumber", "tostring", "type", "getmetatable", "_VERSION", NULL
};
static const char *const libs_allowed[] = { "string", "table", "math", "utf8", "coroutine", NULL };

/* require(name) for the scope in upvalue 1 */
static int sb_require(lua_State *L);

static void require_impl(lua_State *L, m2m_state *S, int scope, int test) {
  int name = lua_gettop(L);  /* module name at the top */
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_scopes);  /* push scopes */
  lua_rawgeti(L, -1, scope);  /* push scope */
  int sc = lua_gettop(L);
  lua_getfield(L, sc, "modules");  /* push modules */
  lua_pushvalue(L, name);
  if (lua_rawget(L, -2) != LUA_TNIL) {  /* loaded already */
    lua_replace(L, name);
    lua_settop(L, name);
    return;
  }
  lua_pop(L, 1);
  lua_getfield(L, sc, "sources");  /* push sources */
  lua_pushvalue(L, name);
  if (lua_rawget(L, -2) != LUA_TTABLE)
    luaL_error(L, "module '%s' not found: policies can require \"m2m\" and files of their own bundle or plugin",
               lua_tostring(L, name));
  int src = lua_gettop(L);
  lua_getfield(L, sc, "loading");  /* push loading */
  lua_pushvalue(L, name);
  if (lua_rawget(L, -2) != LUA_TNIL) luaL_error(L, "loop in require of module '%s'", lua_tostring(L, name));
  lua_pop(L, 1);
  lua_pushvalue(L, name);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);  /* loading[name] = true */
  size_t len;
  lua_rawgeti(L, src, 1);  /* push source */
  const char *code = lua_tolstring(L, -1, &len);
  lua_rawgeti(L, src, 2);  /* push chunk name */
  if (luaL_loadbufferx(L, code, len, lua_tostring(L, -1), "t") != LUA_OK)  /* push chunk */
    lua_error(L);  /* syntax error (or a binary chunk): raise its message */
  m2m_new_env(L, S, scope, test);  /* push env */
  if (lua_setupvalue(L, -2, 1) == NULL) lua_pop(L, 1);  /* chunk._ENV = env */
  int saved = S->phase;
  if (S->phase != M2M_PHASE_TEST) S->phase = M2M_PHASE_LOAD;
  lua_call(L, 0, 1);  /* push module */
  S->phase = saved;
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  lua_pushvalue(L, name);
  lua_pushvalue(L, -2);
  lua_rawset(L, sc + 1);  /* modules[name] = module */
  lua_pushvalue(L, name);
  lua_pushnil(L);
  lua_rawset(L, src + 1);  /* loading[name] = nil */
  lua_replace(L, name);
  lua_settop(L, name);
}

static int sb_require(lua_State *L) {
  m2m_state *S = m2m_get(L);
  luaL_checktype(L, 1, LUA_TSTRING);
  lua_settop(L, 1);
  require_impl(L, S, (int)lua_tointeger(L, lua_upvalueindex(1)), 0);
  return 1;
}

/*
** Pushes a fresh _ENV: the allowed base functions, private copies of the allowed libraries,
** print (m2m.log.info), require (this scope only), _G (the env itself), and, for test chunks,
** the test globals.
*/
int m2m_new_env(lua_State *L, m2m_state *S, int scope, int test) {
  lua_createtable(L, 0, 32);  /* push env */
  int env = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_template);  /* push template */
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, env);  /* env[k] = v */
  }
  lua_pop(L, 1);  /* pop template */
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_libs);  /* push libraries */
  lua_pushnil(L);
  while (lua_next(L, -2)) {  /* push name, library */
    lua_newtable(L);  /* push copy */
    lua_pushnil(L);
    while (lua_next(L, -3)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);  /* copy[k] = v */
    }
    lua_pushvalue(L, -3);  /* push name */
    lua_insert(L, -2);
    lua_rawset(L, env);  /* env[name] = copy */
    lua_pop(L, 1);  /* pop library */
  }
  lua_pop(L, 1);  /* pop libraries */
  lua_pushinteger(L, scope);
  lua_pushcclosure(L, sb_require, 1);
  lua_setfield(L, env, "require");
  lua_pushcfunction(L, m2m_print);
  lua_setfield(L, env, "print");
  lua_pushvalue(L, env);
  lua_setfield(L, env, "_G");
  if (test && S->r_testenv) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_testenv);  /* push test globals */
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, env);
    }
    lua_pop(L, 1);
  }
  return 1;
}

/* ---- scopes ---- */

static int scope_new_body(lua_State *L) {
  m2m_state *S = (m2m_state *)lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_scopes);  /* push scopes */
  lua_createtable(L, 0, 3);  /* push scope */
  lua_newtable(L);  /* push modules */
  if (S->r_pdk) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_pdk);
    lua_setfield(L, -2, "m2m");
  }
  lua_setfield(L, -2, "modules");
  lua_newtable(L);
  lua_setfield(L, -2, "sources");
  lua_newtable(L);
  lua_setfield(L, -2, "loading");
  S->in_scope = (int)lua_rawlen(L, -2) + 1;
  lua_rawseti(L, -2, S->in_scope);  /* scopes[n+1] = scope */
  return 0;
}

int m2m_scope_new(m2m_state *S) {
  int status = protect(S, scope_new_body, 0);
  m2m_finish(S);
  return status == LUA_OK ? S->in_scope : 0;
}

static int scope_add_body(lua_State *L) {
  m2m_state *S = (m2m_state *)lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_scopes);
  if (lua_rawgeti(L, -1, S->in_scope) != LUA_TTABLE) return luaL_error(L, "m2m: no such scope");
  lua_getfield(L, -1, "sources");  /* push sources */
  lua_createtable(L, 2, 0);  /* push {source, chunkname} */
  lua_pushlstring(L, S->in_source, S->in_source_length);
  lua_rawseti(L, -2, 1);
  lua_pushstring(L, S->in_name2);
  lua_rawseti(L, -2, 2);
  lua_setfield(L, -2, S->in_name);  /* sources[name] = entry */
  return 0;
}

int m2m_scope_add_source(m2m_state *S, int scope, const char *name, const char *source, size_t length,
                         const char *chunkname) {
  S->in_scope = scope;
  S->in_name = name;
  S->in_name2 = chunkname;
  S->in_source = source;
  S->in_source_length = length;
  int status = protect(S, scope_add_body, 0);
  if (status == LUA_OK) m2m_finish(S);
  return status;
}

static int scope_require_body(lua_State *L) {
  m2m_state *S = (m2m_state *)lua_touserdata(L, 1);
  lua_settop(L, 0);
  lua_pushstring(L, S->in_name);  /* push name */
  require_impl(L, S, S->in_scope, S->in_test);  /* replace by module */
  S->in_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

int m2m_scope_require(m2m_state *S, int scope, const char *name, int test, int *ref) {
  S->in_scope = scope;
  S->in_name = name;
  S->in_test = test;
  S->in_ref = LUA_NOREF;
  int saved = S->phase;
  S->phase = (S->flags & M2M_FLAG_TEST) ? M2M_PHASE_TEST : M2M_PHASE_LOAD;
  int status = protect(S, scope_require_body, 0);
  S->phase = saved;
  if (status == LUA_OK) m2m_finish(S);
  *ref = S->in_ref;
  return status;
}

/* ---- pipelines ---- */

static int hook_id(lua_State *L, m2m_state *S, int name) {
  for (int i = 0; i < S->nhooks; i++) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_hooks);
    lua_rawgeti(L, -1, i + 1);
    int eq = lua_rawequal(L, -1, name);
    lua_pop(L, 2);
    if (eq) return i;
  }
  return -1;
}

static int pipeline_add_body(lua_State *L) {
  m2m_state *S = (m2m_state *)lua_touserdata(L, 1);
  lua_settop(L, 0);
  if (lua_rawgeti(L, LUA_REGISTRYINDEX, S->in_ref) != LUA_TTABLE)  /* 1: module */
    return luaL_error(L, "%s: a plugin or policy file must return a table of hooks", S->in_name);
  if (S->in_length > 0) m2m_push_plain_value(L, S, S->in_data, S->in_length);  /* 2: conf, as tables */
  else lua_newtable(L);
  if (lua_istable(L, 2)) m2m_freeze(L, "conf");  /* read-only, read at table speed */
  lua_pushnil(L);  /* no hook-like key may be misspelt */
  while (lua_next(L, 1)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -2);
      int hooklike = !strncmp(k, "before_", 7) || !strncmp(k, "route_", 6) || !strncmp(k, "filter_", 7);
      if (hooklike && hook_id(L, S, lua_gettop(L) - 1) < 0)
        return luaL_error(L, "%s: unknown hook '%s'", S->in_name, k);
      if (hooklike && lua_type(L, -1) != LUA_TFUNCTION)
        return luaL_error(L, "%s: hook '%s' must be a function", S->in_name, k);
    }
    lua_pop(L, 1);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_pipelines);  /* 3: pipelines */
  if (lua_rawgeti(L, 3, S->in_bundle + 1) != LUA_TTABLE) {  /* 4: this bundle's */
    lua_pop(L, 1);
    lua_createtable(L, S->nhooks, 0);
    lua_pushvalue(L, -1);
    lua_rawseti(L, 3, S->in_bundle + 1);
  }
  S->in_hooks = 0;
  for (int h = 0; h < S->nhooks; h++) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_hooks);
    lua_rawgeti(L, -1, h + 1);  /* push hook name */
    if (lua_rawget(L, 1) == LUA_TFUNCTION) {  /* push module[hook] */
      if (lua_rawgeti(L, 4, h + 1) != LUA_TTABLE) {  /* push the hook's pipeline */
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawseti(L, 4, h + 1);
      }
      lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
      lua_pushvalue(L, -2); lua_rawseti(L, -2, n + 1);  /* function */
      lua_pushvalue(L, 2); lua_rawseti(L, -2, n + 2);  /* conf */
      lua_pushinteger(L, S->in_layer); lua_rawseti(L, -2, n + 3);  /* layer index */
      lua_pushstring(L, S->in_name); lua_rawseti(L, -2, n + 4);  /* layer name */
      lua_pop(L, 1);
      S->in_hooks |= 1ll << h;
    }
    lua_pop(L, 2);  /* pop value, hook names */
  }
  return 0;
}

int m2m_pipeline_add(m2m_state *S, int bundle, int layer, const char *name, int module_ref,
                     const unsigned char *conf, size_t conf_length, long long *hooks) {
  S->in_bundle = bundle;
  S->in_layer = layer;
  S->in_name = name;
  S->in_ref = module_ref;
  S->in_data = conf;
  S->in_length = conf_length;
  int status = protect(S, pipeline_add_body, 0);
  if (status == LUA_OK) m2m_finish(S);
  *hooks = S->in_hooks;
  return status;
}

/* raises: layer 'name' returned something its hook may not return */
static int bad_result(lua_State *L, int pl, int i, int hook, int v, const char *expected) {
  m2m_state *S = m2m_get(L);
  lua_rawgeti(L, pl, 4 * i + 4);  /* push layer name */
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_hooks);
  lua_rawgeti(L, -1, hook + 1);  /* push hook name */
  int vk = m2m_verdict_kind(L, v);
  S->out.invalid_result = 1;
  static const char *const names[] = { "nil", "m2m.allow()", "m2m.warn()", "m2m.deny()", "m2m.keep()",
                                       "m2m.drop()", "m2m.route()" };
  return luaL_error(L, "%s: %s must return %s (got %s)", lua_tostring(L, -3), lua_tostring(L, -1),
                    expected, vk >= 0 ? names[vk] : luaL_typename(L, v));
}

/* appends the obligations of the verdict at 'v' to the table in slot 'obl' (created on demand) */
static void collect_obligations(lua_State *L, int v, int obl) {
  if (lua_getiuservalue(L, v, 2) != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  if (lua_isnil(L, obl)) {
    lua_newtable(L);
    lua_replace(L, obl);
  }
  lua_Unsigned n = lua_rawlen(L, -1), m = lua_rawlen(L, obl);
  for (lua_Unsigned i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, (lua_Integer)i);
    lua_rawseti(L, obl, (lua_Integer)(m + i));
  }
  lua_pop(L, 1);
}

/*
** Runs the layers of pipeline (bundle, hook) with the ctx at stack index 'ctx' and pushes the
** combined result, also written to S->out:
**   decision: the first deny wins; else the first warning; allow/nil let the next layer speak;
**             obligations (auto_delete) of the non-denying verdicts are merged.
**   filter:   the first drop wins; keep/nil continue.
**   route:    each layer gets the routes so far and returns a new list or nil (unchanged).
** Raises (into the caller's pcall) when a layer errors or returns a value of the wrong kind.
*/
int m2m_run_layers(lua_State *L, m2m_state *S, int bundle, int hook, int ctx) {
  int kind = S->hook_kind[hook];
  int saved = S->phase;
  ctx = lua_absindex(L, ctx);
  luaL_checkstack(L, 12, "m2m: stack");
  if (kind == M2M_HOOK_ROUTE) lua_newtable(L);  /* res: routes so far */
  else lua_pushnil(L);  /* res: verdict so far */
  int res = lua_gettop(L);
  lua_pushnil(L);  /* obl: merged obligations */
  int obl = res + 1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_pipelines);  /* push pipelines */
  lua_Integer n = 0;
  if (lua_rawgeti(L, -1, bundle + 1) == LUA_TTABLE) {  /* push bundle's pipelines */
    if (lua_rawgeti(L, -1, hook + 1) == LUA_TTABLE) n = (lua_Integer)lua_rawlen(L, -1) / 4;  /* push pipeline */
  } else {
    lua_pushnil(L);
  }
  int pl = lua_gettop(L);
  int decided = -1, warned = 0;
  S->phase = M2M_PHASE_HOOK0 + hook;
  for (lua_Integer i = 0; i < n; i++) {
    lua_rawgeti(L, pl, 4 * i + 1);  /* push function */
    lua_pushvalue(L, ctx);  /* push ctx */
    if (kind == M2M_HOOK_ROUTE) lua_pushvalue(L, res);  /* push routes so far */
    lua_rawgeti(L, pl, 4 * i + 2);  /* push conf */
    lua_rawgeti(L, pl, 4 * i + 3);
    S->out.layer = (int)lua_tointeger(L, -1);  /* the running layer, reported if it fails */
    lua_pop(L, 1);
    lua_call(L, kind == M2M_HOOK_ROUTE ? 3 : 2, 1);  /* push its result */
    int v = lua_gettop(L);
    int vk = m2m_verdict_kind(L, v);
    if (lua_isnil(L, v)) {
      lua_pop(L, 1);
      continue;
    }
    if (kind == M2M_HOOK_DECISION) {
      if (vk != M2M_VERDICT_ALLOW && vk != M2M_VERDICT_WARN && vk != M2M_VERDICT_DENY)
        bad_result(L, pl, (int)i, hook, v, "m2m.allow(), m2m.warn(), m2m.deny() or nil");
      if (vk == M2M_VERDICT_DENY) {
        lua_replace(L, res);
        decided = S->out.layer;
        break;
      }
      collect_obligations(L, v, obl);
      if (vk == M2M_VERDICT_WARN && !warned) {
        warned = 1;
        decided = S->out.layer;
        lua_replace(L, res);
      } else if (lua_isnil(L, res)) {
        lua_replace(L, res);
      } else {
        lua_pop(L, 1);
      }
    } else if (kind == M2M_HOOK_FILTER) {
      if (vk != M2M_VERDICT_KEEP && vk != M2M_VERDICT_DROP)
        bad_result(L, pl, (int)i, hook, v, "m2m.keep(), m2m.drop() or nil");
      if (vk == M2M_VERDICT_DROP) {
        lua_replace(L, res);
        decided = S->out.layer;
        break;
      }
      lua_pop(L, 1);
    } else {
      if (lua_type(L, v) != LUA_TTABLE) bad_result(L, pl, (int)i, hook, v, "a list of m2m.route() values or nil");
      lua_Unsigned m = lua_rawlen(L, v);
      m2m_route r;
      for (lua_Unsigned j = 1; j <= m; j++) {
        lua_rawgeti(L, v, (lua_Integer)j);
        if (!m2m_read_route(L, S, lua_gettop(L), &r)) {
          S->out.invalid_result = 1;
          lua_rawgeti(L, pl, 4 * i + 4);
          luaL_error(L, "%s: route_notification returned a list whose element %d is not an m2m.route() value",
                     lua_tostring(L, -1), (int)j);
        }
        lua_pop(L, 1);
      }
      lua_replace(L, res);
    }
  }
  S->phase = saved;
  S->out.layer = decided;
  /* the final value */
  if (kind == M2M_HOOK_DECISION) {
    int vk = lua_isnil(L, res) ? M2M_VERDICT_ALLOW : m2m_verdict_kind(L, res);
    if (vk != M2M_VERDICT_DENY && !lua_isnil(L, obl)) {  /* merged obligations: a fresh verdict */
      lua_getfield(L, LUA_REGISTRYINDEX, "m2m.verdict_with");  /* push constructor */
      lua_pushvalue(L, res);
      lua_pushvalue(L, obl);
      lua_call(L, 2, 1);
      lua_replace(L, res);
    } else if (lua_isnil(L, res)) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_allow);
      lua_replace(L, res);
    }
    m2m_read_verdict(L, S, res);
  } else if (kind == M2M_HOOK_FILTER) {
    if (lua_isnil(L, res)) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_keep);
      lua_replace(L, res);
    }
    S->out.kind = m2m_verdict_kind(L, res);
    if (S->out.kind == M2M_VERDICT_DROP) m2m_read_verdict(L, S, res);
  } else {
    lua_Unsigned m = lua_rawlen(L, res);
    if (m > M2M_MAX_ROUTES) S->out.invalid_result = 1, luaL_error(L, "route_notification: at most %d routes", M2M_MAX_ROUTES);
    S->out.kind = M2M_VERDICT_ROUTE;
    S->out.route_count = 0;
    for (lua_Unsigned j = 1; j <= m; j++) {
      lua_rawgeti(L, res, (lua_Integer)j);
      m2m_read_route(L, S, lua_gettop(L), &S->out.routes[S->out.route_count++]);  /* kept alive by res */
      lua_pop(L, 1);
    }
  }
  lua_settop(L, res);  /* leave the result only */
  return 1;
}

/* body of m2m_run: decode ctx from the input, run the pipeline, leave the result */
static int run_body(lua_State *L) {
  m2m_state *S = (m2m_state *)lua_touserdata(L, 1);
  lua_settop(L, 0);
  m2m_push_call_value(L, S, S->in_data, S->in_length);  /* 1: ctx, over the caller's bytes */
  lua_pushvalue(L, 1);
  lua_rawseti(L, LUA_REGISTRYINDEX, S->r_ctx);  /* m2m.ctx() during the call */
  m2m_run_layers(L, S, S->in_bundle, S->in_hook, 1);  /* 2: result */
  lua_pushboolean(L, 0);
  lua_rawseti(L, LUA_REGISTRYINDEX, S->r_ctx);
  return 1;
}

int m2m_run(m2m_state *S, int bundle, int hook, const unsigned char *input, size_t length) {
  if (hook < 0 || hook >= S->nhooks) {
    S->out.status = LUA_ERRRUN;
    S->out_base = lua_gettop(S->L);
    return LUA_ERRRUN;
  }
  S->in_bundle = bundle;
  S->in_hook = hook;
  S->in_data = input;
  S->in_length = length;
  return protect(S, run_body, 1);
}

/* ---- generic calls for the test harness and metadata ---- */

static int call_ref_body(lua_State *L) {
  m2m_state *S = (m2m_state *)lua_touserdata(L, 1);
  lua_settop(L, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->in_ref);  /* 1: function */
  int n = 0;
  if (S->in_length > 0) {
    m2m_push_blob_value(L, S->in_data, S->in_length);  /* 2: arguments */
    n = (int)luaL_len(L, 2);
    luaL_checkstack(L, n + 4, "m2m: too many arguments");
    for (int i = 1; i <= n; i++) lua_geti(L, 2, i);
    lua_remove(L, 2);
  }
  lua_call(L, n, 1);  /* push result */
  S->result.length = 0;
  m2m_encode_value(L, S, -1, &S->result, 0, 1);
  S->out.bytes = S->result.data;
  S->out.bytes_length = S->result.length;
  return 0;
}

int m2m_call_ref(m2m_state *S, int fn_ref, const unsigned char *args, size_t length) {
  S->in_ref = fn_ref;
  S->in_data = args;
  S->in_length = length;
  int saved = S->phase;
  S->phase = (S->flags & M2M_FLAG_TEST) ? M2M_PHASE_TEST : M2M_PHASE_NONE;
  int status = protect(S, call_ref_body, 0);
  S->phase = saved;
  return status;
}

static int encode_ref_body(lua_State *L) {
  m2m_state *S = (m2m_state *)lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->in_ref);
  S->result.length = 0;
  m2m_encode_value(L, S, -1, &S->result, 0, 1);
  S->out.bytes = S->result.data;
  S->out.bytes_length = S->result.length;
  return 0;
}

int m2m_encode_ref(m2m_state *S, int ref) {
  S->in_ref = ref;
  return protect(S, encode_ref_body, 0);
}

static int prelude_ref_body(lua_State *L) {
  m2m_state *S = (m2m_state *)lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_prelude);
  lua_getfield(L, -1, S->in_name);
  S->in_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

int m2m_prelude_ref(m2m_state *S, const char *name) {
  S->in_name = name;
  S->in_ref = 0;
  int status = protect(S, prelude_ref_body, 0);
  m2m_finish(S);
  return status == LUA_OK && S->in_ref > 0 ? S->in_ref : 0;
}

void m2m_unref(m2m_state *S, int ref) {
  if (ref > 0) luaL_unref(S->L, LUA_REGISTRYINDEX, ref);
}

/* ---- benchmark baseline ---- */

static int raw_body(lua_State *L) {
  m2m_state *S = (m2m_state *)lua_touserdata(L, 1);
  lua_settop(L, 0);
  m2m_push_call_value(L, S, S->in_data, S->in_length);  /* 1: ctx, decoded as the engine does */
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_pipelines);
  lua_rawgeti(L, -1, S->in_bundle + 1);
  lua_rawgeti(L, -1, S->in_hook + 1);  /* 4: pipeline */
  int kind = S->hook_kind[S->in_hook];
  lua_Integer n = lua_istable(L, 4) ? (lua_Integer)lua_rawlen(L, 4) / 4 : 0;
  lua_newtable(L);  /* 5: routes */
  S->phase = M2M_PHASE_HOOK0 + S->in_hook;
  for (lua_Integer i = 0; i < n; i++) {
    lua_rawgeti(L, 4, 4 * i + 1);
    lua_pushvalue(L, 1);
    if (kind == M2M_HOOK_ROUTE) lua_pushvalue(L, 5);
    lua_rawgeti(L, 4, 4 * i + 2);
    lua_call(L, kind == M2M_HOOK_ROUTE ? 3 : 2, 1);
    if (kind == M2M_HOOK_ROUTE && lua_istable(L, -1)) lua_replace(L, 5);
    else lua_pop(L, 1);
  }
  S->phase = M2M_PHASE_NONE;
  S->in_layer = (int)n;
  return 0;
}

int m2m_bench_raw(m2m_state *S, int bundle, int hook, const unsigned char *input, size_t length) {
  lua_State *L = S->L;
  int base = lua_gettop(L);
  S->in_bundle = bundle;
  S->in_hook = hook;
  S->in_data = input;
  S->in_length = length;
  lua_pushcfunction(L, raw_body);
  lua_pushlightuserdata(L, S);
  int status = lua_pcall(L, 1, 0, 0);
  if (S->gen) m2m_end_call_values(L, S);
  lua_settop(L, base);
  return status == LUA_OK ? S->in_layer : -1;
}

/* ---- setup ---- */

/* internal functions handed to the prelude (the test harness and PDK helpers) */

static int in_fixture(lua_State *L) {
  luaL_checktype(L, 1, LUA_TSTRING);
  lua_settop(L, 2);
  return m2m_host_call(L, M2M_HOST_FIXTURE, 1, 2);
}

static int in_conf(lua_State *L) {
  luaL_checktype(L, 1, LUA_TSTRING);
  lua_settop(L, 2);
  return m2m_host_call(L, M2M_HOST_CONF, 1, 2);
}

static int in_set_mock(lua_State *L) {
  m2m_state *S = m2m_get(L);
  luaL_checktype(L, 1, LUA_TSTRING);
  lua_settop(L, 2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_mocks);
  lua_insert(L, 1);
  lua_rawset(L, 1);
  return 0;
}

static int in_clear_mocks(lua_State *L) {
  m2m_state *S = m2m_get(L);
  lua_newtable(L);
  lua_rawseti(L, LUA_REGISTRYINDEX, S->r_mocks);
  return 0;
}

static int in_set_clock(lua_State *L) {
  m2m_state *S = m2m_get(L);
  S->now_s = luaL_checkinteger(L, 1);
  S->now_ns = (int)luaL_optinteger(L, 2, 0);
  return 0;
}

static int in_hook_id(lua_State *L) {
  m2m_state *S = m2m_get(L);
  luaL_checktype(L, 1, LUA_TSTRING);
  int h = hook_id(L, S, 1);
  if (h < 0) return 0;
  lua_pushinteger(L, h);
  lua_pushinteger(L, S->hook_kind[h]);
  return 2;
}

/* decide(bundle, hook, ctx): the production pipeline, from a test */
static int in_decide(lua_State *L) {
  m2m_state *S = m2m_get(L);
  int bundle = (int)luaL_checkinteger(L, 1);
  int h = hook_id(L, S, 2);
  if (h < 0) return luaL_error(L, "unknown hook '%s'", luaL_tolstring(L, 2, NULL));
  if (!m2m_is_snapshot(L, 3)) return luaL_error(L, "decide: the input must be built with fixtures.input{...}");
  lua_pushvalue(L, 3);
  lua_rawseti(L, LUA_REGISTRYINDEX, S->r_ctx);
  m2m_run_layers(L, S, bundle, h, 3);
  return 1;
}

/* call(fn, hook, ctx, conf[, routes]): one layer's hook, in that hook's phase */
static int in_call(lua_State *L) {
  m2m_state *S = m2m_get(L);
  luaL_checktype(L, 1, LUA_TFUNCTION);
  int h = hook_id(L, S, 2);
  if (h < 0) return luaL_error(L, "unknown hook '%s'", luaL_tolstring(L, 2, NULL));
  int route = S->hook_kind[h] == M2M_HOOK_ROUTE;
  lua_settop(L, 5);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 3);
  if (route) {
    if (lua_isnil(L, 5)) lua_newtable(L);
    else lua_pushvalue(L, 5);
  }
  lua_pushvalue(L, 4);
  lua_pushvalue(L, 3);
  lua_rawseti(L, LUA_REGISTRYINDEX, S->r_ctx);
  int saved = S->phase;
  S->phase = M2M_PHASE_HOOK0 + h;
  lua_call(L, route ? 3 : 2, 1);
  S->phase = saved;
  return 1;
}

static int in_traceback(lua_State *L) { return m2m_msgh(L); }

static int in_is_snapshot(lua_State *L) {
  lua_pushboolean(L, m2m_is_snapshot(L, 1));
  return 1;
}

static int in_verdict_kind(lua_State *L) {
  int k = m2m_verdict_kind(L, 1);
  if (k < 0) return 0;
  lua_pushinteger(L, k);
  return 1;
}

/* verdict_with(verdict, obligations): a copy of an allow/warn verdict with the merged list */
static int in_verdict_with(lua_State *L) {
  m2m_state *S = m2m_get(L);
  int kind = lua_isnil(L, 1) ? M2M_VERDICT_ALLOW : m2m_verdict_kind(L, 1);
  lua_settop(L, 2);
  lua_getfield(L, LUA_REGISTRYINDEX, "m2m.verdict_ctor");  /* 3: constructors */
  int nargs = 1;
  if (kind == M2M_VERDICT_WARN) {
    lua_getfield(L, 3, "warn");  /* push m2m.warn */
    lua_getfield(L, 1, "subject");  /* the verdict's own fields */
    lua_getfield(L, 1, "reason");
    lua_getfield(L, 1, "message");
    nargs = 4;
  } else {
    lua_getfield(L, 3, "allow");  /* push m2m.allow */
  }
  lua_createtable(L, 0, 1);  /* push options */
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "auto_delete");
  int saved = S->phase;
  S->phase = M2M_PHASE_TEST;  /* the constructors are phase-gated */
  lua_call(L, nargs, 1);
  S->phase = saved;
  return 1;
}

static int setup_body(lua_State *L) {
  m2m_state *S = (m2m_state *)lua_touserdata(L, 1);
  lua_settop(L, 0);
  /* bootstrap: no key ids yet and one generic snapshot kind, to read the vocabulary */
  lua_newtable(L);
  S->r_keys = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_createtable(L, 1, 0);
  lua_pushliteral(L, "m2m.value");
  lua_rawseti(L, -2, 1);
  m2m_codec_open(L, S);
  lua_pop(L, 1);
  m2m_push_blob_value(L, S->in_data, S->in_length);  /* 1: vocabulary */
  /* keys: id+1 -> interned name (kept referenced, so its address identifies the key) */
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_keys);  /* 2: key names */
  lua_getfield(L, 1, "keys");  /* 3: the vocabulary's list */
  int nkeys = (int)luaL_len(L, 3);
  if (nkeys > 255) return luaL_error(L, "m2m: at most 255 snapshot keys");
  for (int i = 1; i <= nkeys; i++) {
    lua_geti(L, 3, i);  /* push name */
    lua_rawseti(L, 2, i);  /* keys[id+1] = name */
  }
  S->nkeys = nkeys;
  lua_settop(L, 1);
  m2m_codec_keys(L, S);
  lua_newtable(L);
  S->r_sections = luaL_ref(L, LUA_REGISTRYINDEX);
  /* snapshot kinds (the bootstrap metatables go once the new ones exist) */
  int bootstrap = S->r_kind_mt;
  lua_getfield(L, 1, "kinds");
  lua_Integer nk = luaL_len(L, -1);
  lua_createtable(L, (int)nk, 0);
  for (lua_Integer i = 1; i <= nk; i++) {
    lua_geti(L, -2, i);
    lua_rawseti(L, -2, i);
  }
  m2m_codec_open(L, S);
  luaL_unref(L, LUA_REGISTRYINDEX, bootstrap);
  lua_settop(L, 1);
  /* hooks */
  lua_getfield(L, 1, "hooks");
  lua_getfield(L, 1, "hook_kinds");
  S->nhooks = (int)luaL_len(L, 2);
  if (S->nhooks > M2M_MAX_HOOKS) return luaL_error(L, "m2m: too many hooks");
  lua_createtable(L, S->nhooks, 0);
  for (int i = 1; i <= S->nhooks; i++) {
    lua_geti(L, 2, i);
    lua_rawseti(L, -2, i);
    lua_geti(L, 3, i);
    S->hook_kind[i - 1] = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
  }
  S->r_hooks = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 1);
  /* choices: name -> index+1 */
  const char *lists[] = { "vias", "roles", "retry" };
  int *refs[] = { &S->r_vias, &S->r_roles, &S->r_retry };
  for (int l = 0; l < 3; l++) {
    lua_getfield(L, 1, lists[l]);
    lua_Integer n = luaL_len(L, -1);
    lua_newtable(L);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_geti(L, -2, i);
      lua_pushinteger(L, i);
      lua_rawset(L, -3);
    }
    *refs[l] = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
  }
  /* the standard libraries, a trimmed linit.c: no io, os, package, debug */
  static const luaL_Reg libs[] = {
    { LUA_GNAME, luaopen_base }, { LUA_COLIBNAME, luaopen_coroutine }, { LUA_TABLIBNAME, luaopen_table },
    { LUA_STRLIBNAME, luaopen_string }, { LUA_MATHLIBNAME, luaopen_math }, { LUA_UTF8LIBNAME, luaopen_utf8 },
    { NULL, NULL }
  };
  for (const luaL_Reg *lib = libs; lib->func; lib++) {
    luaL_requiref(L, lib->name, lib->func, 1);
    lua_pop(L, 1);
  }
  lua_pushglobaltable(L);  /* 2: host globals */
  static const char *const removed[] = { "dofile", "loadfile", "load", "collectgarbage", "print", "require", NULL };
  for (const char *const *r = removed; *r; r++) {
    lua_pushnil(L);
    lua_setfield(L, 2, *r);
  }
  lua_getfield(L, 2, "string");  /* no string.dump (for plugins and through the string metatable) */
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
  lua_getfield(L, 2, "math");  /* no random numbers: decisions must replay */
  lua_pushnil(L);
  lua_setfield(L, -2, "random");
  lua_pushnil(L);
  lua_setfield(L, -2, "randomseed");
  lua_pop(L, 1);
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);  /* getmetatable("") now answers the lock, not the table */
  lua_pushliteral(L, "m2m: the string metatable is locked");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);
  /* template of base functions */
  lua_newtable(L);
  for (const char *const *b = base_allowed; *b; b++) {
    lua_getfield(L, 2, *b);
    lua_setfield(L, -2, *b);
  }
  lua_pushcfunction(L, sb_setmetatable);
  lua_setfield(L, -2, "setmetatable");
  lua_pushcfunction(L, sb_xpcall);
  lua_setfield(L, -2, "xpcall");
  S->r_template = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_getfield(L, 2, "xpcall");  /* the real one, for the prelude's test harness (C handler only) */
  lua_setfield(L, LUA_REGISTRYINDEX, "m2m.xpcall");
  lua_newtable(L);
  for (const char *const *b = libs_allowed; *b; b++) {
    lua_getfield(L, 2, *b);
    lua_setfield(L, -2, *b);
  }
  S->r_libs = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 1);
  /* registry slots */
  lua_newtable(L);
  S->r_scopes = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  S->r_pipelines = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushboolean(L, 0);
  S->r_ctx = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  S->r_mocks = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_createtable(L, 3, 0);
  lua_pushliteral(L, "m2m: instruction budget exceeded");
  lua_rawseti(L, -2, M2M_TRIP_INSTRUCTIONS);
  lua_pushliteral(L, "m2m: deadline exceeded");
  lua_rawseti(L, -2, M2M_TRIP_DEADLINE);
  S->r_errors = luaL_ref(L, LUA_REGISTRYINDEX);
  /* the PDK */
  lua_pushvalue(L, 1);
  m2m_pdk_open(L, S);  /* 3: m2m (writable until frozen) */
  lua_remove(L, 2);  /* 2: m2m */
  lua_newtable(L);  /* the verdict constructors for in_verdict_with */
  lua_getfield(L, 2, "allow");
  lua_setfield(L, -2, "allow");
  lua_getfield(L, 2, "warn");
  lua_setfield(L, -2, "warn");
  lua_setfield(L, LUA_REGISTRYINDEX, "m2m.verdict_ctor");
  lua_pushcfunction(L, in_verdict_with);
  lua_setfield(L, LUA_REGISTRYINDEX, "m2m.verdict_with");
  /* the prelude: trusted Lua adding helpers to m2m and, in test mode, the harness */
  if (S->in_source_length > 0) {
    S->in_scope = 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_scopes);
    lua_createtable(L, 0, 3);
    lua_newtable(L);
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, "m2m");
    lua_setfield(L, -2, "modules");
    lua_newtable(L);
    lua_setfield(L, -2, "sources");
    lua_newtable(L);
    lua_setfield(L, -2, "loading");
    lua_rawseti(L, -2, 1);  /* scope 1: the host's own */
    lua_pop(L, 1);
    if (luaL_loadbufferx(L, S->in_source, S->in_source_length, "=m2m.prelude", "t") != LUA_OK) lua_error(L);
    m2m_new_env(L, S, 1, 0);
    lua_setupvalue(L, -2, 1);
    lua_pushvalue(L, 2);  /* arg 1: m2m */
    static const luaL_Reg internal[] = {
      { "fixture", in_fixture }, { "conf", in_conf }, { "set_mock", in_set_mock },
      { "clear_mocks", in_clear_mocks }, { "set_clock", in_set_clock }, { "hook_id", in_hook_id },
      { "decide", in_decide }, { "call", in_call }, { "traceback", in_traceback },
      { "is_snapshot", in_is_snapshot }, { "verdict_kind", in_verdict_kind }, { NULL, NULL }
    };
    luaL_newlib(L, internal);  /* arg 2: internal functions */
    lua_getfield(L, LUA_REGISTRYINDEX, "m2m.xpcall");
    lua_setfield(L, -2, "xpcall");
    lua_pushboolean(L, (S->flags & M2M_FLAG_TEST) != 0);  /* arg 3: test mode */
    lua_call(L, 3, 1);
    if (!lua_istable(L, -1)) return luaL_error(L, "m2m: the prelude must return a table");
    if (lua_getfield(L, -1, "testenv") == LUA_TTABLE) S->r_testenv = luaL_ref(L, LUA_REGISTRYINDEX);
    else lua_pop(L, 1);
    S->r_prelude = luaL_ref(L, LUA_REGISTRYINDEX);
  } else {
    lua_newtable(L);
    S->r_prelude = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  /* freeze m2m and give it to every scope */
  lua_pushvalue(L, 2);
  m2m_freeze(L, "m2m");
  lua_pushvalue(L, -1);
  S->r_pdk = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_scopes);
  lua_Integer ns = (lua_Integer)lua_rawlen(L, -1);
  for (lua_Integer i = 1; i <= ns; i++) {
    lua_rawgeti(L, -1, i);
    lua_getfield(L, -1, "modules");
    lua_pushvalue(L, -4);
    lua_setfield(L, -2, "m2m");
    lua_pop(L, 2);
  }
  return 0;
}

int m2m_state_setup(m2m_state *S, const unsigned char *vocabulary, size_t length, const char *prelude,
                    size_t prelude_length, m2m_host_fn host, void *host_ud) {
  S->host = host;
  S->host_ud = host_ud;
  S->in_data = vocabulary;
  S->in_length = length;
  S->in_source = prelude;
  S->in_source_length = prelude_length;
  S->phase = M2M_PHASE_NONE;
  return protect(S, setup_body, 0);
}
