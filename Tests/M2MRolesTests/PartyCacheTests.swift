// The callers' parties a role keeps in memory (PartyCache): found parties only, and what this process
// registers wins over a lookup that was running at the time.

import M2MCore
@testable import M2MRoles
import M2MStorage
import Testing

@Suite("Party cache")
struct PartyCacheTests {
    let oid: OID = "1.3.6.1.4.1.99999.4.1"

    @Test("Unknown callers are not kept; a found party is served without a second lookup")
    func keepsFound() {
        let cache = PartyCache()
        var loads = 0
        #expect(cache.party(oid, load: { loads += 1; return nil }) == nil)
        #expect(cache.party(oid, load: { loads += 1; return Party(oid: oid, role: .mno) })?.role == .mno)
        #expect(cache.party(oid, load: { loads += 1; return Party(oid: oid, role: .eum) })?.role == .mno)
        #expect(loads == 2)
    }

    @Test("A register (put) while a lookup runs is not overwritten by the older row the lookup read")
    func registerDuringLookupWins() {
        let cache = PartyCache()
        let stale = cache.party(oid, load: {
            // `register` commits the new role and updates the cache while this lookup holds the old row.
            cache.put(Party(oid: oid, role: .m2mSP))
            return Party(oid: oid, role: .mno)
        })
        #expect(stale?.role == .mno)
        #expect(cache.party(oid, load: { Issue.record("the cached entry should serve"); return nil })?.role == .m2mSP)
    }
}
