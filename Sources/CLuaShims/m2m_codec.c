/*
** The value codec between Swift and Lua, and the read-only snapshot proxies.
**
** Swift encodes snapshots once into a compact tagged form (m2m_internal.h). A hook call hands
** plugins proxies that read fields straight from those bytes when indexed: nothing is
** materialised that a hook does not read, and proxies cannot be written (they are userdata, not
** tables, and their metatable is locked).
**
** Two backings: during a hook call the proxies point into the caller's buffer (no copy) and
** carry the call's generation; once the call returns they expire, and touching one raises
** "snapshot used after its call". Values that must outlive a call (fixtures, host replies)
** are copied into a userdata "blob" that their proxies keep alive as user value.
*/
#include "m2m_internal.h"

#define SNAP_MAGIC 0x534e4150  /* 'SNAP' */
#define M2M_MAX_ENCODED (16u << 20)  /* largest value Lua may hand to the host */

typedef struct snap {
  int magic;                 /* SNAP_MAGIC: every m2m userdata starts with a magic word */
  unsigned gen;              /* call generation, or 0 when backed by a blob (user value 1) */
  const unsigned char *p;    /* tag byte of the record or array */
  const unsigned char *end;  /* one past its last byte */
} snap;

static const unsigned char *array_at(const snap *s, unsigned long i);
static const unsigned char *push_key(lua_State *L, m2m_state *S, const snap *s, const unsigned char *q);

/* raises unless the proxy's bytes are still there */
static void check_alive(lua_State *L, m2m_state *S, const snap *s) {
  if (s->gen != 0 && s->gen != S->gen) luaL_error(L, "snapshot used after its call (keep the values you need, not the snapshot)");
}

/* ---- buffers ---- */

int m2m_buf_reserve(m2m_buf *b, size_t extra) {
  if (b->length + extra <= b->capacity) return 1;
  size_t cap = b->capacity ? b->capacity : 256;
  while (cap < b->length + extra) cap *= 2;
  unsigned char *d = realloc(b->data, cap);
  if (d == NULL) return 0;
  b->data = d;
  b->capacity = cap;
  return 1;
}

void m2m_buf_free(m2m_buf *b) {
  free(b->data);
  b->data = NULL;
  b->length = b->capacity = 0;
}

/* ---- little-endian readers ---- */

static unsigned rd16(const unsigned char *p) { return (unsigned)p[0] | ((unsigned)p[1] << 8); }
static unsigned long rd32(const unsigned char *p) {
  return (unsigned long)p[0] | ((unsigned long)p[1] << 8) | ((unsigned long)p[2] << 16) |
         ((unsigned long)p[3] << 24);
}
static long long rd64(const unsigned char *p) {
  unsigned long long v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return (long long)v;
}
static double rdf64(const unsigned char *p) {
  long long bits = rd64(p);
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

/*
** Returns the first byte after the value at 'p', or NULL when the value is malformed or runs
** past 'end'. Records and arrays are skipped by their length, without walking their content.
*/
const unsigned char *m2m_value_end(const unsigned char *p, const unsigned char *end) {
  if (p >= end) return NULL;
  switch (*p) {
    case M2M_T_NIL: case M2M_T_FALSE: case M2M_T_TRUE: return p + 1;
    case M2M_T_INT: case M2M_T_FLOAT: return (end - p >= 9) ? p + 9 : NULL;
    case M2M_T_STRING: {
      if (end - p < 5) return NULL;
      unsigned long n = rd32(p + 1);
      return ((unsigned long)(end - p - 5) >= n) ? p + 5 + n : NULL;
    }
    case M2M_T_RECORD: case M2M_T_ARRAY: {
      if (end - p < M2M_HEADER + 2) return NULL;
      unsigned long n = rd32(p + 2);
      return ((unsigned long)(end - p - M2M_HEADER) >= n && n >= 2) ? p + M2M_HEADER + n : NULL;
    }
    default: return NULL;
  }
}

/* ---- decoding into Lua ---- */

/*
** Pushes a proxy for the record or array at 'p' (ending at 'end'). With 'gen' != 0 the proxy is
** call-backed; otherwise it keeps the blob at stack index 'blob' alive through its user value.
** 'mts' is the stack index of the metatables-by-kind array. Pushes 1 value; raises on memory.
*/
static void push_proxy_mt(lua_State *L, int mts, int blob, unsigned gen, const unsigned char *p,
                          const unsigned char *end) {
  snap *s = (snap *)lua_newuserdatauv(L, sizeof(snap), gen ? 0 : 1);  /* push proxy */
  s->magic = SNAP_MAGIC;
  s->gen = gen;
  s->p = p;
  s->end = end;
  if (!gen) {
    lua_pushvalue(L, blob);  /* push blob */
    lua_setiuservalue(L, -2, 1);  /* proxy.uservalue = blob; pops blob */
  }
  if (lua_rawgeti(L, mts, p[1] + 1) != LUA_TTABLE) {  /* push metatable of this kind */
    lua_pop(L, 1);  /* unknown kind: the generic one */
    lua_rawgeti(L, mts, 1);
  }
  lua_setmetatable(L, -2);  /* pops metatable */
}

static void push_proxy(lua_State *L, m2m_state *S, int blob, unsigned gen, const unsigned char *p,
                       const unsigned char *end) {
  blob = lua_absindex(L, blob);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_kind_mt);  /* push metatables by kind */
  push_proxy_mt(L, lua_gettop(L), blob, gen, p, end);  /* push proxy */
  lua_remove(L, -2);  /* remove metatables */
}

/*
** Pushes the value at 'p' (scalars as Lua values, records and arrays as proxies over the blob
** at index 'blob'). Raises "malformed value" on a bad encoding.
*/
void m2m_push_value_at(lua_State *L, int blob, const unsigned char *p, const unsigned char *end) {
  const unsigned char *e = m2m_value_end(p, end);
  if (e == NULL) luaL_error(L, "m2m: malformed value encoding");
  switch (*p) {
    case M2M_T_NIL: lua_pushnil(L); break;
    case M2M_T_FALSE: lua_pushboolean(L, 0); break;
    case M2M_T_TRUE: lua_pushboolean(L, 1); break;
    case M2M_T_INT: lua_pushinteger(L, (lua_Integer)rd64(p + 1)); break;
    case M2M_T_FLOAT: lua_pushnumber(L, (lua_Number)rdf64(p + 1)); break;
    case M2M_T_STRING: lua_pushlstring(L, (const char *)p + 5, rd32(p + 1)); break;
    default: push_proxy(L, m2m_get(L), blob, 0, p, e); break;
  }
}

/* pushes a scalar, or returns 0 for a record/array (nothing pushed) */
static int push_scalar(lua_State *L, const unsigned char *p) {
  switch (*p) {
    case M2M_T_NIL: lua_pushnil(L); return 1;
    case M2M_T_FALSE: lua_pushboolean(L, 0); return 1;
    case M2M_T_TRUE: lua_pushboolean(L, 1); return 1;
    case M2M_T_INT: lua_pushinteger(L, (lua_Integer)rd64(p + 1)); return 1;
    case M2M_T_FLOAT: lua_pushnumber(L, (lua_Number)rdf64(p + 1)); return 1;
    case M2M_T_STRING: lua_pushlstring(L, (const char *)p + 5, rd32(p + 1)); return 1;
    default: return 0;
  }
}

/*
** Pushes the value of the running call's input (a call-backed proxy over the caller's bytes:
** no copy). The bytes must stay valid until m2m_end_call_values. Raises on a bad encoding.
*/
void m2m_push_call_value(lua_State *L, m2m_state *S, const unsigned char *data, size_t length) {
  if (m2m_value_end(data, data + length) != data + length) luaL_error(L, "m2m: malformed value encoding");
  if (++S->next_gen == 0) S->next_gen = 1;
  S->gen = S->next_gen;
  if (push_scalar(L, data)) return;
  push_proxy(L, S, 0, S->gen, data, data + length);
  S->root = lua_touserdata(L, -1);
}

/* Expires the proxies of the running call and empties its section cache. Never raises. */
void m2m_end_call_values(lua_State *L, m2m_state *S) {
  S->gen = 0;
  S->root = NULL;
  if (S->nsections == 0) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_sections);  /* push cache */
  for (int i = 0; i < S->nsections; i++) {
    lua_pushnil(L);
    lua_rawseti(L, -2, S->section_ids[i] + 1);  /* existing keys: no allocation */
  }
  lua_pop(L, 1);
  S->nsections = 0;
}

/*
** Pushes the value at 'p' as plain Lua tables (configurations: built once per state, then
** frozen, so hooks read them at table speed). Raises on a bad encoding or nesting.
*/
static void push_plain(lua_State *L, m2m_state *S, const unsigned char *p, const unsigned char *end, int depth) {
  if (depth > M2M_MAX_DEPTH) luaL_error(L, "m2m: value nested too deeply");
  luaL_checkstack(L, 6, "m2m: value nested too deeply");
  const unsigned char *e = m2m_value_end(p, end);
  if (e == NULL) luaL_error(L, "m2m: malformed value encoding");
  if (push_scalar(L, p)) return;
  snap s = { SNAP_MAGIC, 0, p, e };
  unsigned count = rd16(p + M2M_HEADER);
  if (*p == M2M_T_ARRAY) {
    lua_createtable(L, (int)count, 0);
    for (unsigned i = 0; i < count; i++) {
      const unsigned char *v = array_at(&s, i);
      if (v == NULL) luaL_error(L, "m2m: malformed value encoding");
      push_plain(L, S, v, e, depth + 1);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return;
  }
  lua_createtable(L, 0, (int)count);
  const unsigned char *q = p + M2M_HEADER + 2;
  for (unsigned i = 0; i < count; i++) {
    if (q >= e || (*q == M2M_T_KEY && q + 2 > e)) luaL_error(L, "m2m: malformed value encoding");
    const unsigned char *v = push_key(L, S, &s, q);  /* push key */
    push_plain(L, S, v, e, depth + 1);  /* push value */
    lua_rawset(L, -3);
    q = m2m_value_end(v, e);
    if (q == NULL) luaL_error(L, "m2m: malformed value encoding");
  }
}

void m2m_push_plain_value(lua_State *L, m2m_state *S, const unsigned char *data, size_t length) {
  if (m2m_value_end(data, data + length) != data + length) luaL_error(L, "m2m: malformed value encoding");
  push_plain(L, S, data, data + length, 0);
}

/* ---- key ids by interned string ---- */

static unsigned key_slot(const void *ptr) { return (unsigned)(((size_t)ptr >> 4) * 2654435761u) & 511; }

/* Fills the key hash from r_keys (the strings stay referenced there, so their addresses hold). */
void m2m_codec_keys(lua_State *L, m2m_state *S) {
  memset(S->key_ptr, 0, sizeof S->key_ptr);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_keys);
  for (int i = 1; i <= S->nkeys; i++) {
    lua_rawgeti(L, -1, i);
    const void *ptr = lua_tostring(L, -1);
    lua_pop(L, 1);
    unsigned h = key_slot(ptr);
    while (S->key_ptr[h] != NULL) h = (h + 1) & 511;
    S->key_ptr[h] = ptr;
    S->key_id[h] = (unsigned char)(i - 1);
  }
  lua_pop(L, 1);
}

/* the id of the (short, interned) key string 'ks', or -1 */
static int key_id(m2m_state *S, const char *ks) {
  if (S->nkeys == 0) return -1;
  unsigned h = key_slot(ks);
  while (S->key_ptr[h] != NULL) {
    if (S->key_ptr[h] == (const void *)ks) return S->key_id[h];
    h = (h + 1) & 511;
  }
  return -1;
}

/*
** Copies 'length' bytes into a new blob and pushes the value they encode (the blob is kept
** alive by the proxies that need it). Pushes 1 value; raises on memory or format errors.
*/
void m2m_push_blob_value(lua_State *L, const unsigned char *data, size_t length) {
  unsigned char *copy = (unsigned char *)lua_newuserdatauv(L, length ? length : 1, 0);  /* push blob */
  if (length) memcpy(copy, data, length);
  if (m2m_value_end(copy, copy + length) != copy + length)
    luaL_error(L, "m2m: malformed value encoding");
  m2m_push_value_at(L, lua_gettop(L), copy, copy + length);  /* push value */
  lua_remove(L, -2);  /* remove blob (the proxy holds it) */
}

int m2m_is_snapshot(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TUSERDATA || lua_rawlen(L, idx) != sizeof(snap)) return 0;
  const snap *s = (const snap *)lua_touserdata(L, idx);
  return s->magic == SNAP_MAGIC;
}

/* the proxy at 'idx', or NULL */
static snap *tosnap(lua_State *L, int idx) {
  return m2m_is_snapshot(L, idx) ? (snap *)lua_touserdata(L, idx) : NULL;
}

/*
** Finds the entry of a record whose key matches: key id 'kid' (-1 for none), string 'ks'
** (NULL for none) or integer 'ki' (when 'hasint'). Returns the entry's value position and,
** through 'index', its position in the record; NULL when absent or malformed.
*/
static const unsigned char *record_find(const snap *s, int kid, const char *ks, size_t kl,
                                        int hasint, lua_Integer ki, unsigned *index) {
  const unsigned char *q = s->p + M2M_HEADER;
  unsigned count = rd16(q);
  q += 2;
  for (unsigned i = 0; i < count; i++) {
    int match = 0;
    if (q >= s->end) return NULL;
    switch (*q) {
      case M2M_T_KEY:
        if (s->end - q < 2) return NULL;
        match = (kid >= 0 && q[1] == kid);
        q += 2;
        break;
      case M2M_T_STRING: {
        const unsigned char *e = m2m_value_end(q, s->end);
        if (e == NULL) return NULL;
        unsigned long n = rd32(q + 1);
        match = (ks != NULL && n == kl && memcmp(q + 5, ks, kl) == 0);
        q = e;
        break;
      }
      case M2M_T_INT:
        if (s->end - q < 9) return NULL;
        match = (hasint && rd64(q + 1) == (long long)ki);
        q += 9;
        break;
      default:
        return NULL;
    }
    if (match) {
      if (index) *index = i;
      return q;
    }
    q = m2m_value_end(q, s->end);
    if (q == NULL) return NULL;
  }
  return NULL;
}

/* position of element 'i' (0-based) of an array, or NULL */
static const unsigned char *array_at(const snap *s, unsigned long i) {
  const unsigned char *body = s->p + M2M_HEADER;
  unsigned count = rd16(body);
  if (i >= count) return NULL;
  const unsigned char *values = body + 2 + 4 * (size_t)count;
  if (values > s->end) return NULL;
  unsigned long off = rd32(body + 2 + 4 * i);
  if (off >= (unsigned long)(s->end - values)) return NULL;
  return values + off;
}

/* pushes the user value (blob) of the proxy at 'idx' and returns its index */
static int push_blob(lua_State *L, int idx) {
  lua_getiuservalue(L, idx, 1);  /* push blob */
  return lua_gettop(L);
}

/*
** __index(proxy, key); upvalue 1: metatables by kind. Scalars are pushed as Lua values, records
** and arrays as proxies with the same backing. The sections of the running call's ctx are
** cached, so every layer of a pipeline reads `ctx.profile` as the same proxy.
*/
static int snap_index(lua_State *L) {
  m2m_state *S = m2m_get(L);
  snap *s = tosnap(L, 1);
  if (s == NULL) return 0;
  check_alive(L, S, s);
  const unsigned char *v = NULL;
  int kid = -1;
  if (s->p[0] == M2M_T_ARRAY) {
    if (!lua_isinteger(L, 2)) return 0;  /* arrays have integer keys only: nil */
    lua_Integer k = lua_tointeger(L, 2);
    if (k < 1) return 0;
    v = array_at(s, (unsigned long)(k - 1));
  } else {
    int t = lua_type(L, 2);
    if (t == LUA_TSTRING) {
      size_t kl;
      const char *ks = lua_tolstring(L, 2, &kl);
      kid = key_id(S, ks);
      v = record_find(s, kid, ks, kl, 0, 0, NULL);
    } else if (lua_isinteger(L, 2)) {
      v = record_find(s, -1, NULL, 0, 1, lua_tointeger(L, 2), NULL);
    }
  }
  if (v == NULL) return 0;
  if (push_scalar(L, v)) return 1;
  const unsigned char *e = m2m_value_end(v, s->end);
  if (e == NULL) return luaL_error(L, "m2m: malformed value encoding");
  int cached = (s == S->root && kid >= 0 && S->nsections < (int)sizeof S->section_ids);
  if (cached) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_sections);  /* push cache */
    if (lua_rawgeti(L, -1, kid + 1) != LUA_TNIL) return 1;  /* push cached section */
    lua_pop(L, 1);
  }
  int blob = 0;
  if (!s->gen) blob = push_blob(L, 1);  /* push blob */
  push_proxy_mt(L, lua_upvalueindex(1), blob, s->gen, v, e);  /* push proxy */
  if (cached) {
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3 - (blob != 0), kid + 1);  /* cache[kid+1] = proxy */
    S->section_ids[S->nsections++] = (unsigned char)kid;
  }
  return 1;
}

static int snap_len(lua_State *L) {
  snap *s = tosnap(L, 1);
  if (s) check_alive(L, m2m_get(L), s);
  lua_pushinteger(L, (s && s->p[0] == M2M_T_ARRAY) ? (lua_Integer)rd16(s->p + M2M_HEADER) : 0);
  return 1;
}

/* pushes the key of the record entry at 'q' and returns the value position */
static const unsigned char *push_key(lua_State *L, m2m_state *S, const snap *s, const unsigned char *q) {
  switch (*q) {
    case M2M_T_KEY:
      lua_rawgeti(L, LUA_REGISTRYINDEX, S->r_keys);  /* push key names */
      lua_rawgeti(L, -1, q[1] + 1);  /* push name */
      lua_remove(L, -2);  /* remove key names */
      return q + 2;
    case M2M_T_STRING: {
      const unsigned char *e = m2m_value_end(q, s->end);
      if (e == NULL) luaL_error(L, "m2m: malformed value encoding");
      lua_pushlstring(L, (const char *)q + 5, rd32(q + 1));  /* push key */
      return e;
    }
    case M2M_T_INT:
      lua_pushinteger(L, (lua_Integer)rd64(q + 1));  /* push key */
      return q + 9;
    default:
      return luaL_error(L, "m2m: malformed value encoding"), NULL;
  }
}

/* iterator behind __pairs: (proxy, key) -> next key, value */
/* pushes the value at 'v' with the backing of proxy 's' (at index 1) */
static void push_like(lua_State *L, m2m_state *S, const snap *s, const unsigned char *v) {
  if (push_scalar(L, v)) return;
  const unsigned char *e = m2m_value_end(v, s->end);
  if (e == NULL) luaL_error(L, "m2m: malformed value encoding");
  if (s->gen) {
    push_proxy(L, S, 0, s->gen, v, e);
  } else {
    int blob = push_blob(L, 1);  /* push blob */
    push_proxy(L, S, blob, 0, v, e);  /* push proxy */
    lua_remove(L, blob);  /* remove blob */
  }
}

static int snap_next(lua_State *L) {
  m2m_state *S = m2m_get(L);
  snap *s = tosnap(L, 1);
  if (s == NULL) return 0;
  check_alive(L, S, s);
  lua_settop(L, 2);
  unsigned count = rd16(s->p + M2M_HEADER);
  if (s->p[0] == M2M_T_ARRAY) {
    lua_Integer i = lua_isnil(L, 2) ? 0 : lua_tointeger(L, 2);
    if (i < 0 || (unsigned long)i >= count) return 0;
    const unsigned char *v = array_at(s, (unsigned long)i);
    if (v == NULL) return 0;
    lua_pushinteger(L, i + 1);  /* push key */
    push_like(L, S, s, v);  /* push value */
    return 2;
  }
  unsigned start = 0;
  if (!lua_isnil(L, 2)) {  /* find the current key, start after it */
    unsigned index = 0;
    const unsigned char *found = NULL;
    if (lua_type(L, 2) == LUA_TSTRING) {
      size_t kl;
      const char *ks = lua_tolstring(L, 2, &kl);
      found = record_find(s, key_id(S, ks), ks, kl, 0, 0, &index);
    } else if (lua_isinteger(L, 2)) {
      found = record_find(s, -1, NULL, 0, 1, lua_tointeger(L, 2), &index);
    }
    if (found == NULL) return luaL_error(L, "invalid key to 'next'");
    start = index + 1;
  }
  if (start >= count) return 0;
  const unsigned char *q = s->p + M2M_HEADER + 2;
  for (unsigned i = 0; i < start; i++) {  /* skip entries before 'start' */
    q = (*q == M2M_T_KEY) ? q + 2 : m2m_value_end(q, s->end);  /* skip key */
    if (q) q = m2m_value_end(q, s->end);  /* skip value */
    if (q == NULL) return luaL_error(L, "m2m: malformed value encoding");
  }
  if (q >= s->end || (*q == M2M_T_KEY && q + 2 > s->end)) return luaL_error(L, "m2m: malformed value encoding");
  const unsigned char *v = push_key(L, S, s, q);  /* push key */
  push_like(L, S, s, v);  /* push value */
  return 2;
}

static int snap_pairs(lua_State *L) {
  lua_pushcfunction(L, snap_next);  /* push iterator */
  lua_pushvalue(L, 1);  /* push proxy */
  lua_pushnil(L);  /* push initial key */
  return 3;
}

/* __eq: same kind and the same encoded bytes */
static int snap_eq(lua_State *L) {
  snap *a = tosnap(L, 1), *b = tosnap(L, 2);
  if (a) check_alive(L, m2m_get(L), a);
  if (b) check_alive(L, m2m_get(L), b);
  int eq = a && b && (a->end - a->p) == (b->end - b->p) && memcmp(a->p, b->p, (size_t)(a->end - a->p)) == 0;
  lua_pushboolean(L, eq);
  return 1;
}

static int snap_newindex(lua_State *L) {
  lua_getmetatable(L, 1);  /* metatables are locked for plugins, not for C */
  lua_getfield(L, -1, "__name");
  return luaL_error(L, "attempt to modify a read-only snapshot (%s)", lua_tostring(L, -1));
}

/*
** Creates one metatable per snapshot kind (names from the vocabulary's "kinds" list at stack
** index 'kinds') and stores the array under S->r_kind_mt. Stack unchanged.
*/
int m2m_codec_open(lua_State *L, m2m_state *S) {
  int kinds = lua_gettop(L);
  lua_Integer n = (lua_Integer)lua_rawlen(L, kinds);
  lua_createtable(L, (int)n, 0);  /* push metatables by kind */
  int mts = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_createtable(L, 0, 8);  /* push metatable */
    lua_pushvalue(L, mts);  /* upvalue of __index: the metatables, to tag nested proxies */
    lua_pushcclosure(L, snap_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, snap_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, snap_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pushcfunction(L, snap_eq);
    lua_setfield(L, -2, "__eq");
    lua_pushcfunction(L, snap_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_rawgeti(L, kinds, i);  /* push kind name */
    lua_setfield(L, -2, "__name");
    lua_pushliteral(L, "m2m: read-only snapshot");
    lua_setfield(L, -2, "__metatable");
    lua_rawseti(L, mts, i);  /* metatables[i] = metatable; pops it */
  }
  S->r_kind_mt = luaL_ref(L, LUA_REGISTRYINDEX);  /* pops metatables by kind */
  return 0;
}

/* ---- encoding from Lua ---- */

static void put(lua_State *L, m2m_buf *b, const void *p, size_t n) {
  if (b->length + n > M2M_MAX_ENCODED) luaL_error(L, "m2m: value too large to encode");
  if (!m2m_buf_reserve(b, n)) luaL_error(L, "m2m: out of memory while encoding");
  memcpy(b->data + b->length, p, n);
  b->length += n;
}
static void put8(lua_State *L, m2m_buf *b, unsigned v) { unsigned char c = (unsigned char)v; put(L, b, &c, 1); }
static void put16at(m2m_buf *b, size_t at, unsigned v) { b->data[at] = v & 0xff; b->data[at + 1] = (v >> 8) & 0xff; }
static void put32at(m2m_buf *b, size_t at, unsigned long v) {
  for (int i = 0; i < 4; i++) b->data[at + i] = (v >> (8 * i)) & 0xff;
}
static void put64(lua_State *L, m2m_buf *b, unsigned long long v) {
  unsigned char t[8];
  for (int i = 0; i < 8; i++) t[i] = (v >> (8 * i)) & 0xff;
  put(L, b, t, 8);
}
static void putstring(lua_State *L, m2m_buf *b, const char *s, size_t n) {
  unsigned char h[5] = { M2M_T_STRING, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >> 24) & 0xff };
  put(L, b, h, 5);
  put(L, b, s, n);
}

/* writes the key at stack index 'k' (string: key id when known; integer) */
static void putkey(lua_State *L, m2m_state *S, int k, m2m_buf *b) {
  if (lua_type(L, k) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, k, &n);
    int id = key_id(S, s);
    if (id >= 0) {
      unsigned char h[2] = { M2M_T_KEY, (unsigned char)id };
      put(L, b, h, 2);
      return;
    }
    putstring(L, b, s, n);
  } else if (lua_isinteger(L, k)) {
    put8(L, b, M2M_T_INT);
    put64(L, b, (unsigned long long)lua_tointeger(L, k));
  } else {
    luaL_error(L, "m2m: table keys must be strings or integers (got %s)", luaL_typename(L, k));
  }
}

/*
** Appends the encoding of the value at 'idx' to 'b'. Tables become arrays (keys 1..n) or
** records; snapshot proxies are copied as they are; functions are skipped in records when
** 'skipfns' (module metadata) and refused otherwise. Raises on anything else, on cycles (by
** depth) and on values larger than M2M_MAX_ENCODED. Stack unchanged.
*/
int m2m_encode_value(lua_State *L, m2m_state *S, int idx, m2m_buf *b, int depth, int skipfns) {
  idx = lua_absindex(L, idx);
  if (depth > M2M_MAX_DEPTH) return luaL_error(L, "m2m: value nested too deeply (or cyclic)");
  luaL_checkstack(L, 8, "m2m: value nested too deeply");
  switch (lua_type(L, idx)) {
    case LUA_TNIL: put8(L, b, M2M_T_NIL); return 0;
    case LUA_TBOOLEAN: put8(L, b, lua_toboolean(L, idx) ? M2M_T_TRUE : M2M_T_FALSE); return 0;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        put8(L, b, M2M_T_INT);
        put64(L, b, (unsigned long long)lua_tointeger(L, idx));
      } else {
        lua_Number d = lua_tonumber(L, idx);
        unsigned long long bits;
        memcpy(&bits, &d, sizeof bits);
        put8(L, b, M2M_T_FLOAT);
        put64(L, b, bits);
      }
      return 0;
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      putstring(L, b, s, n);
      return 0;
    }
    case LUA_TUSERDATA: {
      snap *s = tosnap(L, idx);
      if (s == NULL) return luaL_error(L, "m2m: cannot encode this userdata");
      check_alive(L, S, s);
      put(L, b, s->p, (size_t)(s->end - s->p));
      return 0;
    }
    case LUA_TTABLE: break;
    default:
      return luaL_error(L, "m2m: cannot encode a %s value", luaL_typename(L, idx));
  }
  lua_Unsigned n = lua_rawlen(L, idx);
  lua_Integer total = 0;
  int onlyseq = 1;
  lua_pushnil(L);  /* push first key */
  while (lua_next(L, idx)) {  /* push key, value */
    if (skipfns && lua_type(L, -1) == LUA_TFUNCTION) { lua_pop(L, 1); continue; }
    total++;
    if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 || (lua_Unsigned)lua_tointeger(L, -2) > n) onlyseq = 0;
    lua_pop(L, 1);  /* pop value, keep key */
  }
  if (total > 65535) return luaL_error(L, "m2m: table too large to encode");
  size_t start = b->length;
  unsigned char h[M2M_HEADER + 2] = { 0 };
  if (onlyseq && (lua_Unsigned)total == n) {  /* array: offsets, then values */
    h[0] = M2M_T_ARRAY;
    put(L, b, h, sizeof h);
    put16at(b, start + M2M_HEADER, (unsigned)n);
    size_t offsets = b->length;
    for (lua_Unsigned i = 0; i < n; i++) put(L, b, "\0\0\0\0", 4);
    size_t values = b->length;
    for (lua_Unsigned i = 1; i <= n; i++) {
      put32at(b, offsets + 4 * (i - 1), (unsigned long)(b->length - values));
      lua_rawgeti(L, idx, (lua_Integer)i);  /* push element */
      m2m_encode_value(L, S, -1, b, depth + 1, skipfns);
      lua_pop(L, 1);  /* pop element */
    }
  } else {  /* record: key, value pairs */
    h[0] = M2M_T_RECORD;
    put(L, b, h, sizeof h);
    unsigned count = 0;
    lua_pushnil(L);  /* push first key */
    while (lua_next(L, idx)) {  /* push key, value */
      if (skipfns && lua_type(L, -1) == LUA_TFUNCTION) { lua_pop(L, 1); continue; }
      putkey(L, S, lua_gettop(L) - 1, b);
      m2m_encode_value(L, S, -1, b, depth + 1, skipfns);
      count++;
      lua_pop(L, 1);  /* pop value, keep key */
    }
    put16at(b, start + M2M_HEADER, count);
  }
  put32at(b, start + 2, (unsigned long)(b->length - start - M2M_HEADER));
  return 0;
}

/* Encodes stack values first..last as one array value into 'b' (cleared first). Raises. */
int m2m_encode_args(lua_State *L, m2m_state *S, int first, int last, m2m_buf *b) {
  b->length = 0;
  unsigned n = (last >= first) ? (unsigned)(last - first + 1) : 0;
  unsigned char h[M2M_HEADER + 2] = { M2M_T_ARRAY, 0 };
  put(L, b, h, sizeof h);
  put16at(b, M2M_HEADER, n);
  size_t offsets = b->length;
  for (unsigned i = 0; i < n; i++) put(L, b, "\0\0\0\0", 4);
  size_t values = b->length;
  for (unsigned i = 0; i < n; i++) {
    put32at(b, offsets + 4 * i, (unsigned long)(b->length - values));
    m2m_encode_value(L, S, first + (int)i, b, 1, 0);
  }
  put32at(b, 2, (unsigned long)(b->length - M2M_HEADER));
  return 0;
}
