// ES8.DownloadAndInstallation on the card: an SCP03t session with the ISD-P, the profile package
// parsed as its segments arrive (PEs need not align with segments), and the EUICCResponse returned
// R-ENC'd in the final 86 (spec/sgp02-oncard.md §2.4). The card keeps the header's identity, POL1,
// the size and a SHA-256 digest — not the file system.

public import M2MCore
import M2MCrypto
public import M2MWire

/// An SCP03t download in progress on one ISD-P.
struct DownloadSession: Sendable {
    var channel: SCP03tCard
    var stream = ProfilePackageStream()
    let hasher = SHA256Hasher()
    var received = 0
}

extension EUICC {
    /// Processes the command TLVs of one script sent to an ISD-P (84, 85, 86 …) and returns the
    /// answer TLVs. An error answer (9F44/9F45/9F46) ends the session; processing stops there.
    public mutating func processSCP03t(_ commands: [TLV], target aid: AID) -> [TLV] {
        guard let index = isdps.firstIndex(where: { $0.aid == aid }) else {
            return [SCP03tError.initializeUpdate(SCP03tError.referencedDataNotFound).tlv]
        }
        var answers: [TLV] = []
        for command in commands {
            if command.tag == 0x84 {
                guard let keys = isdps[index].keys, isdps[index].lifeCycle == .personalized else {
                    downloads[aid] = nil
                    answers.append(SCP03tError.initializeUpdate(SCP03tError.referencedDataNotFound).tlv)
                    return answers
                }
                apduSessions[aid] = nil  // one secure channel per ISD-P at a time
                downloads[aid] = DownloadSession(channel: SCP03tCard(keys: keys, aid: aid.bytes, sequenceCounter: isdps[index].sequenceCounter))
            }
            // Taken out of the table while it works, so its buffers are not copied on write.
            guard var session = downloads.removeValue(forKey: aid) else {
                answers.append(SCP03tError.command(SCP03tError.security).tlv)
                return answers
            }
            let outcome = session.channel.process(command)
            isdps[index].sequenceCounter = session.channel.sequenceCounter
            switch outcome {
            case .answer(let tlv):
                downloads[aid] = session
                answers.append(tlv)
            case .failed(let error):
                downloads[aid] = nil
                answers.append(error.tlv)
                return answers
            case .segment(let plain):
                session.hasher.update(plain)
                session.received += plain.count
                do {
                    _ = try session.stream.consume(plain)
                    if session.stream.isComplete {
                        let summary = try session.stream.finish()
                        let size = session.received
                        let quota = isdps[index].allocatedMemory
                        guard size - quota <= freeMemory else {
                            throw ProfilePackageError(code: .packageTooLarge, detail: "\(size) bytes, \(freeMemory + quota) free")
                        }
                        isdps[index].iccid = summary.header.iccid
                        isdps[index].profileType = summary.header.profileType
                        isdps[index].pol1 = POL1(rawValue: summary.header.pol?.first ?? 0)
                        isdps[index].allocatedMemory = max(quota, size)
                        isdps[index].profileDigest = session.hasher.finalize()
                        isdps[index].lifeCycle = .disabled
                        answers.append((try? session.channel.answer(with: EUICCResponse.success.encoded)) ?? session.channel.emptyAnswer())
                        downloads[aid] = nil
                        return answers
                    }
                    downloads[aid] = session
                    answers.append(session.channel.emptyAnswer())
                } catch let error as ProfilePackageError {
                    // The package is refused: answer with the EUICCResponse that says why, and stop.
                    let response = EUICCResponse.failure(error).encoded
                    answers.append((try? session.channel.answer(with: response)) ?? SCP03tError.command(SCP03tError.structure).tlv)
                    downloads[aid] = nil
                    return answers
                } catch {
                    answers.append(SCP03tError.command(SCP03tError.structure).tlv)
                    downloads[aid] = nil
                    return answers
                }
            }
        }
        return answers
    }
}
