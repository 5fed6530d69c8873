// Fixture builders of `m2mrsp policy test` (`fixtures.profile{…}` …): the host builds the same
// typed snapshots production builds, filling what the test leaves out with valid made-up values
// (FixtureDefaults) and refusing what production would refuse (a bad ICCID, an unknown field).

enum Fixtures {
    static func build(kind: String, _ value: PolicyValue) throws(PolicyError) -> [UInt8] {
        let path = "fixtures.\(kind)"
        switch kind {
        case "eis": return try EISSnapshot(policyValue: value, path: path, defaults: true).encoded
        case "profile": return try ProfileSnapshot(policyValue: value, path: path, defaults: true).encoded
        case "caller": return try CallerSnapshot(policyValue: value, path: path, defaults: true).encoded
        case "operation": return try OperationSnapshot(policyValue: value, path: path, defaults: true).encoded
        case "plma": return try PLMASnapshot(policyValue: value, path: path, defaults: true).encoded
        case "onc": return try ONCSnapshot(policyValue: value, path: path, defaults: true).encoded
        case "notification": return try NotificationSnapshot(policyValue: value, path: path, defaults: true).encoded
        case "input": return try PolicyInput(policyValue: value, path: path, defaults: true).encoded
        default: throw .invalidInput("no fixture '\(kind)'")
        }
    }
}
