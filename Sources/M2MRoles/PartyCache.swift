// The parties a role knows, as its calls look them up: every call reads its caller's party
// (issue #8: a read transaction of its own per call, about a tenth of a GetEIS's server time).
// Only parties found are kept, for `lifetime` seconds: a party registered by another process (the
// `smsr init` command on the same database) is found at once, and a role changed there applies within
// the lifetime; `register` in this process replaces the entry at once. Parties are never deleted.

import Dispatch
import M2MCore
import M2MStorage
import Synchronization

final class PartyCache: Sendable {
    static let lifetime: UInt64 = 2_000_000_000
    private let entries = Mutex<[OID: (party: Party, until: UInt64)]>([:])

    /// The cached party of `oid`, or `load`'s (kept when found).
    func party(_ oid: OID, load: () throws -> Party?) rethrows -> Party? {
        let now = DispatchTime.now().uptimeNanoseconds
        if let entry = entries.withLock({ $0[oid] }), entry.until > now { return entry.party }
        guard let party = try load() else { return nil }
        // A `put` since `now` (a `register` while this loaded) is newer than what was loaded: it stays.
        entries.withLock {
            if let newer = $0[oid], newer.until >= now + Self.lifetime { return }
            $0[oid] = (party, now + Self.lifetime)
        }
        return party
    }

    /// What this process just registered.
    func put(_ party: Party) {
        entries.withLock { $0[party.oid] = (party, DispatchTime.now().uptimeNanoseconds + Self.lifetime) }
    }
}
