// What the C side learns at state creation: snapshot keys and kinds, hooks, the SGP.02 code
// tables, route choices. Sent once per state as one encoded record (string keys only).

import M2MCore

/// The names plugins use for subject and reason codes: `m2m.subject.EID`, `m2m.reason.REFUSED`.
///
/// Every row of `SubjectCode.table` / `ReasonCode.table` is exported at state creation. A row's
/// Lua name is the Swift constant's name in UPPER_SNAKE (`profileICCID` → `PROFILE_ICCID`,
/// `notAllowed` → `NOT_ALLOWED`). Swift cannot list static members at run time, so the constant
/// names are kept here by code; `StatusCodeNameTests` reads `SubjectCode+Table.swift` and
/// `ReasonCode+Table.swift` and fails when this list and those files disagree. A row missing
/// here is still exported, under its spec name in UPPER_SNAKE.
enum StatusCodeNames {
    static let subjects: [String: String] = [
        "1": "generic", "1.1": "functionRequester", "1.2": "functionProvider", "1.3": "protocol",
        "1.3.1": "protocolFormat", "1.3.2": "protocolVersion", "1.6": "function", "8": "euiccRemoteProvisioning",
        "8.1": "euicc", "8.1.1": "eid", "8.1.2": "eumCertificate", "8.1.3": "euiccCertificate", "8.2": "profile",
        "8.2.1": "profileICCID", "8.2.2": "pol1", "8.2.3": "pol2", "8.2.4": "subscriptionAddress", "8.2.5": "profileType",
        "8.3": "isdr", "8.4": "isdp", "8.5": "ecasd", "8.6": "smdp", "8.7": "smsr",
    ]

    static let reasons: [String: String] = [
        "1": "accessError", "1.1": "unknownIdentity", "1.2": "notAllowed", "2": "formatError", "2.1": "invalid",
        "2.2": "mandatoryElementMissing", "2.3": "conditionalElementMissing", "3": "conditionsOfUseNotSatisfied",
        "3.1": "unsupported", "3.2": "maximumSizeExceeded", "3.3": "alreadyInUse", "3.4": "invalidDestination",
        "3.5": "invalidTransition", "3.6": "relatedObjectsExist", "3.7": "unavailable", "3.8": "refused", "3.9": "unknown",
        "3.10": "invalidAssociation", "4": "processingError", "4.2": "executionError", "4.3": "stoppedOnWarning",
        "4.4": "pendingOperation", "4.8": "insufficientMemory", "4.10": "timeToLiveExpired", "5": "transportError",
        "5.1": "inaccessible", "5.3": "transportExpired", "6": "securityError", "6.1": "verificationFailed", "6.3": "expired",
        "6.4": "maximumAttemptsExceeded",
    ]

    /// `profileICCID` → `PROFILE_ICCID`; `euiccRemoteProvisioning` → `EUICC_REMOTE_PROVISIONING`.
    static func upperSnake(camel: String) -> String {
        let chars = Array(camel)
        var out = ""
        for (i, c) in chars.enumerated() {
            if c.isUppercase, i > 0 {
                let previousLower = chars[i - 1].isLowercase || chars[i - 1].isNumber
                let nextLower = i + 1 < chars.count && chars[i + 1].isLowercase
                if previousLower || (nextLower && chars[i - 1].isUppercase) { out.append("_") }
            }
            out.append(contentsOf: c.uppercased())
        }
        return out
    }

    /// `Not Allowed (Authorisation)` → `NOT_ALLOWED` (the fallback for rows missing above).
    static func upperSnake(specName: String) -> String {
        let base = specName.split(separator: "(").first.map(String.init) ?? specName
        let words = base.split { !$0.isLetter && !$0.isNumber }
        return words.map { $0.uppercased() }.joined(separator: "_")
    }

    static func luaName(subject entry: StatusCodeEntry<SubjectCode>) -> String {
        subjects[entry.code.rawValue].map { upperSnake(camel: $0) } ?? upperSnake(specName: entry.name)
    }

    static func luaName(reason entry: StatusCodeEntry<ReasonCode>) -> String {
        reasons[entry.code.rawValue].map { upperSnake(camel: $0) } ?? upperSnake(specName: entry.name)
    }
}

enum Vocabulary {
    /// Lookups plugins can make through `m2m.lookup.<name>` (answered by a `PolicyDataSource`).
    static let lookups = ["eis", "plma", "onc"]

    /// The encoded vocabulary record (see m2m_state_setup).
    static let encoded: [UInt8] = {
        func list(_ items: [String]) -> PolicyValue { .array(items.map { .string($0) }) }
        let subjects = SubjectCode.table.map { entry -> PolicyValue in
            ["code": .string(entry.code.rawValue), "name": .string(StatusCodeNames.luaName(subject: entry)), "meaning": .string(entry.meaning)]
        }
        let reasons = ReasonCode.table.map { entry -> PolicyValue in
            ["code": .string(entry.code.rawValue), "name": .string(StatusCodeNames.luaName(reason: entry)), "meaning": .string(entry.meaning)]
        }
        let value: PolicyValue = [
            "keys": list(PolicyKey.allCases.map(\.name)),
            "kinds": list(SnapshotKind.allCases.map(\.luaName)),
            "hooks": list(PolicyHook.allCases.map(\.rawValue)),
            "hook_kinds": .array(PolicyHook.allCases.map { .integer(Int64($0.kind.rawValue)) }),
            "subjects": .array(subjects),
            "reasons": .array(reasons),
            "vias": list(RouteVia.allCases.map(\.rawValue)),
            "roles": list(RecipientRole.allCases.map(\.rawValue)),
            "retry": list(RetryClass.allCases.map(\.rawValue)),
            "lookups": list(lookups),
        ]
        var writer = ValueWriter(capacity: 4096)
        writer.stringKeysOnly = true
        writer.value(value)
        return writer.bytes
    }()
}
