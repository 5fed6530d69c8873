// ES1 (EUM → SM-SR): RegisterEIS and UpdateEISAdditionalProperties (spec §5.2; docs/smsr.md).

import M2MCore
import M2MCrypto
import Foundation
import Synchronization
public import M2MSOAP
import M2MStorage
import M2MWire

/// Our two-byte audit operation codes (the SGP.02 code list is not public: docs/smsr.md).
enum AuditOperation {
    static let registerEIS: HexBinary = [0x01, 0x01]
    static let updateEIS: HexBinary = [0x01, 0x02]
    static let enable: HexBinary = [0x03, 0x01]
    static let disable: HexBinary = [0x03, 0x02]
    static let delete: HexBinary = [0x03, 0x03]
    static let setFallBack: HexBinary = [0x03, 0x04]
    static let setEmergency: HexBinary = [0x03, 0x05]
    static let createISDP: HexBinary = [0x02, 0x01]
    static let downloadCompleted: HexBinary = [0x02, 0x03]
    static let updateConnectivity: HexBinary = [0x05, 0x03]
    static let cardFallBack: HexBinary = [0x03, 0x06]
    static let audit: HexBinary = [0x04, 0x01]
    static let updatePOL2: HexBinary = [0x05, 0x01]
    static let updateAddress: HexBinary = [0x05, 0x02]
    static let smsrChange: HexBinary = [0x06, 0x01]
}

public protocol ES1Provider: Sendable {
    func registerEIS(_ request: ES1.RegisterEISRequest, context: RequestContext) -> ES1.RegisterEISResponse
    func updateEISAdditionalProperties(_ request: ES1.UpdateEISAdditionalPropertiesRequest, context: RequestContext)
        -> ES1.UpdateEISAdditionalPropertiesResponse
}

extension SMSR: ES1Provider {
    public func registerEIS(_ request: ES1.RegisterEISRequest, context: RequestContext) -> ES1.RegisterEISResponse {
        serve(request, context: context, roles: [.eum], failure: { ES1.RegisterEISResponse(functionExecutionStatus: $0) }) { call in
            let eis = request.eis
            let eumCertificate = try verifiedEUMCertificate(of: eis, at: call.now)
            let new = try newEIS(try verifyRegistration(eis, caller: call.caller.oid, eumCertificate: eumCertificate), caller: call.caller.oid, now: call.now)
            return try call.commit { tx in
                try insertRegistration(new, iccids: eis.profiles.map(\.iccid), in: tx, now: call.now)
                return ES1.RegisterEISResponse(functionExecutionStatus: .success)
            }
        }
    }

    /// The checks of a registration whose EUM certificate was verified against the CI: the EUM is
    /// the caller, the EIS is for this SM-SR, CERT.ECASD.ECKA is the EID's and the EUM issued it,
    /// the EUM signed the EIS; then the ISD-R keys sealed and the EIS without them.
    func verifyRegistration(_ eis: EIS, caller: OID, eumCertificate: X509Certificate) throws(Refusal) -> ([SealedKey], EIS) {
        guard eis.eumSignedInfo.eumID == caller else {
            throw Refusal(.functionRequester, .notAllowed, "the EIS names EUM \(eis.eumSignedInfo.eumID.text), not the caller", identifier: caller.text)
        }
        guard eis.smsrID == configuration.smsrID else {
            throw Refusal(.smsr, .invalidDestination, "the EIS is for SM-SR \(eis.smsrID.text)", identifier: eis.smsrID.text)
        }
        try Self.checkConsistency(eis)
        try verifyEUMSigned(eis, eumCertificate: eumCertificate)
        return try importISDRKeys(eis)
    }

    /// The certificate of the EUM that signed `eis`, verified against the CI (8.1.2/3.9 unknown, 8.1.2/6.1).
    func verifiedEUMCertificate(of eis: EIS, at now: Timestamp) throws(Refusal) -> X509Certificate {
        let eumID = eis.eumSignedInfo.eumID
        guard let eumCertificate = trust.eums[eumID] else {
            throw Refusal(.eumCertificate, .unknown, "no certificate of EUM \(eumID.text) is known", identifier: eumID.text)
        }
        do {
            try eumCertificate.verify(root: trust.ci, at: now)
        } catch {
            throw Refusal(.eumCertificate, .verificationFailed, "EUM certificate: \(error)", identifier: eumID.text)
        }
        return eumCertificate
    }

    /// CERT.ECASD.ECKA is the EID's and the EUM issued it; the EUM signed the EIS (registration, and
    /// the new SM-SR receiving an EIS at an SM-SR change).
    func verifyEUMSigned(_ eis: EIS, eumCertificate: X509Certificate) throws(Refusal) {
        // An EUM key checks two signatures per EIS, for every eUICC the EUM makes: its table of
        // multiples is built on first use (~20 ms, once per EUM key; docs/crypto.md) and kept with the key.
        if configuration.eumKeyTables { eumCertificate.publicKey.prepareForRepeatedVerification() }
        let references = eis.eumSignedInfo.ecasd.keysets.flatMap(\.items).compactMap { item -> GPCertificateReference? in
            if case .certificate(let c) = item { return c }
            return nil
        }
        guard let reference = references.first, let ecasd = try? GPCertificate(encoded: reference.value.bytes) else {
            throw Refusal(.euiccCertificate, .mandatoryElementMissing, "the ECASD carries no GP certificate")
        }
        guard ecasd.subjectIdentifier == eis.eid.bytes else {
            throw Refusal(.euiccCertificate, .invalidAssociation, "CERT.ECASD.ECKA is not the certificate of this EID", identifier: eis.eid.text)
        }
        do {
            try GPCertificateVerifier.verify(ecasd, issuer: eumCertificate.publicKey)
        } catch {
            throw Refusal(.euiccCertificate, .verificationFailed, "CERT.ECASD.ECKA: \(error)", identifier: eis.eid.text)
        }
        do {
            try EISSignature.verify(eis, eumKey: eumCertificate.publicKey)
        } catch {
            throw Refusal(.eumCertificate, .verificationFailed, "EIS signature: \(error)", identifier: eis.eid.text)
        }
    }

    /// What the store's constraints would refuse, refused here with its code (so one bad EIS in a batch
    /// is answered on its own instead of failing its whole write slice): two Profiles with one ICCID
    /// or one ISD-P, more than one Enabled, Fall-Back or Emergency Profile, two ISD-R keys with one
    /// key set version and index.
    static func checkConsistency(_ eis: EIS) throws(Refusal) {
        var iccids = Set<String>()
        var aids = Set<AID>()
        for profile in eis.profiles {
            guard iccids.insert(profile.iccid.digits).inserted else {
                throw Refusal(.profileICCID, .alreadyInUse, "two Profiles of the EIS have this ICCID", identifier: profile.iccid.text)
            }
            guard aids.insert(profile.isdPAID).inserted else {
                throw Refusal(.isdp, .alreadyInUse, "two Profiles of the EIS are in this ISD-P", identifier: profile.isdPAID.text)
            }
        }
        if eis.profiles.count(where: { $0.state == .enabled }) > 1 { throw Refusal(.profile, .invalid, "the EIS has more than one Enabled Profile") }
        if eis.profiles.count(where: \.fallbackAttribute) > 1 { throw Refusal(.profile, .invalid, "the EIS has more than one Fall-Back Profile") }
        if eis.profiles.count(where: \.emergencyProfileAttribute) > 1 { throw Refusal(.profile, .invalid, "the EIS has more than one Emergency Profile") }
        var keys = Set<[Int]>()
        for keyset in eis.isdR.keysets {
            for item in keyset.items {
                guard case .key(let key) = item else { continue }
                guard keys.insert([keyset.version, key.index]).inserted else {
                    throw Refusal(.isdr, .invalid, "two ISD-R keys with key set \(keyset.version) and index \(key.index)")
                }
            }
        }
    }

    /// The rows of a verified registration (stripped EIS, sealed keys, audit record), encoded.
    func newEIS(_ verified: ([SealedKey], EIS), caller: OID, now: Timestamp) throws(Refusal) -> NewEIS {
        let (keys, stripped) = verified
        let counter = stripped.isdR.keysets.first { $0.type == .scp80 }?.counter ?? 0
        let audit = AuditTrailRecord(eid: stripped.eid, smsrID: configuration.smsrID, operationDate: now, operationType: AuditOperation.registerEIS,
                                     requesterID: caller, operationExecutionStatus: .success)
        do {
            return try store.prepare(stripped, keys: keys, scp80Counter: UInt64(max(0, counter)), audit: audit)
        } catch {
            throw Refusal.storage(error)
        }
    }

    /// Inserts a registration unless its EID or one of its ICCIDs is already registered.
    func insertRegistration(_ new: NewEIS, iccids: [ICCID], in tx: any SMSRWriting, now: Timestamp) throws {
        guard try tx.eis(new.eid) == nil else { throw Refusal(.eid, .alreadyInUse, "the eUICC is already registered", identifier: new.eid.text) }
        for iccid in iccids where try tx.profileLocation(iccid) != nil {
            throw Refusal(.profileICCID, .alreadyInUse, "the ICCID is registered on another eUICC", identifier: iccid.text)
        }
        try tx.insertEIS(new, now: now)
    }

    /// Registers many EIS at once (an EUM's production batch). Each EUM certificate is verified
    /// against the CI once. Then every core takes EIS in order and either checks one (CERT.ECASD.ECKA,
    /// EIS signature, keys sealed, rows and response encoded) or, when the next slice (of
    /// `registrationSlices`) is checked and no other thread is writing, writes that slice in one
    /// transaction: each EIS with its function-call row, audit row and response, so a retried EIS
    /// answers as the first time. The writing thread holds only SQLite work, and it overlaps the
    /// checks (docs/smsr.md, "RegisterEIS in batches"). Slices commit in order; a crash leaves a
    /// prefix registered, and the retried batch answers it from the function-call rows. Answers in order.
    public func registerEISBatch(_ requests: [ES1.RegisterEISRequest], context: RequestContext) -> [ES1.RegisterEISResponse] {
        let now = clock.now()
        @Sendable func failed(_ status: FunctionExecutionStatus) -> ES1.RegisterEISResponse {
            ES1.RegisterEISResponse(processingStart: now, processingEnd: clock.now(), functionExecutionStatus: status)
        }
        guard let party = try? store.read({ try $0.party(context.caller) }) else {
            return requests.map { _ in failed(.failed(.functionRequester, .unknownIdentity, identifier: context.caller.text, message: "unknown caller")) }
        }
        guard party.role == .eum else {
            return requests.map { _ in failed(.failed(.functionRequester, .notAllowed, identifier: context.caller.text, message: "only an EUM registers EIS")) }
        }
        // EUM certificates against the CI, once per EUM of the batch.
        var eums: [OID: Result<X509Certificate, Refusal>] = [:]
        for request in requests where eums[request.eis.eumSignedInfo.eumID] == nil {
            let id = request.eis.eumSignedInfo.eumID
            guard let certificate = trust.eums[id] else {
                eums[id] = .failure(Refusal(.eumCertificate, .unknown, "no certificate of EUM \(id.text) is known", identifier: id.text))
                continue
            }
            do {
                try certificate.verify(root: trust.ci, at: now)
                eums[id] = .success(certificate)
            } catch {
                eums[id] = .failure(Refusal(.eumCertificate, .verificationFailed, "EUM certificate: \(error)", identifier: id.text))
            }
        }
        let verifiedEUMs = eums
        let callerOID = party.oid

        /// One checked EIS: its rows (or why not), the request's digest, the response it gets if its
        /// rows go in, and that response encoded.
        struct Checked: Sendable {
            var result: Result<NewEIS, Refusal>
            var digest: [UInt8]
            var success: ES1.RegisterEISResponse
            var successBytes: [UInt8]
        }
        @Sendable func check(_ index: Int) -> Checked {
            let request = requests[index]
            let eis = request.eis
            let result: Result<NewEIS, Refusal>
            switch verifiedEUMs[eis.eumSignedInfo.eumID] {
            case .success(let certificate)?:
                do throws(Refusal) {
                    result = .success(try newEIS(try verifyRegistration(eis, caller: callerOID, eumCertificate: certificate), caller: callerOID, now: now))
                } catch { result = .failure(error) }
            case .failure(let refusal)?: result = .failure(refusal)
            case nil: result = .failure(Refusal(.eumCertificate, .unknown, "no EUM", identifier: nil))
            }
            let success = ES1.RegisterEISResponse(processingStart: now, processingEnd: clock.now(), functionExecutionStatus: .success)
            return Checked(result: result, digest: SHA256.hash(MessageBytes.encode(request)), success: success, successBytes: MessageBytes.encode(success))
        }
        @Sendable func write(_ range: Range<Int>, _ checked: [Checked]) -> [ES1.RegisterEISResponse] {
            do {
                return try store.write { tx throws -> [ES1.RegisterEISResponse] in
                    var answers: [ES1.RegisterEISResponse] = []
                    answers.reserveCapacity(range.count)
                    for (offset, index) in range.enumerated() {
                        let request = requests[index]
                        let item = checked[offset]
                        if let seen = try tx.functionCall(caller: callerOID, identifier: request.functionCallIdentifier) {
                            if seen.requestDigest == item.digest, let bytes = seen.response, let response = try? MessageBytes.decode(ES1.RegisterEISResponse.self, bytes) {
                                answers.append(response)
                            } else {
                                answers.append(failed(.failed(.function, .alreadyInUse, identifier: request.functionCallIdentifier,
                                                              message: "FunctionCallIdentifier used for another request")))
                            }
                            continue
                        }
                        var response = item.success
                        var bytes = item.successBytes
                        switch item.result {
                        case .success(let new):
                            do {
                                try insertRegistration(new, iccids: request.eis.profiles.map(\.iccid), in: tx, now: now)
                            } catch let refusal as Refusal {
                                response = failed(refusal.status)
                                bytes = MessageBytes.encode(response)
                            }
                        case .failure(let refusal):
                            response = failed(refusal.status)
                            bytes = MessageBytes.encode(response)
                        }
                        try tx.recordFunctionCall(caller: callerOID, identifier: request.functionCallIdentifier, function: "ES1.RegisterEIS",
                                                  digest: item.digest, response: bytes, now: now)
                        answers.append(response)
                    }
                    return answers
                }
            } catch {
                return range.map { _ in failed(Refusal.storage(error).status) }
            }
        }

        // Every core checks EIS in order; whichever finds the next slice complete and no write
        // running writes it. A thread with nothing to take waits for the last slice.
        struct Progress {
            var nextToCheck = 0
            var checked: [Checked?]
            var uncheckedInSlice: [Int]
            var nextSlice = 0
            var writing = false
        }
        enum Step { case check(Int), write(Int, [Checked]), wait, done }
        let count = requests.count
        let ranges = Self.registrationSlices(count: count)
        let slices = ranges.count
        var owners = [Int](repeating: 0, count: count)
        for (k, r) in ranges.enumerated() { for index in r { owners[index] = k } }
        let sliceOf = owners
        @Sendable func range(of k: Int) -> Range<Int> { ranges[k] }
        let progress = Mutex(Progress(checked: Array(repeating: nil, count: count), uncheckedInSlice: ranges.map(\.count)))
        let answers = Mutex([ES1.RegisterEISResponse?](repeating: nil, count: count))
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, count))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let step = progress.withLock { p -> Step in
                    if !p.writing, p.nextSlice < slices, p.uncheckedInSlice[p.nextSlice] == 0 {
                        p.writing = true
                        let r = range(of: p.nextSlice)
                        let items = r.map { p.checked[$0]! }
                        for index in r { p.checked[index] = nil }
                        return .write(p.nextSlice, items)
                    }
                    if p.nextToCheck < count {
                        defer { p.nextToCheck += 1 }
                        return .check(p.nextToCheck)
                    }
                    return p.nextSlice == slices ? .done : .wait
                }
                switch step {
                case .check(let index):
                    let item = check(index)
                    progress.withLock {
                        $0.checked[index] = item
                        $0.uncheckedInSlice[sliceOf[index]] -= 1
                    }
                case .write(let k, let items):
                    let r = range(of: k)
                    let written = write(r, items)
                    answers.withLock { for (offset, answer) in written.enumerated() { $0[r.lowerBound + offset] = answer } }
                    progress.withLock {
                        $0.writing = false
                        $0.nextSlice += 1
                    }
                case .wait:
                    usleep(50)
                case .done:
                    return
                }
            }
        }
        return answers.withLock { $0.map { $0! } }
    }

    /// EIS per write transaction in `registerEISBatch` (measured best among 50, 100, 200, 250 in bench smsr).
    static let registrationSlice = 100

    /// The write slices of a batch: `registrationSlice` EIS each, the last one what remains. (Halving
    /// the last slices to shorten the final write, which no check overlaps, was measured slower: each
    /// commit rewrites the index pages it touched.)
    static func registrationSlices(count: Int) -> [Range<Int>] {
        stride(from: 0, to: count, by: registrationSlice).map { $0..<min(count, $0 + registrationSlice) }
    }

    /// The ISD-R key values of `eis`, sealed, and the EIS without them (key sets keep version, type
    /// and counter; key values never reach the EIS document).
    func importISDRKeys(_ eis: EIS) throws(Refusal) -> ([SealedKey], EIS) {
        var sealed: [SealedKey] = []
        var stripped = eis
        guard eis.isdR.keysets.contains(where: { $0.type == .scp80 && !$0.items.isEmpty }) else {
            throw Refusal(.isdr, .mandatoryElementMissing, "the ISD-R has no SCP80 key set")
        }
        // One draw of the random generator for all the IVs.
        let keyCount = eis.isdR.keysets.reduce(0) { $0 + $1.items.count { if case .key = $0 { true } else { false } } }
        let ivs = SecureRandom.bytes(16 * keyCount)
        for keyset in eis.isdR.keysets {
            for item in keyset.items {
                guard case .key(let key) = item else { continue }
                guard configuration.acceptClearISDRKeys else {
                    throw Refusal(.isdr, .unsupported, "ISD-R keys in clear are accepted only from test fleets (acceptClearISDRKeys)")
                }
                guard let component = key.components.first else { throw Refusal(.isdr, .invalid, "a key without component") }
                do {
                    let secret = SecureBytes(component.value.bytes)
                    if component.type == 0x88, !key.kcv.bytes.isEmpty {
                        let kcv = try KeyCheckValue.aes(secret)
                        guard ConstantTime.equal(Array(kcv.prefix(key.kcv.count)), key.kcv.bytes) else {
                            throw Refusal(.isdr, .verificationFailed, "the KCV of key \(keyset.version)/\(key.index) does not match")
                        }
                    }
                    sealed.append(SealedKey(keysetVersion: keyset.version, keyIndex: key.index, keyType: component.type, kcv: key.kcv.bytes,
                                            sealed: try sealer.seal(secret, context: KeySealer.context(eid: eis.eid, keysetVersion: keyset.version,
                                                                                                       keyIndex: key.index),
                                                                    iv: Array(ivs[16 * sealed.count..<16 * (sealed.count + 1)]))))
                } catch let refusal as Refusal {
                    throw refusal
                } catch {
                    throw Refusal(.isdr, .invalid, "key \(keyset.version)/\(key.index): \(error)")
                }
            }
        }
        stripped.isdR.keysets = eis.isdR.keysets.map { keyset in
            var copy = keyset
            copy.items = keyset.items.filter { if case .key = $0 { false } else { true } }
            return copy
        }
        return (sealed, stripped)
    }

    public func updateEISAdditionalProperties(_ request: ES1.UpdateEISAdditionalPropertiesRequest, context: RequestContext)
        -> ES1.UpdateEISAdditionalPropertiesResponse
    {
        serve(request, context: context, roles: [.eum], failure: { ES1.UpdateEISAdditionalPropertiesResponse(functionExecutionStatus: $0) }) { call in
            let stored = try requireEIS(request.eid)
            guard stored.eis.eumSignedInfo.eumID == call.caller.oid else {
                throw Refusal(.functionRequester, .notAllowed, "only the eUICC's EUM may update its properties", identifier: call.caller.oid.text)
            }
            let keys = request.additionalProperties.properties.map(\.key)
            guard Set(keys).count == keys.count else { throw Refusal(.protocolFormat, .invalid, "a property key appears twice") }
            return try call.commit { tx in
                try requireNoSMSRChange(request.eid, in: tx)
                var current = try requireEIS(request.eid, in: tx)
                current.eis.additionalProperties = request.additionalProperties.properties
                try tx.updateEIS(current.eis, now: call.now)
                try tx.appendAudit(AuditTrailRecord(eid: request.eid, smsrID: configuration.smsrID, operationDate: call.now,
                                                    operationType: AuditOperation.updateEIS, requesterID: call.caller.oid,
                                                    operationExecutionStatus: .success), now: call.now)
                return ES1.UpdateEISAdditionalPropertiesResponse(functionExecutionStatus: .success)
            }
        }
    }
}
