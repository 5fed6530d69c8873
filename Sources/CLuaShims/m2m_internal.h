/*
** Internal declarations shared by the policy-engine C files (m2m_state.c, m2m_codec.c,
** m2m_pdk.c, m2m_coverage.c). Not exported to Swift.
**
** Stack discipline: every function that touches the Lua stack says in its comment what it
** pushes and pops; trailing comments give the intent of each stack operation.
*/
#ifndef M2M_INTERNAL_H
#define M2M_INTERNAL_H

#include "CLuaShims.h"
#include <string.h>
#include <stdlib.h>

/* ---- value encoding (docs/policy.md "Value encoding") ---- */
enum {
  M2M_T_NIL = 0, M2M_T_FALSE = 1, M2M_T_TRUE = 2, M2M_T_INT = 3, M2M_T_FLOAT = 4,
  M2M_T_STRING = 5, M2M_T_RECORD = 6, M2M_T_ARRAY = 7, M2M_T_KEY = 8
};
/* record: tag kind u32(bodylen) | u16(count) (key value)*
** array:  tag kind u32(bodylen) | u16(count) u32(offset)*count value*
** key:    M2M_T_KEY u8(id) | M2M_T_STRING ... | M2M_T_INT ...                          */
#define M2M_HEADER 6  /* tag + kind + bodylen */
#define M2M_MAX_DEPTH 32

/* Phases: 0 none, 1 load, 2 test, 3 + hook id while a hook runs. */
enum { M2M_PHASE_NONE = 0, M2M_PHASE_LOAD = 1, M2M_PHASE_TEST = 2, M2M_PHASE_HOOK0 = 3 };

#define M2M_MAX_HOOKS 32
#define M2M_MAX_BUNDLES 4096

typedef struct m2m_buf {
  unsigned char *data;
  size_t length, capacity;
} m2m_buf;

typedef struct m2m_cov_file {
  char *chunkname;
  int nlines;
  unsigned char *lines;  /* 1 active, 2 executed (bit 1 set) */
} m2m_cov_file;

struct m2m_state {
  lua_State *L;
  int flags;
  /* memory */
  size_t mem_used, mem_limit;
  int mem_relaxed;         /* >0 while the message handler or result reading runs */
  /* budget */
  long long instr_limit, instr_used, timeout_ns;
  int interval;
  unsigned long long deadline;  /* CLOCK_MONOTONIC ns */
  int active;                   /* a call is running: the hook enforces the budget */
  int tripped;
  /* phase and clock */
  int phase;
  long long now_s; int now_ns;
  /* host */
  m2m_host_fn host; void *host_ud;
  /* vocabulary */
  int nkeys, nkinds, nhooks, nsubjects, nreasons, nvias, nroles, nretry;
  int hook_kind[M2M_MAX_HOOKS];
  /* registry refs */
  int r_keys;      /* array id+1 -> key string */
  int r_kind_mt;   /* array kind+1 -> snapshot metatable */
  int r_hooks;     /* array hook+1 -> name */
  int r_subjects;  /* array row+1 -> constant userdata */
  int r_reasons;
  int r_vias, r_roles, r_retry;  /* name -> index+1 */
  int r_verdict_mt, r_const_mt;
  int r_allow, r_keep;  /* singleton verdicts */
  int r_template;  /* base functions copied into each env */
  int r_libs;      /* name -> library table to copy into each env */
  int r_pdk;       /* the read-only m2m module */
  int r_scopes;    /* array scope -> {modules, sources, loading} */
  int r_pipelines; /* [bundle+1][hook+1] -> flat array fn, conf, layer, fn, conf, layer ... */
  int r_ctx;       /* ctx of the running call (or nil) */
  int r_mocks;     /* test mode: lookup name -> function */
  int r_prelude;   /* table exported by the prelude */
  int r_testenv;   /* test globals added to test chunks */
  int r_errors;    /* preallocated budget error messages */
  int nscopes;
  /* scratch buffers (malloc'd, outside the Lua heap) */
  m2m_buf scratch;  /* encoding area of host calls */
  m2m_buf result;   /* encoded results for Swift */
  /* outcome */
  m2m_outcome out;
  int out_base;
  /* arguments of the protected call in progress (set by the m2m_* entry points) */
  const unsigned char *in_data; size_t in_length;
  int in_bundle, in_hook, in_layer, in_scope, in_test, in_ref;
  const char *in_name, *in_name2; const char *in_source; size_t in_source_length;
  long long in_hooks;
  /* snapshots of the running call: proxies over the caller's bytes, valid while 'gen' matches */
  unsigned gen;               /* generation of the running call (0: none running) */
  unsigned next_gen;
  const void *root;           /* the ctx proxy of the running call (its sections are cached) */
  int r_sections;             /* cache: key id + 1 -> section proxy of the running call */
  int nsections;
  unsigned char section_ids[32];
  /* interned key strings -> key id (open addressing on the TString's address) */
  const void *key_ptr[512];
  unsigned char key_id[512];
  /* coverage */
  int ncov;
  m2m_cov_file *cov;
  const void *cov_last_source;
  int cov_last_file;
};

static inline m2m_state *m2m_get(lua_State *L) {
  return *(m2m_state **)lua_getextraspace(L);
}

/* buffers */
int m2m_buf_reserve(m2m_buf *b, size_t extra);
void m2m_buf_free(m2m_buf *b);

/* codec (m2m_codec.c) */
int m2m_codec_open(lua_State *L, m2m_state *S);           /* creates snapshot metatables */
void m2m_push_blob_value(lua_State *L, const unsigned char *data, size_t length);  /* raises */
void m2m_push_call_value(lua_State *L, m2m_state *S, const unsigned char *data, size_t length);  /* raises */
void m2m_end_call_values(lua_State *L, m2m_state *S);  /* expires the call's proxies */
void m2m_push_plain_value(lua_State *L, m2m_state *S, const unsigned char *data, size_t length);  /* raises */
void m2m_codec_keys(lua_State *L, m2m_state *S);        /* builds the key hash from r_keys */
void m2m_push_value_at(lua_State *L, int blob, const unsigned char *p, const unsigned char *end);
int m2m_encode_value(lua_State *L, m2m_state *S, int idx, m2m_buf *b, int depth, int skipfns);
int m2m_encode_args(lua_State *L, m2m_state *S, int first, int last, m2m_buf *b);
int m2m_is_snapshot(lua_State *L, int idx);
const unsigned char *m2m_value_end(const unsigned char *p, const unsigned char *end);

/* pdk (m2m_pdk.c) */
int m2m_pdk_open(lua_State *L, m2m_state *S);   /* builds the m2m module; leaves it on the stack */
void m2m_freeze(lua_State *L, const char *name); /* replaces the table at the top by a read-only proxy */
int m2m_verdict_kind(lua_State *L, int idx);     /* M2M_VERDICT_* or -1 when not a verdict */
void m2m_read_verdict(lua_State *L, m2m_state *S, int idx);  /* fills S->out */
int m2m_read_route(lua_State *L, m2m_state *S, int idx, m2m_route *r);
int m2m_msgh(lua_State *L);
int m2m_safe_tostring(lua_State *L, int idx);    /* pushes a string without metamethods */
int m2m_host_call(lua_State *L, int function, int first, int last);  /* pushes result; raises */
int m2m_print(lua_State *L);  /* print replacement: m2m.log.info */

/* state (m2m_state.c) */
int m2m_run_layers(lua_State *L, m2m_state *S, int bundle, int hook, int ctx);
int m2m_new_env(lua_State *L, m2m_state *S, int scope, int test);  /* pushes a fresh env */
const char *m2m_phase_name(lua_State *L, m2m_state *S);

/* coverage (m2m_coverage.c) */
void m2m_coverage_line(lua_State *L, m2m_state *S, lua_Debug *ar);
void m2m_coverage_free(m2m_state *S);

#endif
