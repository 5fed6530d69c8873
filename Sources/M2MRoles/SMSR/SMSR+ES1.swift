// ES1 (EUM → SM-SR): RegisterEIS and UpdateEISAdditionalProperties (spec §5.2; docs/smsr.md).

public import M2MCore
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
            guard let eumCertificate = trust.eums[eis.eumSignedInfo.eumID] else {
                throw Refusal(.eumCertificate, .unknown, "no certificate of EUM \(eis.eumSignedInfo.eumID.text) is known", identifier: eis.eumSignedInfo.eumID.text)
            }
            do {
                try eumCertificate.verify(root: trust.ci, at: call.now)
            } catch {
                throw Refusal(.eumCertificate, .verificationFailed, "EUM certificate: \(error)", identifier: eis.eumSignedInfo.eumID.text)
            }
            let (keys, stripped) = try verifyRegistration(eis, caller: call.caller.oid, eumCertificate: eumCertificate)
            return try call.commit { tx in
                try insertRegistration(eis, stripped: stripped, keys: keys, caller: call.caller.oid, now: call.now, in: tx)
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
        return try importISDRKeys(eis)
    }

    func insertRegistration(_ eis: EIS, stripped: EIS, keys: [SealedKey], caller: OID, now: Timestamp, in tx: any SMSRWriting) throws {
        guard try tx.eis(eis.eid) == nil else { throw Refusal(.eid, .alreadyInUse, "the eUICC is already registered", identifier: eis.eid.text) }
        for iccid in eis.profiles.map(\.iccid) where try tx.profileLocation(iccid) != nil {
            throw Refusal(.profileICCID, .alreadyInUse, "the ICCID is registered on another eUICC", identifier: iccid.text)
        }
        let counter = eis.isdR.keysets.first { $0.type == .scp80 }?.counter ?? 0
        try tx.insertEIS(stripped, keys: keys, scp80Counter: UInt64(max(0, counter)), now: now)
        try tx.appendAudit(AuditTrailRecord(eid: eis.eid, smsrID: configuration.smsrID, operationDate: now, operationType: AuditOperation.registerEIS,
                                            requesterID: caller, operationExecutionStatus: .success), now: now)
    }

    /// Registers many EIS at once (an EUM's production batch): each EUM certificate is verified
    /// against the CI once, the per-EIS checks (CERT.ECASD.ECKA, EIS signature, key sealing) run on
    /// every core, and the batch is written in one transaction — each EIS with its function-call
    /// row, audit row and response, so a retried EIS answers as the first time. Answers in order.
    public func registerEISBatch(_ requests: [ES1.RegisterEISRequest], context: RequestContext) -> [ES1.RegisterEISResponse] {
        let now = clock.now()
        func failed(_ status: FunctionExecutionStatus) -> ES1.RegisterEISResponse {
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
        // The per-EIS checks (and each request's digest) on every core, then one write transaction.
        // (Verifying chunk k + 1 while writing chunk k was measured slower on 2 cores: three busy
        // threads on two cores; `chunk` stays for machines with more.)
        typealias Checked = (result: Result<([SealedKey], EIS), Refusal>, digest: [UInt8])
        let verifiedEUMs = eums
        let callerOID = party.oid
        @Sendable func check(_ range: Range<Int>) -> [Checked] {
            let box = Mutex([Checked?](repeating: nil, count: range.count))
            DispatchQueue.concurrentPerform(iterations: range.count) { offset in
                let request = requests[range.lowerBound + offset]
                let eis = request.eis
                let result: Result<([SealedKey], EIS), Refusal>
                switch verifiedEUMs[eis.eumSignedInfo.eumID] {
                case .success(let certificate)?:
                    do throws(Refusal) { result = .success(try verifyRegistration(eis, caller: callerOID, eumCertificate: certificate)) } catch { result = .failure(error) }
                case .failure(let refusal)?: result = .failure(refusal)
                case nil: result = .failure(Refusal(.eumCertificate, .unknown, "no EUM", identifier: nil))
                }
                let digest = SHA256.hash(MessageBytes.encode(request))
                box.withLock { $0[offset] = (result, digest) }
            }
            return box.withLock { $0.map { $0! } }
        }
        let chunk = ProcessInfo.processInfo.activeProcessorCount > 2 ? 250 : max(1, requests.count)
        let ranges = stride(from: 0, to: requests.count, by: chunk).map { $0..<min($0 + chunk, requests.count) }
        var responses: [ES1.RegisterEISResponse] = []
        responses.reserveCapacity(requests.count)
        var current = ranges.isEmpty ? [] : check(ranges[0])
        for (k, range) in ranges.enumerated() {
            let next = Mutex<[Checked]?>(nil)
            let group = DispatchGroup()
            if k + 1 < ranges.count {
                let following = ranges[k + 1]
                group.enter()
                DispatchQueue.global().async {
                    let checked = check(following)
                    next.withLock { $0 = checked }
                    group.leave()
                }
            }
            let written = current
            do {
                responses += try store.write { tx throws -> [ES1.RegisterEISResponse] in
                    var answers: [ES1.RegisterEISResponse] = []
                    for (offset, index) in range.enumerated() {
                        let request = requests[index]
                        let (result, digest) = written[offset]
                        if let seen = try tx.functionCall(caller: callerOID, identifier: request.functionCallIdentifier) {
                            if seen.requestDigest == digest, let bytes = seen.response, let response = try? MessageBytes.decode(ES1.RegisterEISResponse.self, bytes) {
                                answers.append(response)
                            } else {
                                answers.append(failed(.failed(.function, .alreadyInUse, identifier: request.functionCallIdentifier,
                                                              message: "FunctionCallIdentifier used for another request")))
                            }
                            continue
                        }
                        let id = try tx.beginFunctionCall(caller: callerOID, identifier: request.functionCallIdentifier, function: "ES1.RegisterEIS",
                                                          digest: digest, now: now)
                        var response: ES1.RegisterEISResponse
                        switch result {
                        case .success(let (keys, stripped)):
                            do {
                                try insertRegistration(request.eis, stripped: stripped, keys: keys, caller: callerOID, now: now, in: tx)
                                response = ES1.RegisterEISResponse(processingStart: now, processingEnd: clock.now(), functionExecutionStatus: .success)
                            } catch let refusal as Refusal {
                                response = failed(refusal.status)
                            }
                        case .failure(let refusal): response = failed(refusal.status)
                        }
                        try tx.completeFunctionCall(id, response: MessageBytes.encode(response), now: clock.now())
                        answers.append(response)
                    }
                    return answers
                }
            } catch {
                responses += range.map { _ in failed(Refusal.storage(error).status) }
            }
            group.wait()
            current = next.withLock { $0 } ?? []
        }
        return responses
    }

    /// The ISD-R key values of `eis`, sealed, and the EIS without them (key sets keep version, type
    /// and counter; key values never reach the EIS document).
    func importISDRKeys(_ eis: EIS) throws(Refusal) -> ([SealedKey], EIS) {
        var sealed: [SealedKey] = []
        var stripped = eis
        guard eis.isdR.keysets.contains(where: { $0.type == .scp80 && !$0.items.isEmpty }) else {
            throw Refusal(.isdr, .mandatoryElementMissing, "the ISD-R has no SCP80 key set")
        }
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
                                                                                                       keyIndex: key.index))))
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
                guard var current = try tx.eis(request.eid) else { throw Refusal(.eid, .unknown, "unknown eUICC", identifier: request.eid.text) }
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
