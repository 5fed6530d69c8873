// The expanded remote command format (ETSI TS 102 226 §5.2) on the card: a command script
// (`AA` definite, `AE 80 … 00 00` indefinite) addressed to the ISD-R or to an ISD-P is checked as a
// whole, executed, and answered with the response script in the same coding (`AB` / `AF`).
// spec/sgp02-oncard.md §2.1. The same entry serves SMS (SCP80Endpoint.swift: the TAR names the
// application) and, later, the HTTPS admin protocol (X-Admin-Targeted-Application names it).
//
//   ISD-R   C-APDUs (`22`) → `80 01 n` ‖ one `23` R-APDU per executed command; stops at the first
//           command whose status is neither success nor warning.
//   ISD-P   SCP03t TLVs (`84`/`85`/`86`) → their answers (EUICC.processSCP03t), or C-APDUs (`22`) in
//           an SCP03 APDU-mode session (INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, wrapped STORE DATA
//           3A07 = ES8.UpdateConnectivityParameters, §2.5) → `80 01 n` ‖ `23` …
//   refused a script that is not a template, mixes item kinds or holds an unparsable C-APDU is not
//           executed at all: the answer is `80 01 00` ‖ `90 01 <reason>` (bad format: 01 unknown
//           tag, 02 wrong length, 03 length not found) and the card is unchanged.

public import M2MCore
import M2MCrypto
public import M2MWire
public import M2MTransport

extension EUICC {
    /// Executes an expanded command script and returns the response script (same length coding).
    public mutating func processScript(_ bytes: [UInt8], target: ScriptTarget) -> [UInt8] {
        let coding: ScriptLengthCoding = bytes.first == ExpandedCommandScript.indefiniteTag ? .indefinite : .definite
        let script: ExpandedCommandScript
        do {
            script = try ExpandedCommandScript(bytes: bytes)
        } catch {
            return EUICC.badFormat(EUICC.badFormatReason(error), coding: coding)
        }
        switch executeScript(script.items, target: target) {
        case .success(let items):
            return (try? ExpandedResponseScript(items: items, coding: script.coding))?.encoded
                ?? EUICC.badFormat(0x02, coding: script.coding)
        case .failure(let refused):
            return EUICC.badFormat(refused.reason, coding: script.coding)
        }
    }

    /// Processes a script of C-APDUs (tag 22) for the ISD-R: R-APDUs (tag 23) preceded by the
    /// number of executed commands (80 01 n); stops at the first command that fails. A script
    /// with another item or an unparsable C-APDU is not executed: `80 01 00, 90 01 reason`.
    public mutating func processISDRScript(_ commands: [TLV]) -> [TLV] {
        switch executeScript(commands, target: .isdR) {
        case .success(let items): return items
        case .failure(let refused):
            return [TLV(ExpandedResponseScript.executedTag, [0]), TLV(ExpandedResponseScript.badFormatTag, [refused.reason])]
        }
    }

    /// A refused script: `80 01 00` ‖ `90 01 reason`.
    static func badFormat(_ reason: UInt8, coding: ScriptLengthCoding) -> [UInt8] {
        let items = [TLV(ExpandedResponseScript.executedTag, [0]), TLV(ExpandedResponseScript.badFormatTag, [reason])]
        return (try? ExpandedResponseScript(items: items, coding: coding))?.encoded ?? []
    }

    static func badFormatReason(_ error: TLVError) -> UInt8 {
        switch error.code {
        case .unexpectedTag, .badTag: 0x01
        case .truncated: 0x03
        default: 0x02
        }
    }

    /// A script refused as a whole, with its bad-format reason (90 01 reason).
    struct ScriptRefused: Error { let reason: UInt8 }

    /// Checks the items as a whole, then executes them. `.failure(reason)`: nothing was executed.
    mutating func executeScript(_ items: [TLV], target: ScriptTarget) -> Result<[TLV], ScriptRefused> {
        guard !items.isEmpty else { return .success([TLV(ExpandedResponseScript.executedTag, [0])]) }
        if items.allSatisfy({ $0.tag == ExpandedCommandScript.commandTag }) {
            var commands: [CommandAPDU] = []
            commands.reserveCapacity(items.count)
            for item in items {
                guard let command = try? CommandAPDU(bytes: item.value) else { return .failure(ScriptRefused(reason: 0x02)) }
                commands.append(command)
            }
            guard commands.count <= 255 else { return .failure(ScriptRefused(reason: 0x02)) }
            var responses: [TLV] = []
            for command in commands {
                let response: ResponseAPDU
                switch target {
                case .isdR: response = process(command)
                case .isdP(let aid): response = processISDP(command, aid: aid)
                }
                responses.append(TLV(ExpandedResponseScript.responseTag, response.bytes))
                if !response.sw.isSuccessOrWarning { break }
            }
            return .success([TLV(ExpandedResponseScript.executedTag, [UInt8(responses.count)])] + responses)
        }
        guard case .isdP(let aid) = target, items.allSatisfy({ [0x84, 0x85, 0x86].contains($0.tag.rawValue) }) else {
            return .failure(ScriptRefused(reason: 0x01))
        }
        return .success(processSCP03t(items, target: aid))
    }

    // MARK: - SCP03 APDU mode on an ISD-P (ES8.UpdateConnectivityParameters)

    /// One C-APDU for an ISD-P: INITIALIZE UPDATE and EXTERNAL AUTHENTICATE open an SCP03 session
    /// (i = 70, the ISD-P's key set and sequence counter, shared with SCP03t); every other command
    /// must be wrapped in it. A MAC failure ends the session (6982).
    mutating func processISDP(_ command: CommandAPDU, aid: AID) -> ResponseAPDU {
        guard let index = isdps.firstIndex(where: { $0.aid == aid }) else { return ResponseAPDU(sw: .referencedDataNotFound) }
        switch (command.cla, command.ins) {
        case (0x80, 0x50):
            guard let keys = isdps[index].keys else { return ResponseAPDU(sw: .referencedDataNotFound) }
            guard command.data.count == 8 else { return ResponseAPDU(sw: .wrongLength) }
            guard command.p1 == 0 || command.p1 == keys.keyVersion else { return ResponseAPDU(sw: .referencedDataNotFound) }
            var card = SCP03Card(keys: keys, aid: aid.bytes, sequenceCounter: isdps[index].sequenceCounter)
            guard let answer = try? card.initializeUpdate(hostChallenge: command.data, keyVersion: command.p1) else {
                return ResponseAPDU(sw: .wrongData)
            }
            downloads[aid] = nil  // one secure channel per ISD-P at a time
            isdps[index].sequenceCounter = card.sequenceCounter
            apduSessions[aid] = card
            return ResponseAPDU(data: answer, sw: .success)
        case (0x84, 0x82):
            guard var card = apduSessions[aid], card.state == .initialized else { return ResponseAPDU(sw: .conditionsNotSatisfied) }
            do {
                try card.externalAuthenticate(command)
                apduSessions[aid] = card
                return ResponseAPDU(sw: .success)
            } catch {
                apduSessions[aid] = nil
                return ResponseAPDU(sw: .securityStatusNotSatisfied)
            }
        default:
            guard command.cla & 0x04 != 0, var card = apduSessions[aid], card.state == .open else {
                return ResponseAPDU(sw: .securityStatusNotSatisfied)
            }
            let plain: CommandAPDU
            do {
                plain = try card.unwrap(command)
            } catch {
                apduSessions[aid] = nil
                return ResponseAPDU(sw: .securityStatusNotSatisfied)
            }
            apduSessions[aid] = card
            let response = isdpCommand(plain, index: index)
            return (try? card.wrap(response)) ?? response
        }
    }

    /// A command inside an ISD-P's SCP03 session: STORE DATA 3A07 { A0 … } sets the connectivity
    /// parameters; nothing else is offered here.
    mutating func isdpCommand(_ command: CommandAPDU, index: Int) -> ResponseAPDU {
        guard command.cla & 0xF0 == 0x80 else { return ResponseAPDU(sw: .claNotSupported) }
        guard command.ins == 0xE2 else { return ResponseAPDU(sw: .insNotSupported) }
        var offset = 0
        guard let dgi = try? DGI.parse(command.data, offset: &offset), offset == command.data.count else {
            return ResponseAPDU(sw: .wrongData)
        }
        guard dgi.tag == 0x3A07 else { return ResponseAPDU(sw: .referencedDataNotFound) }
        guard let parameters = try? TLV.parseOne(dgi.value), parameters.tag == 0xA0 else { return ResponseAPDU(sw: .wrongData) }
        isdps[index].connectivityParameters = dgi.value
        return ResponseAPDU(sw: .success)
    }
}
