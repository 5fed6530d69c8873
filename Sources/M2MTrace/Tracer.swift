// The tracer: reads a capture in order, pairs commands with their answers, decodes every layer and
// checks what the keys allow (docs/trace.md). It is an observer: it never answers, it recomputes.
//
//   apdu / script   command APDUs named (INSTALL, STORE DATA with its DGIs, DELETE, GET STATUS …) and
//                   paired in order with the response APDUs; status words explained; a refusal is a
//                   failed check ("the card accepted it").
//   scp80           SPI, KIc, KID, TAR, counter; with the key sets: deciphered, CC checked, counters
//                   rising; the secured data decoded as a script (or an MO notification); PoRs opened
//                   as the command's SPI asked.
//   scp81-http      the admin protocol's messages: X-Admin headers, the target application, the script
//                   in the body.
//   scp03t          INITIALIZE UPDATE / EXTERNAL AUTHENTICATE checked (pseudo-random challenge, card
//                   and host cryptograms, C-MAC), every segment's C-MAC checked and decrypted, the
//                   package reassembled and listed, the final answer's R-MAC checked and decoded.
//
// Key establishment (STORE DATA 3A01/3A02 to an ISD-P): CERT.DP checked against PK.CI; the 3A02
// signature against CERT.DP's key and the card's random challenge; with eSK.DP.ECKA and PK.ECASD.ECKA
// the receipt is recomputed and compared, and the new key set opens the SCP03t session that follows.

import M2MCore
import M2MCrypto
import M2MWire

public struct Tracer: Sendable {
    public let keyring: TraceKeyring

    /// A command waiting for its answer.
    struct Pending: Sendable {
        var title: String
        var apdu: CommandAPDU
        var target: String
        /// The first DGI of a STORE DATA.
        var dgi: UInt16?
        /// The command script it came in (0: a bare APDU).
        var script: Int = 0
    }

    /// Command scripts seen so far (pending commands remember theirs).
    var scriptNumber = 0

    var entries: [TraceEntry] = []
    var exchange: TraceExchange?
    var exchangeIndex = 0
    var pending: [Pending] = []
    /// The ISD-P named by INSTALL [for personalization] (STORE DATA goes there).
    var personalizationTarget: AID?
    /// The application the current script is for (SCP81 X-Admin-Targeted-Application, SCP80 TAR).
    var scriptTarget: String = "ISD-R"
    var scriptTargetAID: AID?

    // Key establishment.
    var dpCertificateKey: ECPublicKey?
    var randomChallenge: [UInt8]?
    var keyAgreement: (crt: TLV, signedBy: Bool)?
    var derivedKeys: SCP03Keys?

    // SCP80: command packets waiting for their PoR, per direction of the command.
    var scp80ToCard: [SCP80CommandPacket] = []
    var scp80FromCard: [SCP80CommandPacket] = []
    var lastCounter: [UInt8: SCP80Counter] = [:]
    /// The counters of the commands waiting for their PoR (by position in scp80ToCard).
    var scp80ToCardCounters: [SCP80Counter?] = []

    // SCP03t.
    var observer: SCP03tObserver?
    var observerAID: AID?
    var scp03tPending: [(tlv: TLV, origin: Origin?)] = []
    var segments = 0
    var package: [UInt8] = []
    var packageAnswered = false

    public init(keyring: TraceKeyring) {
        self.keyring = keyring
    }

    /// Traces a whole capture: each card's exchanges with a state of their own (commands paired with
    /// their answers per card), the entries in capture order.
    public static func run(_ exchanges: [TraceExchange], keyring: TraceKeyring) -> TraceReport {
        var tracers: [EID?: Tracer] = [:]
        var order: [EID?] = []
        for (index, exchange) in exchanges.enumerated() {
            if tracers[exchange.eid] == nil {
                tracers[exchange.eid] = Tracer(keyring: keyring)
                order.append(exchange.eid)
            }
            tracers[exchange.eid]!.process(exchange, index: index + 1)
        }
        var merged = Tracer(keyring: keyring)
        // Each card's entries; the package of the first card (in capture order) that downloaded one.
        for key in order {
            guard let tracer = tracers[key] else { continue }
            merged.entries += tracer.entries
            if merged.package.isEmpty { merged.package = tracer.package }
        }
        return merged.report(exchangeCount: exchanges.count)
    }

    // MARK: - Entries

    /// Where an entry comes from: the exchange that carried the bytes checked.
    struct Origin: Sendable {
        var exchange: Int
        var line: Int
        var direction: TraceDirection
        var layer: TraceLayer
        var note: String?
    }

    var origin: Origin? {
        exchange.map { Origin(exchange: exchangeIndex, line: $0.line, direction: $0.direction, layer: $0.layer, note: $0.note) }
    }

    /// An entry for the current exchange, or for `origin` (a command checked when its answer came).
    /// The exchanges that already have an entry (their note is printed once).
    var noted: Set<Int> = []

    mutating func emit(_ title: String, details: [String] = [], checks: [TraceCheck] = [], origin given: Origin? = nil) {
        guard let origin = given ?? origin else { return }
        let first = noted.insert(origin.exchange).inserted
        entries.append(TraceEntry(exchange: origin.exchange, line: origin.line, direction: origin.direction, layer: origin.layer,
                                  title: title, details: details, checks: checks, note: first ? origin.note : nil))
    }

    /// The report so far.
    public func report(exchangeCount: Int) -> TraceReport {
        // In capture order (a command checked when its answer came is listed under the command's exchange).
        let entries = self.entries.enumerated().sorted { ($0.element.exchange, $0.offset) < ($1.element.exchange, $1.offset) }.map(\.element)
        var summary = TraceSummary(exchanges: exchangeCount, entries: entries.count, passed: 0, failed: 0, skipped: 0, firstFailure: nil)
        for entry in entries {
            for check in entry.checks {
                switch check.outcome {
                case .passed: summary.passed += 1
                case .skipped: summary.skipped += 1
                case .failed:
                    summary.failed += 1
                    if summary.firstFailure == nil {
                        summary.firstFailure = .init(exchange: entry.exchange, line: entry.line, check: check.name, reason: check.reason ?? "")
                    }
                }
            }
        }
        var elements: [TraceProfileElement] = []
        var header: [String] = []
        var profile: [UInt8]?
        if !package.isEmpty {
            profile = package
            if let parsed = try? ProfilePackage(der: package) {
                elements = parsed.elements.map {
                    TraceProfileElement(index: $0.index, type: $0.type.name, identification: $0.identification, size: $0.size)
                }
                let h = parsed.header
                header = ["header: version \(h.majorVersion).\(h.minorVersion), ICCID \(h.iccid.text)\(h.profileType.map { ", Profile Type \($0)" } ?? "")",
                          "mandated services: \(h.mandatoryServiceNames.isEmpty ? "none" : h.mandatoryServiceNames.joined(separator: ", "))"]
            }
        }
        return TraceReport(entries: entries, profileElements: elements, profileHeader: header, summary: summary, profilePackage: profile)
    }

    // MARK: - Exchanges

    /// Traces one exchange (`index`: its 1-based place in the capture; default: the next one).
    public mutating func process(_ exchange: TraceExchange, index: Int? = nil) {
        exchangeIndex = index ?? exchangeIndex + 1
        self.exchange = exchange
        let bytes = exchange.bytes
        if let target = exchange.target {
            scriptTarget = "ISD-P \(target.text)"
            scriptTargetAID = target
        } else if exchange.targetsISDR {
            scriptTarget = "ISD-R"
            scriptTargetAID = nil
        }
        switch (exchange.layer, exchange.direction) {
        case (.apdu, .toCard):
            guard let apdu = try? CommandAPDU(bytes: bytes) else { return malformed("not a command APDU") }
            if exchange.target == nil, !exchange.targetsISDR { scriptTarget = personalizationTarget.map { "ISD-P \($0.text)" } ?? "ISD-R" }
            command(apdu)
        case (.apdu, .fromCard):
            guard let response = try? ResponseAPDU(bytes: bytes) else { return malformed("not a response APDU (data and SW1 SW2)") }
            answer(response)
        case (.script, .toCard):
            commandScript(bytes)
        case (.script, .fromCard):
            responseScript(bytes)
        case (.scp80, _):
            scp80(bytes, direction: exchange.direction)
        case (.scp81HTTP, _):
            http(bytes, direction: exchange.direction)
        case (.scp03t, .toCard):
            if let elided = exchange.elided {
                elide(elided)
                return
            }
            guard let items = try? TLV.parseAll(bytes) else { return malformed("not a sequence of TLVs") }
            for item in items { scp03tCommand(item) }
        case (.scp03t, .fromCard):
            guard let items = try? TLV.parseAll(bytes) else { return malformed("not a sequence of TLVs") }
            for item in items { scp03tAnswer(item) }
        }
    }

    mutating func malformed(_ why: String) {
        emit("undecodable", details: ["\(exchange?.bytes.count ?? 0) bytes"], checks: [.failed("format", why)])
    }

    // MARK: - Scripts

    mutating func commandScript(_ bytes: [UInt8]) {
        guard let script = try? ExpandedCommandScript(bytes: bytes) else {
            // Not an expanded script: one bare C-APDU, as some logs show.
            if let apdu = try? CommandAPDU(bytes: bytes) {
                command(apdu)
                return
            }
            return malformed("neither an expanded command script (AA/AE) nor a C-APDU")
        }
        let coding = script.coding == .definite ? "AA, definite length" : "AE, indefinite length"
        personalizationTarget = nil  // INSTALL [for personalization] holds within its script
        scriptNumber &+= 1
        emit("command script (\(coding)), \(script.items.count) item(s) for \(scriptTarget)")
        inScript = true
        for item in script.items { commandItem(item) }
        inScript = false
    }

    /// Whether commands being read come from a command script.
    var inScript = false

    mutating func commandItem(_ item: TLV) {
        switch item.tag {
        case ExpandedCommandScript.commandTag:
            guard let apdu = try? CommandAPDU(bytes: item.value) else { return emit("C-APDU item", checks: [.failed("format", "the 22 item is not a C-APDU")]) }
            command(apdu)
        case 0x84, 0x85, 0x86:
            scp03tCommand(item)
        default:
            emit("item \(item.tag)", details: ["\(item.value.count) bytes"], checks: [.failed("format", "a command script holds 22 (C-APDU) or SCP03t (84/85/86) items")])
        }
    }

    mutating func responseScript(_ bytes: [UInt8]) {
        guard let script = try? ExpandedResponseScript(bytes: bytes) else {
            if let response = try? ResponseAPDU(bytes: bytes) {
                answer(response)
                return
            }
            return malformed("neither an expanded response script (AB/AF) nor an R-APDU")
        }
        let answeredScript = pending.first?.script ?? 0
        for item in script.items { responseItem(item) }
        // A card stops at the first failing command: the script's later commands were not executed.
        if answeredScript != 0 {
            let skipped = pending.filter { $0.script == answeredScript }
            if !skipped.isEmpty {
                pending.removeAll { $0.script == answeredScript }
                emit("\(skipped.count) command(s) of the script not executed", details: skipped.map { "\($0.title) → \($0.target)" })
            }
        }
    }

    mutating func responseItem(_ item: TLV) {
        switch item.tag {
        case ExpandedResponseScript.executedTag:
            let count = item.value.reduce(0) { $0 << 8 | Int($1) }
            emit("response script: \(count) command(s) executed")
        case ExpandedResponseScript.responseTag:
            guard let response = try? ResponseAPDU(bytes: item.value) else { return emit("R-APDU item", checks: [.failed("format", "the 23 item is not an R-APDU")]) }
            answer(response)
        case ExpandedResponseScript.badFormatTag:
            let reason = switch item.value.first {
            case 0x01?: "unknown tag"
            case 0x02?: "wrong length"
            case 0x03?: "length not found"
            default: "reason \(Hex.encode(item.value))"
            }
            let dropped = pending.count
            pending.removeAll()
            emit("bad format: the card executed nothing", details: dropped > 0 ? ["\(dropped) command(s) left unanswered"] : [],
                 checks: [.failed("the card accepted the script", "bad format (90): \(reason)")])
        case 0x84, 0x85, 0x86, 0x9F44, 0x9F45, 0x9F46:
            scp03tAnswer(item)
        default:
            emit("item \(item.tag)", details: ["\(item.value.count) bytes"], checks: [.failed("format", "unexpected item in a response script")])
        }
    }

    // MARK: - APDUs

    mutating func command(_ apdu: CommandAPDU) {
        let name = Vocabulary.command(apdu)
        var details = ["CLA \(Hex.encode([apdu.cla])) INS \(Hex.encode([apdu.ins])) P1 \(Hex.encode([apdu.p1])) P2 \(Hex.encode([apdu.p2])), \(apdu.data.count) data bytes"]
        var checks: [TraceCheck] = []
        var target = scriptTarget
        var firstDGI: UInt16?
        switch (apdu.ins, apdu.p1) {
        case (0xE6, 0x0C):
            personalizationTarget = nil
            let fields = Self.lvFields(apdu.data)
            if fields.count >= 3, let aid = try? AID(bytes: fields[2]) { details.append("new ISD-P \(aid.text)") }
            if fields.count >= 5, let items = try? TLV.parseAll(fields[4]), let ef = items.first(where: { $0.tag == 0xEF }),
               let quota = try? ef.child(0x83) {
                details.append("memory quota \(quota.value.reduce(0) { $0 << 8 | Int($1) }) bytes")
            }
        case (0xE6, 0x20):
            personalizationTarget = nil
            let fields = Self.lvFields(apdu.data)
            if fields.count >= 3, let aid = try? AID(bytes: fields[2]) {
                personalizationTarget = aid
                details.append("the following STORE DATA go to ISD-P \(aid.text)")
            } else {
                checks.append(.failed("format", "no ISD-P AID in INSTALL [for personalization]"))
            }
        case (0xE2, _):
            if let aid = personalizationTarget, scriptTarget == "ISD-R" { target = "ISD-P \(aid.text) (personalization)" }
            details.append("P1 \(Hex.encode([apdu.p1])): \(apdu.p1 & 0x80 != 0 ? "last block" : "more blocks follow"), block \(apdu.p2)")
            (firstDGI, details, checks) = storeData(apdu.data, details: details)
        case (0xE4, _):
            if let items = try? TLV.parseAll(apdu.data), let aid = items.first(where: { $0.tag == 0x4F }) {
                details.append("delete \((try? AID(bytes: aid.value))?.text ?? Hex.encode(aid.value))\(apdu.p2 & 0x80 != 0 ? " and related objects" : "")")
            }
        case (0xF2, _):
            details.append(apdu.p1 == 0x40 ? "applications and security domains" : "P1 \(Hex.encode([apdu.p1]))")
        case (0xCA, _):
            switch (apdu.p1, apdu.p2) {
            case (0x00, 0x5A): details.append("the EID")
            case (0xFF, 0x21): details.append("extended card resources")
            default: details.append("tag \(Hex.encode([apdu.p1, apdu.p2]))")
            }
        default:
            break
        }
        let title = "\(name) → \(target)\(firstDGI.map { ": DGI \(Hex.encode([UInt8($0 >> 8), UInt8($0 & 0xFF)])) \(Vocabulary.dgi($0))" } ?? "")"
        emit(title, details: details, checks: checks)
        pending.append(Pending(title: "\(name)\(firstDGI.map { " \(Hex.encode([UInt8($0 >> 8), UInt8($0 & 0xFF)]))" } ?? "")", apdu: apdu, target: target, dgi: firstDGI,
                               script: inScript ? scriptNumber : 0))
    }

    /// The LV fields of INSTALL data.
    static func lvFields(_ data: [UInt8]) -> [[UInt8]] {
        var fields: [[UInt8]] = []
        var index = 0
        while index < data.count {
            let length = Int(data[index])
            guard index + 1 + length <= data.count else { break }
            fields.append(Array(data[(index + 1)..<(index + 1 + length)]))
            index += 1 + length
        }
        return fields
    }

    mutating func storeData(_ data: [UInt8], details: [String]) -> (UInt16?, [String], [TraceCheck]) {
        var details = details
        var checks: [TraceCheck] = []
        var offset = 0
        guard let first = try? DGI.parse(data, offset: &offset) else {
            checks.append(.failed("format", "the data is not a DGI"))
            return (nil, details, checks)
        }
        details.append("DGI \(Hex.encode([UInt8(first.tag >> 8), UInt8(first.tag & 0xFF)])) (\(first.value.count) bytes): \(Vocabulary.dgi(first.tag))")
        switch first.tag {
        case 0x3A01:
            certificate(first.value, details: &details, checks: &checks)
        case 0x3A02:
            keyAgreement(data, dgiEnd: offset, crtBytes: first.value, details: &details, checks: &checks)
            return (first.tag, details, checks)
        case 0x3A03, 0x3A04, 0x3A05, 0x3A06:
            if let items = try? TLV.parseAll(first.value), let aid = items.first(where: { $0.tag == 0x4F }) {
                details.append("ISD-P \((try? AID(bytes: aid.value))?.text ?? Hex.encode(aid.value))")
            }
        case 0x3A08:
            if let items = try? TLV.parseAll(first.value), let sequence = items.first(where: { $0.tag == 0x4E }) {
                details.append("confirms notification \(sequence.value.reduce(0) { $0 << 8 | Int($1) })")
            }
        case 0x3A07:
            details.append("parameters \(Hex.encode(first.value))")
        default:
            break
        }
        while offset < data.count, let next = try? DGI.parse(data, offset: &offset) {
            details.append("DGI \(Hex.encode([UInt8(next.tag >> 8), UInt8(next.tag & 0xFF)])) (\(next.value.count) bytes): \(Vocabulary.dgi(next.tag))")
        }
        return (first.tag, details, checks)
    }

    /// 3A01: CERT.DP.ECDSA (or CERT.SR.ECDSA), checked against PK.CI.
    mutating func certificate(_ value: [UInt8], details: inout [String], checks: inout [TraceCheck]) {
        dpCertificateKey = nil
        randomChallenge = nil
        keyAgreement = nil
        guard let certificate = try? GPCertificate(encoded: value) else {
            checks.append(.failed("CERT.DP.ECDSA", "not a GP certificate (7F21 …)"))
            return
        }
        details.append("certificate: serial \(Hex.encode(certificate.serialNumber)), CA \(Hex.encode(certificate.caIdentifier)), subject \(Hex.encode(certificate.subjectIdentifier)), role \(certificate.role.map { "\($0)" } ?? "?"), expires \(certificate.expirationText)")
        if let key = try? certificate.publicKey(defaultCurve: keyring.curve) {
            dpCertificateKey = key
            details.append("public key on \(key.curve)")
        } else {
            checks.append(.failed("CERT.DP.ECDSA", "its public key is not a point of \(keyring.curve)"))
        }
        if let ci = keyring.ciPublicKey {
            do throws(CryptoError) {
                try GPCertificateVerifier.verify(certificate, issuer: ci)
                checks.append(.passed("CERT.DP.ECDSA signed by the CI"))
            } catch {
                checks.append(.failed("CERT.DP.ECDSA signed by the CI", "the signature does not verify with PK.CI"))
            }
        } else {
            checks.append(.skipped("CERT.DP.ECDSA signed by the CI", "no pk_ci in the keyring"))
        }
    }

    /// 3A02 { A6 CRT } ‖ 7F49 ePK ‖ 5F37 signature.
    mutating func keyAgreement(_ data: [UInt8], dgiEnd: Int, crtBytes: [UInt8], details: inout [String], checks: inout [TraceCheck]) {
        var offset = dgiEnd
        guard let crt = try? TLV.parseOne(crtBytes), crt.tag == 0xA6, let parameters = try? KeyEstablishmentParameters(crt: crt) else {
            checks.append(.failed("key agreement", "3A02 does not hold an A6 control reference template of scenario #3"))
            return
        }
        details.append("scenario #3, parameter \(Hex.encode([parameters.scenarioParameter])), key usage \(Hex.encode([parameters.keyUsage])), \(parameters.keyCount) key(s) of \(parameters.keyLength) bytes, new key set version \(Hex.encode([parameters.keyVersion]))")
        guard let ePK = try? TLV.parse(data, offset: &offset), ePK.tag == 0x7F49, let signature = try? TLV.parse(data, offset: &offset), signature.tag == 0x5F37,
            offset == data.count
        else {
            checks.append(.failed("key agreement", "3A02 is not followed by 7F49 <ePK.DP.ECKA> and 5F37 <signature>"))
            return
        }
        var point = ePK.value
        if point.first == 0xB0, let inner = try? TLV.parseAll(point), let b0 = inner.first(where: { $0.tag == 0xB0 }) { point = b0.value }
        details.append("ePK.DP.ECKA \(Hex.encode(Array(point.prefix(9))))…")
        keyAgreement = (crt, false)
        if let esk = keyring.ephemeralPrivateKey {
            if esk.publicKey.x962Representation == point {
                checks.append(.passed("ePK.DP.ECKA is eSK.DP.ECKA·G"))
            } else {
                checks.append(.failed("ePK.DP.ECKA is eSK.DP.ECKA·G", "the keyring's esk_dp_ecka is not the key of this ePK"))
            }
        }
        let dgiBytes = Array(data[0..<dgiEnd])
        if let key = dpCertificateKey, let challenge = randomChallenge {
            let signed = KeyEstablishmentObserver.signedData(dgi: dgiBytes, ephemeralKey: ePK, randomChallenge: challenge)
            if let value = try? ECDSASignature(rawRepresentation: signature.value, curve: key.curve), key.isValidSignature(value, for: signed) {
                checks.append(.passed("3A02 signed with CERT.DP's key over 3A02 ‖ ePK ‖ the card's challenge"))
                keyAgreement = (crt, true)
            } else {
                checks.append(.failed("3A02 signed with CERT.DP's key over 3A02 ‖ ePK ‖ the card's challenge", "the signature does not verify"))
            }
        } else {
            checks.append(.skipped("3A02 signature", dpCertificateKey == nil ? "no CERT.DP.ECDSA (3A01) in the capture" : "no random challenge (the 3A01 answer) in the capture"))
        }
    }

    mutating func answer(_ response: ResponseAPDU) {
        guard !pending.isEmpty else {
            emit("R-APDU \(response.sw) (\(Vocabulary.statusWord(response.sw))) without a command in the capture", details: response.data.isEmpty ? [] : ["data \(Hex.encode(response.data))"])
            return
        }
        let command = pending.removeFirst()
        var details: [String] = []
        var checks: [TraceCheck] = []
        let accepted = response.sw.isSuccessOrWarning
        if accepted {
            checks.append(.passed("the card accepted it", "SW \(response.sw) \(Vocabulary.statusWord(response.sw))"))
        } else if command.apdu.ins == 0xF2, response.sw == .referencedDataNotFound {
            // GET STATUS finding nothing is an answer, not a refusal (the SM-SR asks it before CreateISDP).
            checks.append(.passed("the card answered", "6A88: no application matches the search criteria"))
        } else {
            checks.append(.failed("the card accepted it", "SW \(response.sw): \(Vocabulary.statusWord(response.sw))"))
        }
        switch (command.apdu.ins, command.dgi) {
        case (0xE2, 0x3A01?) where accepted:
            if let tlv = try? TLV.parseOne(response.data), tlv.tag == 0x85 {
                randomChallenge = tlv.value
                details.append("random challenge \(Hex.encode(tlv.value))")
            } else {
                checks.append(.failed("key establishment", "the answer to 3A01 is not 85 <random challenge>"))
            }
        case (0xE2, 0x3A02?) where accepted:
            receipt(response.data, details: &details, checks: &checks)
        case (0xF2, _) where accepted:
            for item in (try? TLV.parseAll(response.data)) ?? [] where item.tag == 0xE3 {
                let children = (try? TLV.parseAll(item.value)) ?? []
                let aid = children.first { $0.tag == 0x4F }.flatMap { try? AID(bytes: $0.value) }?.text ?? "?"
                let state = children.first { $0.tag == 0x9F70 }?.value.first.map(Vocabulary.lifeCycle) ?? "?"
                details.append("\(aid): \(state)")
            }
        case (0xCA, _) where accepted:
            if let tlv = try? TLV.parseOne(response.data), tlv.tag == 0x5A, let eid = try? EID(text: Hex.encode(tlv.value)) { details.append("EID \(eid.text)") }
        case (0xE2, 0x3A08?) where accepted:
            if !response.data.isEmpty { details.append("follow-up data \(Hex.encode(response.data))") }
        default:
            if !response.data.isEmpty { details.append("data \(Hex.encode(response.data))") }
        }
        emit("answer to \(command.title) → \(command.target): \(response.sw) \(Vocabulary.statusWord(response.sw))", details: details, checks: checks)
    }

    /// The answer to 3A02: [85 DR] 86 receipt, recomputed with eSK.DP.ECKA and PK.ECASD.ECKA.
    mutating func receipt(_ data: [UInt8], details: inout [String], checks: inout [TraceCheck]) {
        guard let items = try? TLV.parseAll(data), let receipt = items.first(where: { $0.tag == 0x86 })?.value else {
            checks.append(.failed("key establishment receipt", "the answer to 3A02 is not [85 DR] 86 <receipt>"))
            return
        }
        let dr = items.first { $0.tag == 0x85 }?.value
        details.append("receipt \(Hex.encode(receipt))\(dr.map { ", derivation random \(Hex.encode($0))" } ?? "")")
        guard let (crt, _) = keyAgreement else {
            checks.append(.skipped("receipt", "no 3A02 command in the capture"))
            return
        }
        guard let esk = keyring.ephemeralPrivateKey, let ecasd = keyring.ecasdPublicKey else {
            checks.append(.skipped("receipt", "recomputing it needs esk_dp_ecka and pk_ecasd_ecka in the keyring"))
            return
        }
        do throws(CryptoError) {
            let shared = try esk.sharedSecret(with: ecasd)
            let (expected, keys) = try KeyEstablishmentObserver.expected(sharedSecret: shared, crt: crt, derivationRandom: dr)
            if ConstantTime.equal(expected, receipt) {
                checks.append(.passed("receipt", "equal to the one recomputed from eSK.DP.ECKA and PK.ECASD.ECKA"))
                derivedKeys = keys
                details.append("new ISD-P key set \(Hex.encode([keys.keyVersion])) derived (used for the SCP03t session when the keyring has none)")
            } else {
                checks.append(.failed("receipt", "the card's receipt differs from the recomputed \(Hex.encode(expected)): another ePK, PK.ECASD or CRT"))
            }
        } catch {
            checks.append(.failed("receipt", "cannot recompute: \(error)"))
        }
    }

    // MARK: - SCP80

    mutating func scp80(_ bytes: [UInt8], direction: TraceDirection) {
        let hasCommandHeader = bytes.starts(with: SCP80UserDataHeader.command)
        let hasResponseHeader = bytes.starts(with: SCP80UserDataHeader.response)
        let isCommand = hasCommandHeader || (!hasResponseHeader && direction == .toCard)
        if isCommand {
            let parsed: SCP80CommandPacket?
            if hasCommandHeader { parsed = try? SCP80CommandPacket(userData: bytes) } else { parsed = try? SCP80CommandPacket(bytes: bytes) }
            guard let packet = parsed else { return malformed("not an SCP80 command packet (CPL, CHL, SPI, KIc, KID, TAR …)") }
            scp80Command(packet, direction: direction)
        } else {
            let userData = hasResponseHeader ? bytes : SCP80UserDataHeader.response + bytes
            guard let packet = try? SCP80ResponsePacket(userData: userData) else { return malformed("not an SCP80 response packet (PoR)") }
            scp80PoR(packet, direction: direction)
        }
    }

    static func describe(_ spi: SCP80SPI) -> String {
        let counter = switch spi.counter {
        case .none: "no counter"
        case .noReplayCheck: "counter, no replay check"
        case .higher: "counter must be higher"
        case .exactlyPlusOne: "counter must be +1"
        }
        let integrity = switch spi.integrity {
        case .none: "no integrity"
        case .redundancyCheck: "redundancy check"
        case .cryptographicChecksum: "CC"
        case .digitalSignature: "digital signature"
        }
        let por = switch spi.por {
        case .none: "no PoR"
        case .required: "PoR required"
        case .onErrorOnly: "PoR on error only"
        case .reserved: "PoR reserved (11)"
        }
        return "SPI \(spi): \(counter), \(spi.ciphered ? "ciphered" : "not ciphered"), \(integrity); \(por)\(spi.por == .none ? "" : ", PoR \(spi.porIntegrity == .cryptographicChecksum ? "with CC" : "without CC")\(spi.porCiphered ? ", ciphered" : "")")"
    }

    static func describe(_ identifier: SCP80KeyIdentifier, cipher: Bool) -> String {
        let algorithm = identifier.isImplicit ? "implicit" : identifier.algorithm.map { "\($0)" } ?? "algorithm \(identifier.algorithmCode)"
        return "\(cipher ? "KIc" : "KID") \(identifier): key set \(identifier.keyVersion), \(algorithm)"
    }

    mutating func scp80Command(_ packet: SCP80CommandPacket, direction: TraceDirection) {
        var details = [Self.describe(packet.spi), Self.describe(packet.kic, cipher: true), Self.describe(packet.kid, cipher: false),
                       "TAR \(packet.tar)\(packet.tar == .isdR ? " (ISD-R)" : ""), \(packet.securedData.count) secured bytes"]
        var checks: [TraceCheck] = []
        let origin = direction == .toCard ? "command packet" : "MO packet from the card"
        let needed = SCP80Observer.neededKeyVersions(packet)
        var data: [UInt8]?
        var openedCounter: SCP80Counter?
        let missing = needed.filter { version in !keyring.scp80.contains { $0.keyVersion == version } }
        if packet.spi.integrity == .redundancyCheck || packet.spi.integrity == .digitalSignature {
            checks.append(.skipped("SCP80 integrity", "redundancy checks and digital signatures are not checked by this tracer"))
        } else if !missing.isEmpty {
            checks.append(.skipped("SCP80 deciphered and CC checked", "no key set \(missing.map(String.init).joined(separator: ", ")) in the keyring"))
            if !packet.spi.ciphered { data = try? SCP80CommandFields(plain: packet.securedData, checksumLength: packet.checksumLength).data }
        } else {
            do throws(CryptoError) {
                let opened = try SCP80Observer.openCommand(packet, keySets: keyring.scp80)
                details.append("counter \(opened.counter), \(opened.paddingCount) padding bytes")
                if opened.checksumChecked { checks.append(.passed("CC", opened.deciphered ? "deciphered with KIc, CC checked with KID" : "checked with KID")) }
                else if opened.deciphered { checks.append(.passed("deciphered with KIc")) }
                // Counters rise per key set (what the receiver enforces).
                let version = packet.spi.integrity == .cryptographicChecksum || !packet.spi.ciphered ? packet.kid.keyVersion : packet.kic.keyVersion
                if packet.spi.counter == .higher || packet.spi.counter == .exactlyPlusOne, direction == .toCard {
                    // Against the last packet the card accepted (a PoR 00 moved it; without PoRs, the last one sent).
                    if let last = lastCounter[version] {
                        let ok = packet.spi.counter == .higher ? opened.counter > last : opened.counter.value == last.value + 1
                        checks.append(ok ? .passed("counter", "\(opened.counter) after \(last)")
                                         : .failed("counter", "\(opened.counter) after \(last): the card answers 02 (counter low) or 03 (high)"))
                    }
                    if packet.spi.por != .required { lastCounter[version] = opened.counter }
                }
                openedCounter = opened.counter
                data = opened.data
            } catch {
                let name = error.code == .invalidMAC ? "CC" : "SCP80 deciphered and CC checked"
                checks.append(.failed(name, error.detail))
            }
        }
        emit("SCP80 \(origin) → TAR \(packet.tar)", details: details, checks: checks)
        if direction == .toCard {
            scp80ToCard.append(packet)
            scp80ToCardCounters.append(openedCounter)
        } else {
            scp80FromCard.append(packet)
        }
        guard let data, !data.isEmpty else { return }
        if direction == .fromCard {
            notification(data)
            return
        }
        scriptTarget = packet.tar == .isdR ? "ISD-R" : "TAR \(packet.tar)"
        if data.first == ExpandedCommandScript.definiteTag || data.first == ExpandedCommandScript.indefiniteTag {
            commandScript(data)
        } else if let apdu = try? CommandAPDU(bytes: data) {
            command(apdu)
        } else {
            emit("secured data", details: [Hex.encode(data)], checks: [.failed("format", "neither an expanded script nor a C-APDU")])
        }
    }

    /// An MO default notification: E1 { 4C EID, 4D type, 4E sequence, 4F AID, 14 IMEI }.
    mutating func notification(_ data: [UInt8]) {
        guard let tlv = try? TLV.parseOne(data), tlv.tag == 0xE1, let items = try? TLV.parseAll(tlv.value) else {
            emit("MO data", details: [Hex.encode(data)], checks: [.failed("format", "not an E1 default notification")])
            return
        }
        var details: [String] = []
        for item in items {
            switch item.tag {
            case 0x4C: details.append("EID \((try? EID(text: Hex.encode(item.value)))?.text ?? Hex.encode(item.value))")
            case 0x4D: details.append("type \(Hex.encode(item.value)): \(item.value.first.map(Vocabulary.notificationType) ?? "?")")
            case 0x4E: details.append("sequence number \(item.value.reduce(0) { $0 << 8 | Int($1) })")
            case 0x4F: details.append("ISD-P \((try? AID(bytes: item.value))?.text ?? Hex.encode(item.value))")
            case 0x14: details.append("IMEI \(Hex.encode(item.value))")
            default: details.append("\(item.tag): \(Hex.encode(item.value))")
            }
        }
        emit("default notification", details: details)
    }

    mutating func scp80PoR(_ packet: SCP80ResponsePacket, direction: TraceDirection) {
        var details = ["TAR \(packet.tar), RHL \(packet.headerLength), \(packet.securedData.count) secured bytes"]
        var checks: [TraceCheck] = []
        // A PoR from the card answers a command to it; one to the card answers an MO packet.
        guard let first = direction == .fromCard ? scp80ToCard.firstIndex(where: { $0.tar == packet.tar }) : scp80FromCard.firstIndex(where: { $0.tar == packet.tar })
        else {
            if let fields = try? packet.plainFields() { details.append("status \(fields.status) (unsecured reading)") }
            emit("SCP80 PoR without its command in the capture", details: details, checks: [.skipped("PoR", "its command packet is not in the capture")])
            return
        }
        var index = first
        // Commands that got no PoR (a timeout the capture notes) would pair with the next PoR: when the
        // PoR opens and its counter is a later command's, the earlier ones are left unanswered.
        if direction == .fromCard, let opened = try? SCP80Observer.openPoR(packet, command: scp80ToCard[index], keySets: keyring.scp80), opened.checksumChecked,
           let match = scp80ToCard.indices.first(where: { $0 > index && scp80ToCard[$0].tar == packet.tar && scp80ToCardCounters[$0] == opened.counter }),
           scp80ToCardCounters[index] != opened.counter {
            let orphans = scp80ToCard.indices.filter { $0 >= index && $0 < match && scp80ToCard[$0].tar == packet.tar }
            emit("\(orphans.count) command packet(s) to TAR \(packet.tar) without a PoR in the capture",
                 details: orphans.map { "counter \(scp80ToCardCounters[$0].map { "\($0)" } ?? "?")" })
            for orphan in orphans.reversed() {
                scp80ToCard.remove(at: orphan)
                scp80ToCardCounters.remove(at: orphan)
            }
            index = scp80ToCard.firstIndex { $0.tar == packet.tar } ?? index
        }
        let command = direction == .fromCard ? scp80ToCard.remove(at: index) : scp80FromCard.remove(at: index)
        let commandCounter = direction == .fromCard ? scp80ToCardCounters.remove(at: index) : nil
        var data: [UInt8]?
        do throws(CryptoError) {
            let opened = try SCP80Observer.openPoR(packet, command: command, keySets: keyring.scp80)
            let status = opened.status ?? .ok
            details.append("counter \(opened.counter), status \(status)")
            if opened.checksumChecked { checks.append(.passed("PoR CC", opened.deciphered ? "deciphered, CC checked" : "CC checked")) }
            else if command.spi.porIntegrity == .cryptographicChecksum { checks.append(.skipped("PoR CC", "an unsecured PoR reporting an error")) }
            checks.append(status == .ok ? .passed("PoR status", "\(status)") : .failed("PoR status", "\(status)"))
            if let commandCounter, opened.checksumChecked {
                checks.append(opened.counter == commandCounter ? .passed("PoR counter", "answers the command's \(commandCounter)")
                                                              : .failed("PoR counter", "\(opened.counter) does not answer the command's \(commandCounter)"))
            }
            if status == .ok, let commandCounter, command.spi.counter == .higher || command.spi.counter == .exactlyPlusOne {
                let version = command.spi.integrity == .cryptographicChecksum || !command.spi.ciphered ? command.kid.keyVersion : command.kic.keyVersion
                lastCounter[version] = max(lastCounter[version] ?? .zero, commandCounter)
            }
            data = opened.data
        } catch {
            if error.code == .invalidKey {
                checks.append(.skipped("PoR opened", error.detail))
            } else {
                checks.append(.failed(error.code == .invalidMAC ? "PoR CC" : "PoR opened", error.detail))
            }
        }
        emit("SCP80 PoR from TAR \(packet.tar)", details: details, checks: checks)
        if let data, !data.isEmpty, direction == .fromCard { responseScript(data) }
    }

    // MARK: - SCP81 (HTTP layer)

    mutating func http(_ bytes: [UInt8], direction: TraceDirection) {
        var reader = HTTPMessageReader()
        reader.append(bytes)
        if direction == .toCard {
            // The SM-SR's admin server answers the card's POST with the next script.
            guard let response = try? reader.nextResponse() else { return malformed("not an HTTP response of the admin protocol") }
            var details = ["HTTP \(response.status) \(response.reason)"]
            for (name, value) in response.headers where name.lowercased().hasPrefix("x-admin") || name.lowercased() == "content-type" {
                details.append("\(name): \(value)")
            }
            if let targeted = response.headers["X-Admin-Targeted-Application"] {
                if let aid = AdminProtocol.application(fromURI: targeted) {
                    scriptTargetAID = aid
                    scriptTarget = "application \(aid.text)"
                } else {
                    details.append("(the targeted application is not an //aid/ URI)")
                }
            } else {
                scriptTarget = "ISD-R"
                scriptTargetAID = nil
            }
            emit(response.status == 204 ? "admin session ends (204)" : "admin protocol: script for \(scriptTarget)", details: details)
            if response.status == 200, !response.body.isEmpty { commandScript(response.body) }
        } else {
            guard let request = try? reader.nextRequest() else { return malformed("not an HTTP request of the admin protocol") }
            var details = ["\(request.method) \(request.target)"]
            for (name, value) in request.headers where name.lowercased().hasPrefix("x-admin") || name.lowercased() == "content-type" {
                details.append("\(name): \(value)")
            }
            if let status = request.headers["X-Admin-Script-Status"] { details.append("script status \(status)") }
            emit("admin protocol: the card posts \(request.body.isEmpty ? "(no script response)" : "its response")", details: details)
            if !request.body.isEmpty { responseScript(request.body) }
        }
    }

    // MARK: - SCP03t

    mutating func ensureObserver() -> SCP03tObserver? {
        if let observer { return observer }
        guard let keys = keyring.scp03 ?? derivedKeys else { return nil }
        guard let aid = scriptTargetAID ?? keyring.isdPAID ?? personalizationTarget else { return nil }
        observerAID = aid
        observer = SCP03tObserver(keys: keys, aid: aid.bytes)
        return observer
    }

    var missingSCP03: String {
        if keyring.scp03 == nil, derivedKeys == nil {
            return "no ISD-P keys: scp03 in the keyring, or esk_dp_ecka and pk_ecasd_ecka with the key establishment in the capture"
        }
        return "the ISD-P's AID is unknown: isd_p_aid in the keyring, or the X-Admin-Targeted-Application / INSTALL in the capture"
    }

    mutating func scp03tCommand(_ tlv: TLV) {
        switch tlv.tag {
        case 0x84:
            observer = nil
            segments = 0
            package = []
            packageAnswered = false
            let title = "SCP03t INITIALIZE UPDATE"
            if tlv.value.count == 10 {
                emit(title, details: ["key version \(Hex.encode([tlv.value[0]])), host challenge \(Hex.encode(Array(tlv.value[2...])))"])
            } else {
                emit(title, checks: [.failed("format", "INITIALIZE UPDATE is 84 0A <KVN> <key id> <host challenge>")])
            }
            scp03tPending.append((tlv, origin))
        case 0x85:
            let level = tlv.value.first.map { Hex.encode([$0]) } ?? "?"
            emit("SCP03t EXTERNAL AUTHENTICATE", details: ["security level \(level)"])
            scp03tPending.append((tlv, origin))
        case 0x86:
            segments &+= 1
            segment(tlv)
        default:
            emit("SCP03t \(tlv.tag)", checks: [.failed("format", "SCP03t commands are 84, 85 and 86")])
        }
    }

    /// Segments sent before the session's opening was answered (in the script of INITIALIZE UPDATE and
    /// EXTERNAL AUTHENTICATE): checked, in order, once EXTERNAL AUTHENTICATE checks out.
    var deferredSegments: [(tlv: TLV, title: String, origin: Origin?)] = []

    mutating func segment(_ tlv: TLV) {
        let title = "SCP03t segment \(segments) (\(tlv.value.count) bytes)"
        scp03tPending.append((tlv, origin))
        if let observer = ensureObserver(), !observer.isOpen, scp03tPending.contains(where: { $0.tlv.tag == 0x84 || $0.tlv.tag == 0x85 }) {
            deferredSegments.append((tlv, title, origin))
            return
        }
        check(segment: tlv, title: title, origin: origin)
    }

    mutating func check(segment tlv: TLV, title: String, origin: Origin?) {
        guard var observer = ensureObserver(), observer.isOpen else {
            emit(title, checks: [.skipped("C-MAC and decryption", observer == nil ? missingSCP03 : "the session did not open")], origin: origin)
            return
        }
        do throws(CryptoError) {
            let opened = try observer.segment(tlv)
            let plain = opened.plain ?? []
            package += plain
            var details = ["\(plain.count) bytes of profile package (\(package.count) so far)"]
            if package.count == plain.count, let first = plain.first { details.append("starts with \(Hex.encode(Array(plain.prefix(min(12, plain.count))))) (tag \(Hex.encode([first])))") }
            emit(title, details: details, checks: [opened.macChecked ? .passed("C-MAC", "checked, decrypted") : .skipped("C-MAC", "the MAC chain is unknown (\(observer.macChainLost ?? "lost"))")],
                 origin: origin)
        } catch {
            emit(title, checks: [.failed(error.code == .invalidMAC ? "C-MAC" : "segment", error.detail)], origin: origin)
        }
        self.observer = observer
    }

    /// The deferred segments, once the session is open (or reported skipped when it did not open).
    mutating func replayDeferred() {
        let waiting = deferredSegments
        deferredSegments = []
        for segment in waiting { check(segment: segment.tlv, title: segment.title, origin: segment.origin) }
    }

    mutating func elide(_ count: Int) {
        segments &+= count
        if var observer, observer.isOpen {
            observer.elide(count)
            self.observer = observer
            emit("SCP03t: \(count) command(s) not in the capture", details: ["the counter moves on; later MACs cannot be checked"])
        } else {
            emit("SCP03t: \(count) command(s) not in the capture")
        }
        // Their answers (86 00) are not in the capture either.
    }

    mutating func scp03tAnswer(_ tlv: TLV) {
        guard !scp03tPending.isEmpty else {
            // The answers of elided commands, or an answer without its command.
            if tlv.tag == 0x86, tlv.value.isEmpty { return emit("SCP03t answer 86 00 (its command is not in the capture)") }
            if tlv.tag == 0x86 { return finalAnswer(tlv) }
            return emit("SCP03t answer \(tlv.tag) without a command in the capture", details: [Vocabulary.scp03tError(tlv) ?? Hex.encode(tlv.value)])
        }
        let (command, commandOrigin) = scp03tPending.removeFirst()
        if let error = Vocabulary.scp03tError(tlv) {
            emit("SCP03t answer \(tlv.tag) to \(command.tag)", checks: [.failed("the card accepted it", error)])
            return
        }
        switch command.tag {
        case 0x84:
            guard var observer = ensureObserver() else {
                emit("SCP03t answer to INITIALIZE UPDATE", details: tlv.value.count == 32 ? ["card challenge \(Hex.encode(Array(tlv.value[13..<21]))), sequence counter \(Hex.encode(Array(tlv.value[29..<32])))"] : [],
                     checks: [.skipped("card challenge and cryptogram", missingSCP03)])
                return
            }
            do throws(CryptoError) {
                let facts = try observer.initializeUpdate(command: command, response: tlv)
                var checks: [TraceCheck] = []
                checks.append(facts.challengeChecked ? .passed("card challenge", "the pseudo-random challenge of the ISD-P AID and counter \(Hex.encode(facts.sequenceCounter))")
                                                     : .skipped("card challenge", "i = \(Hex.encode([facts.i])): a random challenge"))
                checks.append(.passed("card cryptogram"))
                emit("SCP03t answer to INITIALIZE UPDATE (ISD-P \(observerAID?.text ?? "?"))",
                     details: ["key version \(Hex.encode([facts.keyVersion])), i \(Hex.encode([facts.i])), card challenge \(Hex.encode(facts.cardChallenge)), sequence counter \(Hex.encode(facts.sequenceCounter))"],
                     checks: checks)
                // EXTERNAL AUTHENTICATE sent with INITIALIZE UPDATE (precomputed) can be checked now.
                if let next = scp03tPending.first, next.tlv.tag == 0x85 { authenticate(next.tlv, observer: &observer, origin: next.origin) }
            } catch {
                let name = error.detail.contains("card challenge") ? "card challenge" : error.code == .invalidMAC ? "card cryptogram" : "INITIALIZE UPDATE"
                emit("SCP03t answer to INITIALIZE UPDATE", checks: [.failed(name, error.detail)])
            }
            self.observer = observer
            if observer.isOpen { replayDeferred() }
        case 0x85:
            if var observer, !observer.isOpen {
                if observer.isInitialized {
                    authenticate(command, observer: &observer, origin: commandOrigin)
                    self.observer = observer
                } else {
                    emit("SCP03t EXTERNAL AUTHENTICATE", checks: [.skipped("host cryptogram and C-MAC", "INITIALIZE UPDATE did not check out")],
                         origin: commandOrigin)
                }
            }
            replayDeferred()
            let ok = tlv.tag == 0x85 && tlv.value.isEmpty
            emit("SCP03t answer to EXTERNAL AUTHENTICATE", checks: [ok ? .passed("the card accepted it", "85 00: the session is open") : .failed("the card accepted it", "answer \(tlv.tag) \(Hex.encode(tlv.value))")])
        default:
            if tlv.tag == 0x86, !tlv.value.isEmpty { return finalAnswer(tlv) }
            if tlv.tag != 0x86 { emit("SCP03t answer \(tlv.tag) to a segment", checks: [.failed("format", "a segment is answered 86")]) }
        }
    }

    /// EXTERNAL AUTHENTICATE, checked once INITIALIZE UPDATE's answer gave the session keys; the entry
    /// belongs to the exchange that carried the command.
    mutating func authenticate(_ command: TLV, observer: inout SCP03tObserver, origin: Origin?) {
        guard !observer.isOpen else { return }
        do throws(CryptoError) {
            let level = try observer.externalAuthenticate(command: command)
            emit("SCP03t EXTERNAL AUTHENTICATE checked", details: ["security level \(Hex.encode([level.rawValue]))"],
                 checks: [.passed("host cryptogram"), .passed("C-MAC of EXTERNAL AUTHENTICATE")], origin: origin)
        } catch {
            emit("SCP03t EXTERNAL AUTHENTICATE checked",
                 checks: [.failed(error.detail.contains("host cryptogram") ? "host cryptogram" : "C-MAC of EXTERNAL AUTHENTICATE", error.detail)], origin: origin)
        }
    }

    /// The answer with data that ends a download: the TCA EUICCResponse.
    mutating func finalAnswer(_ tlv: TLV) {
        let title = "SCP03t final answer (\(tlv.value.count) bytes)"
        guard let observer, observer.isOpen else {
            emit(title, checks: [.skipped("R-MAC and decryption", observer == nil ? missingSCP03 : "the session did not open")])
            return
        }
        do throws(CryptoError) {
            let opened = try observer.response(tlv)
            var checks: [TraceCheck] = [opened.macChecked ? .passed("R-MAC") : .skipped("R-MAC", "the MAC chain is unknown (\(observer.macChainLost ?? "lost"))")]
            var details: [String] = []
            if let plain = opened.plain {
                details.append("EUICCResponse \(Hex.encode(plain))")
                if let response = try? EUICCResponse(encoded: plain) {
                    details.append("\(response)")
                    checks.append(response.isSuccess ? .passed("profile installed", "every PEStatus ok")
                                                     : .failed("profile installed", "\(response)"))
                } else {
                    checks.append(.failed("EUICCResponse", "the decrypted answer is not an EUICCResponse"))
                }
            }
            if !package.isEmpty {
                do throws(ProfilePackageError) {
                    let parsed = try ProfilePackage(der: package)
                    checks.append(.passed("profile package", "\(parsed.elements.count) elements, ICCID \(parsed.header.iccid.text), \(package.count) bytes"))
                } catch {
                    checks.append(.failed("profile package", "\(error)"))
                }
            }
            emit(title, details: details, checks: checks)
            packageAnswered = true
        } catch {
            emit(title, checks: [.failed(error.code == .invalidMAC ? "R-MAC" : "final answer", error.detail)])
        }
    }
}
