// Debian's liblua5.4-dev installs the headers under /usr/include/lua5.4 (pkg-config lua5.4).
#ifndef M2M_CLUA_SHIM_H
#define M2M_CLUA_SHIM_H
#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>
#endif
