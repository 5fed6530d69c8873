// System SQLite 3 (pkg-config sqlite3).
#ifndef M2M_CSQLITE_SHIM_H
#define M2M_CSQLITE_SHIM_H
#include <sqlite3.h>

/// SQLITE_TRANSIENT is a cast of -1 to a function pointer: Swift cannot import it.
static inline sqlite3_destructor_type m2m_sqlite_transient(void) { return SQLITE_TRANSIENT; }
#endif
