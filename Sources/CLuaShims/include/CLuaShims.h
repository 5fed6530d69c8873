// C shims over Lua 5.4. Swift must never raise a Lua error (longjmp across Swift frames skips
// defers and leaks); everything that may raise runs in C under lua_pcall. Lua macros are
// re-exported here as functions because Swift cannot import function-like macros.
#ifndef M2M_CLUA_SHIMS_H
#define M2M_CLUA_SHIMS_H
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

#endif
