/*
** Line coverage for `m2mrsp policy test`. The lines that hold code come from the compiled chunk
** itself: the chunk is dumped with lua_dump (host side only; plugins have no string.dump) and the
** dump's line information is walked the way ldebug.c's collectvalidlines does for
** debug.getinfo(f, "L"), for the main function and every nested one. Executed lines come from
** the line hook (LUA_MASKLINE) set in coverage mode.
**
** Dump format: Lua 5.4 ldump.c (header, then dumpFunction recursively; sizes as MSB-first 7-bit
** groups with the last byte marked by 0x80).
*/
#include "m2m_internal.h"

typedef struct reader {
  const unsigned char *p, *end;
  int bad;
} reader;

static int rbyte(reader *r) {
  if (r->p >= r->end) {
    r->bad = 1;
    return 0;
  }
  return *r->p++;
}

static size_t rsize(reader *r) {
  size_t x = 0;
  int b;
  do {
    b = rbyte(r);
    if (r->bad) return 0;
    x = (x << 7) | (size_t)(b & 0x7f);
  } while (!(b & 0x80));
  return x;
}

static void rskip(reader *r, size_t n) {
  if ((size_t)(r->end - r->p) < n) {
    r->bad = 1;
    r->p = r->end;
  } else {
    r->p += n;
  }
}

static void rstring(reader *r) {
  size_t n = rsize(r);
  if (n > 0) rskip(r, n - 1);
}

static void mark(m2m_cov_file *f, int line) {
  if (line < 1) return;
  if (line >= f->nlines) {
    int n = line + 64;
    unsigned char *l = (unsigned char *)realloc(f->lines, (size_t)n);
    if (l == NULL) return;
    memset(l + f->nlines, 0, (size_t)(n - f->nlines));
    f->lines = l;
    f->nlines = n;
  }
  f->lines[line] |= 1;
}

/* walks one function of the dump (and its nested ones), marking the lines of its instructions */
static void function(reader *r, m2m_cov_file *f, int depth) {
  if (depth > 200) {
    r->bad = 1;
    return;
  }
  rstring(r);  /* source */
  int linedefined = (int)rsize(r);
  rsize(r);  /* lastlinedefined */
  rbyte(r);  /* numparams */
  int vararg = rbyte(r);
  rbyte(r);  /* maxstacksize */
  rskip(r, rsize(r) * 4);  /* code */
  size_t nk = rsize(r);
  for (size_t i = 0; i < nk && !r->bad; i++) {
    switch (rbyte(r)) {
      case 0x13: case 0x03: rskip(r, 8); break;  /* float, integer */
      case 0x04: case 0x14: rstring(r); break;   /* short, long string */
      default: break;                            /* nil, false, true */
    }
  }
  rskip(r, rsize(r) * 3);  /* upvalues: instack, idx, kind */
  size_t np = rsize(r);
  for (size_t i = 0; i < np && !r->bad; i++) function(r, f, depth + 1);
  size_t nli = rsize(r);
  const unsigned char *lineinfo = r->p;
  rskip(r, nli);
  size_t nabs = rsize(r);
  int *abspc = NULL, *absline = NULL;
  if (nabs > 0 && !r->bad) {
    abspc = (int *)malloc(nabs * sizeof(int));
    absline = (int *)malloc(nabs * sizeof(int));
    if (abspc == NULL || absline == NULL) r->bad = 1;
  }
  for (size_t i = 0; i < nabs && !r->bad; i++) {
    abspc[i] = (int)rsize(r);
    absline[i] = (int)rsize(r);
  }
  size_t nloc = rsize(r);
  for (size_t i = 0; i < nloc && !r->bad; i++) {
    rstring(r);
    rsize(r);
    rsize(r);
  }
  size_t nupn = rsize(r);
  for (size_t i = 0; i < nupn && !r->bad; i++) rstring(r);
  if (!r->bad) {
    int line = linedefined;
    for (size_t pc = 0; pc < nli; pc++) {
      signed char delta = (signed char)lineinfo[pc];
      if (delta != -0x80) {
        line += delta;
      } else {  /* ABSLINEINFO: the absolute line is saved for this pc */
        for (size_t a = 0; a < nabs; a++)
          if ((size_t)abspc[a] == pc) line = absline[a];
      }
      if (vararg && pc == 0) continue;  /* OP_VARARGPREP is not a line of its own */
      mark(f, line);
    }
  }
  free(abspc);
  free(absline);
}

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  (void)L;
  m2m_buf *b = (m2m_buf *)ud;
  if (!m2m_buf_reserve(b, sz)) return 1;
  memcpy(b->data + b->length, p, sz);
  b->length += sz;
  return 0;
}

static int register_body(lua_State *L) {
  m2m_state *S = (m2m_state *)lua_touserdata(L, 1);
  if (luaL_loadbufferx(L, S->in_source, S->in_source_length, S->in_name, "t") != LUA_OK) lua_error(L);
  S->result.length = 0;
  if (lua_dump(L, dump_writer, &S->result, 0) != 0) return luaL_error(L, "m2m: cannot dump chunk");
  return 0;
}

int m2m_coverage_register(m2m_state *S, const char *chunkname, const char *source, size_t length) {
  S->in_name = chunkname;
  S->in_source = source;
  S->in_source_length = length;
  int saved = S->flags;
  S->flags &= ~M2M_FLAG_COVERAGE;  /* compiling is not running */
  int status = lua_checkstack(S->L, 4) ? LUA_OK : LUA_ERRMEM;
  if (status == LUA_OK) {
    int base = lua_gettop(S->L);
    lua_pushcfunction(S->L, register_body);
    lua_pushlightuserdata(S->L, S);
    status = lua_pcall(S->L, 1, 0, 0);
    lua_settop(S->L, base);
  }
  S->flags = saved;
  if (status != LUA_OK) return -1;
  m2m_cov_file *files = (m2m_cov_file *)realloc(S->cov, (size_t)(S->ncov + 1) * sizeof(m2m_cov_file));
  if (files == NULL) return -1;
  S->cov = files;
  m2m_cov_file *f = &S->cov[S->ncov];
  memset(f, 0, sizeof *f);
  size_t n = strlen(chunkname);
  f->chunkname = (char *)malloc(n + 1);
  if (f->chunkname == NULL) return -1;
  memcpy(f->chunkname, chunkname, n + 1);
  /* header: signature 4, version 1, format 1, LUAC_DATA 6, sizes 3, LUAC_INT 8, LUAC_NUM 8, nupvalues 1 */
  reader r = { S->result.data, S->result.data + S->result.length, 0 };
  rskip(&r, 4 + 1 + 1 + 6 + 3 + 8 + 8 + 1);
  function(&r, f, 0);
  S->cov_last_source = NULL;
  return S->ncov++;
}

int m2m_coverage_read(m2m_state *S, int file, unsigned char *lines, int n) {
  if (file < 0 || file >= S->ncov) return 0;
  m2m_cov_file *f = &S->cov[file];
  int m = f->nlines < n ? f->nlines : n;
  if (m > 0) memcpy(lines, f->lines, (size_t)m);
  return f->nlines;
}

void m2m_coverage_line(lua_State *L, m2m_state *S, lua_Debug *ar) {
  if (S->ncov == 0 || !lua_getinfo(L, "S", ar)) return;
  int file = -1;
  if (ar->source == S->cov_last_source) {
    file = S->cov_last_file;
  } else {
    for (int i = 0; i < S->ncov; i++)
      if (strcmp(S->cov[i].chunkname, ar->source) == 0) file = i;
    S->cov_last_source = ar->source;
    S->cov_last_file = file;
  }
  if (file < 0) return;
  m2m_cov_file *f = &S->cov[file];
  if (ar->currentline > 0 && ar->currentline < f->nlines) f->lines[ar->currentline] |= 2;
}

void m2m_coverage_free(m2m_state *S) {
  for (int i = 0; i < S->ncov; i++) {
    free(S->cov[i].chunkname);
    free(S->cov[i].lines);
  }
  free(S->cov);
  S->cov = NULL;
  S->ncov = 0;
}
