// C shims over Lua 5.4. Swift must never raise a Lua error (longjmp across Swift frames skips
// defers and leaks); everything that may raise runs in C under lua_pcall. Lua macros are
// re-exported here as functions because Swift cannot import function-like macros.
//
// The second half of this header is the policy-engine bridge (`m2m_state`): a sandboxed Lua
// state with a capped allocator, an instruction/deadline hook, the `m2m` PDK, the snapshot value
// codec and the hook pipelines. Every function below returns a status and never raises; the
// design is described in docs/policy.md ("The bridge").
#ifndef M2M_CLUA_SHIMS_H
#define M2M_CLUA_SHIMS_H
#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>

/// The Lua version number the library was built with (LUA_VERSION_NUM, e.g. 504).
int m2m_lua_version_num(void);

/// Runs `chunk` (text only, mode "t") in a fresh protected call and leaves its first result on
/// the stack. Returns LUA_OK or an error status; on error the message is on the stack.
/// Never raises: every failure is reported through the return value.
int m2m_lua_dostring_protected(lua_State *L, const char *chunk, size_t length, const char *chunkname);

/// lua_pop as a function.
void m2m_lua_pop(lua_State *L, int n);

/// lua_tostring as a function (NULL when the value is not a string or number).
const char *m2m_lua_tolstring(lua_State *L, int index, size_t *length);

/* ====================================================================================
** Policy-engine bridge
** ==================================================================================== */

/// Flags for m2m_state_new.
enum {
  M2M_FLAG_TEST = 1,      /* test mode: verdict constructors usable outside hooks, mocks */
  M2M_FLAG_COVERAGE = 2,  /* record executed lines of registered files (line hook) */
  M2M_FLAG_RAW = 4        /* benchmark baseline: system allocator, no hook, no cap */
};

/// Why a call stopped early (m2m_outcome.tripped).
enum {
  M2M_TRIP_NONE = 0,
  M2M_TRIP_INSTRUCTIONS = 1,  /* instruction budget exhausted */
  M2M_TRIP_DEADLINE = 2,      /* wall-clock deadline passed */
  M2M_TRIP_MEMORY = 3         /* allocator refused memory (status LUA_ERRMEM) */
};

/// Verdict kinds a pipeline can end with (m2m_outcome.kind).
enum {
  M2M_VERDICT_NONE = 0,  /* every layer returned nil */
  M2M_VERDICT_ALLOW = 1,
  M2M_VERDICT_WARN = 2,
  M2M_VERDICT_DENY = 3,
  M2M_VERDICT_KEEP = 4,
  M2M_VERDICT_DROP = 5,
  M2M_VERDICT_ROUTE = 6
};

/// Hook kinds (the vocabulary gives each hook one).
enum {
  M2M_HOOK_DECISION = 1,  /* before_*: allow / warn / deny */
  M2M_HOOK_ROUTE = 2,     /* route_notification: a list of m2m.route values */
  M2M_HOOK_FILTER = 3     /* filter_notification: keep / drop */
};

/// Limits of one state. Zero means "no limit" for each field.
typedef struct m2m_limits {
  size_t memory_limit;          /* bytes the allocator grants the whole state */
  long long instruction_limit;  /* VM instructions per call (counted every hook_interval) */
  long long timeout_ns;         /* wall-clock budget per call, CLOCK_MONOTONIC */
  int hook_interval;            /* instructions between two budget checks (default 1000) */
} m2m_limits;

/// A reply from the host (Swift) to a host call: encoded value bytes, or an error message.
/// `data` stays owned by the host and must remain valid until the host function is called
/// again; C copies it before returning to Lua.
typedef struct m2m_host_reply {
  const unsigned char *data;
  size_t length;
  int is_error;  /* nonzero: `data` is a UTF-8 error message; C raises it after Swift returned */
} m2m_host_reply;

/// The host function: `function` is an M2M_HOST_* code, `args` the encoded argument list (an
/// array value). Returns 0; never raises (it cannot: it does not see the lua_State).
typedef int (*m2m_host_fn)(void *ud, int function, const unsigned char *args, size_t length,
                           m2m_host_reply *reply);

/// Host functions Lua can reach (through C trampolines only).
enum {
  M2M_HOST_LOG = 1,       /* args: {level, message} */
  M2M_HOST_FIXTURE = 2,   /* args: {kind, table}  -> encoded snapshot */
  M2M_HOST_LOOKUP = 3,    /* args: {name, key...} -> encoded snapshot or nil */
  M2M_HOST_PARSE_TIME = 4,/* args: {iso}          -> {seconds, nanoseconds} */
  M2M_HOST_CONF = 5       /* args: {plugin, table} -> validated configuration */
};

/// One route of a routing outcome. Strings point into values kept on the Lua stack until
/// m2m_finish is called.
typedef struct m2m_route {
  int via;    /* index into the vocabulary's "vias" list */
  int role;   /* index into the vocabulary's "roles" list */
  int retry;  /* index into the vocabulary's "retry" list */
  const char *to; size_t to_length;
  const char *smdp; size_t smdp_length;  /* NULL unless the route goes through an SM-DP */
} m2m_route;

#define M2M_MAX_ROUTES 64
#define M2M_MAX_OBLIGATIONS 16

/// What a call produced. Lives inside the state; valid until m2m_finish.
typedef struct m2m_outcome {
  int status;    /* LUA_OK or the lua_pcall error status */
  int tripped;   /* M2M_TRIP_* */
  int kind;      /* M2M_VERDICT_* */
  int layer;     /* 0-based layer that decided (deny/warn/drop), or -1 */
  int subject;   /* 0-based row of SubjectCode.table, or -1 */
  int reason;    /* 0-based row of ReasonCode.table, or -1 */
  const char *message; size_t message_length;
  int obligation_count;  /* ICCIDs to delete once the disable completes (POL2 Auto-Delete) */
  const char *obligations[M2M_MAX_OBLIGATIONS];
  size_t obligation_lengths[M2M_MAX_OBLIGATIONS];
  int route_count;
  m2m_route routes[M2M_MAX_ROUTES];
  const char *error; size_t error_length;  /* message and traceback when status != LUA_OK */
  const unsigned char *bytes; size_t bytes_length;  /* encoded result of m2m_call_ref/m2m_encode_ref */
  int invalid_result;      /* the error is a hook result of the wrong kind */
  long long instructions;  /* instructions counted (multiple of the hook interval) */
  size_t memory_in_use;    /* bytes held by the state after the call */
} m2m_outcome;

typedef struct m2m_state m2m_state;

/// Creates a state with the custom allocator and limits; NULL when out of memory.
m2m_state *m2m_state_new(const m2m_limits *limits, int flags);
/// Closes the Lua state and frees everything.
void m2m_state_free(m2m_state *S);
/// The Lua state (tests only; Swift must not call raising API on it).
lua_State *m2m_state_lua(m2m_state *S);
/// The outcome of the last call.
const m2m_outcome *m2m_state_outcome(m2m_state *S);
/// Route `i` of the outcome (0 <= i < route_count).
const m2m_route *m2m_outcome_route(const m2m_outcome *o, int i);
/// Obligation `i` (an ICCID) of the outcome, with its length.
const char *m2m_outcome_obligation(const m2m_outcome *o, int i, size_t *length);
/// Bytes held by the state now.
size_t m2m_state_memory(m2m_state *S);
/// Replaces the limits (e.g. a bigger budget while loading).
void m2m_state_set_limits(m2m_state *S, const m2m_limits *limits);
/// Sets the instant m2m.clock reports (one reading per decision).
void m2m_state_set_clock(m2m_state *S, int64_t seconds, int32_t nanoseconds);

/// Builds the sandbox and the `m2m` PDK from the vocabulary (an encoded record with string keys:
/// keys, kinds, hooks, hook_kinds, subjects, reasons, vias, roles, retry) and runs the host
/// prelude (trusted Lua). Status; on error the message is in the outcome.
int m2m_state_setup(m2m_state *S, const unsigned char *vocabulary, size_t length,
                    const char *prelude, size_t prelude_length,
                    m2m_host_fn host, void *host_ud);

/// Creates a module scope (what `require` can see besides "m2m") and returns its id (>= 1) or
/// 0 on error.
int m2m_scope_new(m2m_state *S);
/// Registers a source file under a module name in a scope; `require(name)` loads it once.
int m2m_scope_add_source(m2m_state *S, int scope, const char *name, const char *source,
                         size_t length, const char *chunkname);
/// Loads a registered module of a scope (as require would) and stores its value under a ref.
/// `test` gives the chunk the test globals. Status; *ref receives the registry ref.
int m2m_scope_require(m2m_state *S, int scope, const char *name, int test, int *ref);

/// Appends a layer to pipeline (bundle, every hook the module defines): the module held by
/// `module_ref`, with its configuration (encoded value, frozen read-only). *hooks receives a
/// bitmask of the hooks found (bit = hook id).
int m2m_pipeline_add(m2m_state *S, int bundle, int layer, const char *name, int module_ref,
                     const unsigned char *conf, size_t conf_length, long long *hooks);

/// Runs pipeline (bundle, hook) on the encoded input. Results stay on the Lua stack until
/// m2m_finish; read them through m2m_state_outcome.
int m2m_run(m2m_state *S, int bundle, int hook, const unsigned char *input, size_t length);
/// Pops everything the last call left on the stack.
void m2m_finish(m2m_state *S);

/// Calls the function held by `fn_ref` with the decoded (array) arguments and encodes its
/// first result into outcome.bytes. Used for the test harness and metadata.
int m2m_call_ref(m2m_state *S, int fn_ref, const unsigned char *args, size_t length);
/// Encodes the value held by `ref` (functions become absent fields) into outcome.bytes.
int m2m_encode_ref(m2m_state *S, int ref);
/// Looks up a field of the prelude's export table and stores it under a ref (0 on error).
int m2m_prelude_ref(m2m_state *S, const char *name);
/// Releases a ref.
void m2m_unref(m2m_state *S, int ref);

/// Coverage (M2M_FLAG_COVERAGE): registers a chunk name whose lines are counted, with the
/// lines that hold code (computed from the compiled chunk). Returns a file id or -1.
int m2m_coverage_register(m2m_state *S, const char *chunkname, const char *source, size_t length);
/// Fills `lines` (capacity `n`) with 1 for active lines and 2 for executed ones, indexed by
/// line number; returns the number of lines known for the file.
int m2m_coverage_read(m2m_state *S, int file, unsigned char *lines, int n);

/// The benchmark baseline: pcall of the pipeline's Lua functions, one after the other, with
/// ctx decoded from `input` as the engine does, and nothing else (no handler, no budget, no
/// result conversion). Returns the number of functions called, or -1 on an error.
int m2m_bench_raw(m2m_state *S, int bundle, int hook, const unsigned char *input, size_t length);

#endif
