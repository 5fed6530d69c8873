#include "CLuaShims.h"

int m2m_lua_version_num(void) { return LUA_VERSION_NUM; }

static int m2m_traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        msg = "(error object is not a string)";
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int m2m_lua_dostring_protected(lua_State *L, const char *chunk, size_t length, const char *chunkname) {
    int base = lua_gettop(L);
    lua_pushcfunction(L, m2m_traceback);
    int status = luaL_loadbufferx(L, chunk, length, chunkname, "t");
    if (status != LUA_OK) {
        lua_remove(L, base + 1);
        return status;
    }
    status = lua_pcall(L, 0, 1, base + 1);
    lua_remove(L, base + 1);
    return status;
}

void m2m_lua_pop(lua_State *L, int n) { lua_pop(L, n); }

const char *m2m_lua_tolstring(lua_State *L, int index, size_t *length) {
    if (!lua_isstring(L, index)) {
        return NULL;
    }
    return lua_tolstring(L, index, length);
}
