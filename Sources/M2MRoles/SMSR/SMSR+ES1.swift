// ES1 (EUM → SM-SR): RegisterEIS and UpdateEISAdditionalProperties (spec §5.2; docs/smsr.md).

public import M2MCore
import M2MCrypto
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
            guard eis.eumSignedInfo.eumID == call.caller.oid else {
                throw Refusal(.functionRequester, .notAllowed, "the EIS names EUM \(eis.eumSignedInfo.eumID.text), not the caller", identifier: call.caller.oid.text)
            }
            guard eis.smsrID == configuration.smsrID else {
                throw Refusal(.smsr, .invalidDestination, "the EIS is for SM-SR \(eis.smsrID.text)", identifier: eis.smsrID.text)
            }
            guard let eumCertificate = trust.eums[eis.eumSignedInfo.eumID] else {
                throw Refusal(.eumCertificate, .unknown, "no certificate of EUM \(eis.eumSignedInfo.eumID.text) is known", identifier: eis.eumSignedInfo.eumID.text)
            }
            // CI → EUM → CERT.ECASD.ECKA, then the EUM's signature over the EIS.
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
                _ = try EUICCChain.verify(ecasdCertificate: ecasd, eum: eumCertificate, ci: trust.ci, at: call.now)
            } catch {
                throw Refusal(.euiccCertificate, .verificationFailed, "certificate chain: \(error)", identifier: eis.eid.text)
            }
            do {
                try EISSignature.verify(eis, eumKey: eumCertificate.publicKey)
            } catch {
                throw Refusal(.eumCertificate, .verificationFailed, "EIS signature: \(error)", identifier: eis.eid.text)
            }
            // The ISD-R keys: sealed apart, stripped from the stored EIS.
            let (keys, stripped) = try importISDRKeys(eis)
            let iccids = eis.profiles.map(\.iccid)
            return try call.commit { tx in
                guard try tx.eis(eis.eid) == nil else { throw Refusal(.eid, .alreadyInUse, "the eUICC is already registered", identifier: eis.eid.text) }
                for iccid in iccids where try tx.profileLocation(iccid) != nil {
                    throw Refusal(.profileICCID, .alreadyInUse, "the ICCID is registered on another eUICC", identifier: iccid.text)
                }
                let counter = eis.isdR.keysets.first { $0.type == .scp80 }?.counter ?? 0
                try tx.insertEIS(stripped, keys: keys, scp80Counter: UInt64(max(0, counter)), now: call.now)
                try tx.appendAudit(AuditTrailRecord(eid: eis.eid, smsrID: configuration.smsrID, operationDate: call.now,
                                                    operationType: AuditOperation.registerEIS, requesterID: call.caller.oid,
                                                    operationExecutionStatus: .success), now: call.now)
                return ES1.RegisterEISResponse(functionExecutionStatus: .success)
            }
        }
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
                                            sealed: try sealer.seal(secret)))
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
            var stored = try requireEIS(request.eid)
            guard stored.eis.eumSignedInfo.eumID == call.caller.oid else {
                throw Refusal(.functionRequester, .notAllowed, "only the eUICC's EUM may update its properties", identifier: call.caller.oid.text)
            }
            let keys = request.additionalProperties.properties.map(\.key)
            guard Set(keys).count == keys.count else { throw Refusal(.protocolFormat, .invalid, "a property key appears twice") }
            stored.eis.additionalProperties = request.additionalProperties.properties
            let eis = stored.eis
            return try call.commit { tx in
                try tx.updateEIS(eis, now: call.now)
                try tx.appendAudit(AuditTrailRecord(eid: eis.eid, smsrID: configuration.smsrID, operationDate: call.now,
                                                    operationType: AuditOperation.updateEIS, requesterID: call.caller.oid,
                                                    operationExecutionStatus: .success), now: call.now)
                return ES1.UpdateEISAdditionalPropertiesResponse(functionExecutionStatus: .success)
            }
        }
    }
}
