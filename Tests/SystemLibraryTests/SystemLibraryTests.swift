// Each system library target (Lua 5.4, OpenSSL 3, SQLite) and its shims is linked and exercised
// here, so a missing -dev package or a broken shim fails loudly in `make test`.
import CLuaShims
import COpenSSL
import CSQLite
import Testing

@Suite("System libraries")
struct SystemLibraryTests {
    @Test("Lua 5.4 runs a text chunk under lua_pcall and reports errors as values")
    func luaProtectedChunk() throws {
        #expect(m2m_lua_version_num() == 504)
        let state = try #require(luaL_newstate())
        defer { lua_close(state) }
        luaL_openlibs(state)

        let ok = "return string.format('%d-%s', 6 * 7, 'ok')"
        #expect(m2m_lua_dostring_protected(state, ok, ok.utf8.count, "=ok") == LUA_OK)
        var length = 0
        let result = try #require(m2m_lua_tolstring(state, -1, &length))
        #expect(String(cString: result) == "42-ok")
        m2m_lua_pop(state, 1)

        let bad = "error('boom')"
        #expect(m2m_lua_dostring_protected(state, bad, bad.utf8.count, "=bad") == LUA_ERRRUN)
        let message = String(cString: try #require(m2m_lua_tolstring(state, -1, &length)))
        #expect(message.contains("boom"))
        #expect(message.contains("stack traceback"))
        m2m_lua_pop(state, 1)
        #expect(lua_gettop(state) == 0)

        // Binary chunks are refused: the loader runs in text mode only.
        let binary = "\u{1B}Lua"
        #expect(m2m_lua_dostring_protected(state, binary, binary.utf8.count, "=bin") == LUA_ERRSYNTAX)
        m2m_lua_pop(state, 1)
    }

    @Test("OpenSSL 3 computes SHA-256 of 'abc' (FIPS 180-2 vector) and has brainpoolP256r1")
    func openSSLDigestAndCurve() throws {
        #expect(m2m_openssl_version_number() >= 0x3000_0000)
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let input: [UInt8] = Array("abc".utf8)
        let md = try #require(EVP_MD_fetch(nil, "SHA256", nil))
        defer { EVP_MD_free(md) }
        #expect(EVP_Digest(input, input.count, &digest, &length, md, nil) == 1)
        let hex = digest.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
        #expect(hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(OBJ_txt2nid("brainpoolP256r1") != NID_undef)
        var secret: [UInt8] = [1, 2, 3]
        m2m_openssl_cleanse(&secret, secret.count)
        #expect(secret == [0, 0, 0])
    }

    @Test("SQLite runs a transaction with SQLITE_TRANSIENT-bound text")
    func sqliteTransaction() throws {
        var db: OpaquePointer?
        #expect(sqlite3_open(":memory:", &db) == SQLITE_OK)
        defer { sqlite3_close(db) }
        #expect(sqlite3_exec(db, "CREATE TABLE eis(eid TEXT PRIMARY KEY); BEGIN;", nil, nil, nil) == SQLITE_OK)
        var statement: OpaquePointer?
        #expect(sqlite3_prepare_v2(db, "INSERT INTO eis(eid) VALUES (?1)", -1, &statement, nil) == SQLITE_OK)
        let eid = "89001012012341234012345678901224"
        #expect(sqlite3_bind_text(statement, 1, eid, -1, m2m_sqlite_transient()) == SQLITE_OK)
        #expect(sqlite3_step(statement) == SQLITE_DONE)
        sqlite3_finalize(statement)
        #expect(sqlite3_exec(db, "COMMIT;", nil, nil, nil) == SQLITE_OK)
        #expect(sqlite3_prepare_v2(db, "SELECT count(*) FROM eis", -1, &statement, nil) == SQLITE_OK)
        #expect(sqlite3_step(statement) == SQLITE_ROW)
        #expect(sqlite3_column_int(statement, 0) == 1)
        sqlite3_finalize(statement)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
