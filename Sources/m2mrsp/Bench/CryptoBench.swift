// `m2mrsp bench crypto`: M2MCrypto's wrappers beside the raw OpenSSL calls that do the same work,
// measured in the same run (ratio = wrapper rate / raw rate; target ≥ 1/1.2, i.e. within 1.2× of
// raw). A full key establishment (both sides) is measured beside the sum of its primitives' raw
// costs.

import ArgumentParser
import COpenSSL
import Foundation
import M2MCore
import M2MCrypto
import M2MTestKit
import M2MWire

struct CryptoBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crypto",
        abstract: "ECDH, ECDSA, CMAC, SCP03t and key establishment beside raw OpenSSL, on P-256 and brainpoolP256r1."
    )

    @Flag(help: "Print the figures as JSON.")
    var json = false

    @Flag(help: "Short run (a few seconds).")
    var quick = false

    @Option(help: "Curves to measure: p256, brainpoolP256r1 or both.")
    var curve: String = "both"

    func run() throws {
        let curves: [Curve] = curve == "both" ? Curve.allCases : [Curve(name: curve)].compactMap { $0 }
        guard !curves.isEmpty else { throw ValidationError("unknown curve \(curve)") }
        let seconds = quick ? 0.25 : 1.0
        let rounds = quick ? 1 : 3
        var figures: [BenchFigure] = []
        let target = 1 / 1.2
        func add(_ name: String, _ ours: Double, _ raw: Double, unit: String = "ops/s") {
            figures.append(BenchFigure(name: name, value: ours, unit: unit, baseline: raw, ratio: ours / raw, target: target,
                                       meets: ours / raw >= target))
        }

        let md = EVP_MD_fetch(nil, "SHA256", nil)!
        defer { EVP_MD_free(md) }
        let message = [UInt8](repeating: 0x5A, count: 100)
        for curve in curves {
            let a = try ECPrivateKey(generatingOn: curve)
            let b = try ECPrivateKey(generatingOn: curve)
            let rawA = try RawKey(a)
            let rawB = try RawKey(b)

            // ECDH.
            let (ecdh, ecdhRaw) = try Bench.compare(rounds: rounds, seconds: seconds, {
                _ = try a.sharedSecret(with: b.publicKey)
            }, baseline: { rawA.derive(with: rawB) })
            add("\(curve) ECDH", ecdh, ecdhRaw)

            // ECDSA sign (r‖s conversion included on our side: that is what SGP.02 needs).
            let (sign, signRaw) = try Bench.compare(rounds: rounds, seconds: seconds, {
                _ = try a.signature(for: message)
            }, baseline: { _ = rawA.sign(message, md: md) })
            add("\(curve) ECDSA-SHA256 sign", sign, signRaw)

            // ECDSA verify.
            let signature = try a.signature(for: message)
            let der = try signature.derRepresentation
            let (verify, verifyRaw) = try Bench.compare(rounds: rounds, seconds: seconds, {
                precondition(a.publicKey.isValidSignature(signature, for: message))
            }, baseline: { precondition(rawA.verify(der, message, md: md)) })
            add("\(curve) ECDSA-SHA256 verify", verify, verifyRaw)

            // The same with the key's table of multiples (ECPublicKey.prepareForRepeatedVerification:
            // EUM keys at ingest), P-256 only, beside the same raw EVP verification.
            let prepared = try ECPublicKey(x962Representation: a.publicKey.x962Representation, curve: curve)
            if prepared.prepareForRepeatedVerification() {
                let (fast, fastRaw) = try Bench.compare(rounds: rounds, seconds: seconds, {
                    precondition(prepared.isValidSignature(signature, for: message))
                }, baseline: { precondition(rawA.verify(der, message, md: md)) })
                add("\(curve) ECDSA-SHA256 verify, key prepared for repeated verification", fast, fastRaw)
            }
        }

        // CMAC of 32 bytes with a keyed context.
        let key = SecureRandom.bytes(16)
        let cmac = try AESCMAC(key: key)
        let rawCMAC = RawCMAC(key: key)
        let block = [UInt8](repeating: 1, count: 32)
        let (mac, macRaw) = Bench.compare(rounds: rounds, seconds: seconds, { _ = cmac.mac(block) }, baseline: { rawCMAC.mac(block) })
        add("AES-CMAC 32 B", mac, macRaw)

        // One SCP03t segment (1 KB): ICV, AES-CBC, C-MAC.
        let keys = SCP03Keys(keyVersion: 0x30, enc: SecureBytes(SecureRandom.bytes(16)), mac: SecureBytes(SecureRandom.bytes(16)),
                             dek: SecureBytes(SecureRandom.bytes(16)))
        var host = SCP03tHost(keys: keys, aid: Hex.decode("A0000005591010FFFFFFFF8900001100")!)
        _ = host.initializeUpdate()
        _ = try host.precomputedExternalAuthenticate(sequenceCounter: 1)
        let segment = [UInt8](repeating: 0xA5, count: 1024)
        let rawSegment = RawSegment(enc: keys.enc.bytes, mac: keys.mac.bytes)
        let (seg, segRaw) = try Bench.compare(rounds: rounds, seconds: seconds, {
            _ = try host.segment(segment)
        }, baseline: { rawSegment.wrap(segment) })
        add("SCP03t 1 KB segment wrap", seg, segRaw, unit: "segments/s")

        // Key establishment, both sides, beside the sum of its raw primitives:
        // host: keygen, sign, ECDH, X9.63, CMAC; card: 2 point imports (PK.DP from the certificate, ePK),
        // 2 verifies (certificate, key agreement), ECDH, X9.63, CMAC.
        for curve in curves {
            let pki = try TestPKI.generate(curve: curve)
            let ecasd = pki.sampleECASDKey
            let certificate = try requireValue(pki.smdp.certificate)
            let dpKey = try requireValue(pki.smdp.key)
            let establishment = {
                var host = try KeyEstablishmentHost(certificate: certificate, signingKey: dpKey, ecasdPublicKey: ecasd.publicKey)
                var card = KeyEstablishmentCard(ecasdKey: ecasd, ciPublicKey: pki.ci.publicKey, expectedRole: .smdp)
                let challenge = try card.processCertificate(host.certificateData())
                let (answer, _) = try card.processKeyAgreement(host.keyAgreementData(cardResponse: challenge))
                _ = try host.processReceipt(cardResponse: answer)
            }
            let rawDP = try RawKey(dpKey)
            let rawECASD = try RawKey(ecasd)
            let kdf = EVP_KDF_fetch(nil, "X963KDF", nil)!
            defer { EVP_KDF_free(kdf) }
            let secret = [UInt8](repeating: 3, count: 32)
            let sigDER = try dpKey.signature(for: message).derRepresentation
            let point = dpKey.publicKey.x962Representation
            let primitive: [(String, () -> Void)] = [
                ("keygen", { RawKey.generate(curve) }),
                ("point import×2", { RawKey.importPoint(curve, point); RawKey.importPoint(curve, point) }),
                ("sign", { _ = rawDP.sign(message, md: md) }),
                ("verify×2", { precondition(rawDP.verify(sigDER, message, md: md)); precondition(rawDP.verify(sigDER, message, md: md)) }),
                ("ECDH×2", { rawDP.derive(with: rawECASD); rawECASD.derive(with: rawDP) }),
                ("X9.63×2", { RawKey.x963(kdf, secret); RawKey.x963(kdf, secret) }),
                ("CMAC×2", { rawCMAC.mac(block); rawCMAC.mac(block) }),
            ]
            var ours = 0.0
            var floorSeconds = 0.0
            for _ in 0..<rounds {
                ours = max(ours, try Bench.rate(seconds: seconds, establishment))
                var total = 0.0
                for (_, body) in primitive { total += 1 / Bench.rate(seconds: seconds / 3, body) }
                floorSeconds = floorSeconds == 0 ? total : min(floorSeconds, total)
            }
            add("\(curve) key establishment (both sides)", ours, 1 / floorSeconds, unit: "establishments/s")
        }
        try Bench.print(BenchReport(suite: "crypto", figures: figures), json: json)
    }
}

/// `#require` for non-test code: unwraps or fails the command.
func requireValue<T>(_ value: T?) throws -> T {
    guard let value else { throw ValidationError("missing value") }
    return value
}

// MARK: - Raw OpenSSL baselines (the least an application must do for the same result)

final class RawKey {
    let pkey: OpaquePointer
    init(_ key: ECPrivateKey) throws {
        let der = key.pkcs8DER.bytes
        guard let pkey = der.withUnsafeBufferPointer({ buffer -> OpaquePointer? in
            var pointer: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_AutoPrivateKey(nil, &pointer, buffer.count)
        }) else { throw ValidationError("raw key") }
        self.pkey = pkey
    }
    deinit { EVP_PKEY_free(pkey) }

    static func generate(_ curve: Curve) {
        let key = m2m_ec_generate(curve == .p256 ? "P-256" : "brainpoolP256r1")
        EVP_PKEY_free(key)
    }

    func derive(with peer: RawKey) {
        let ctx = EVP_PKEY_CTX_new_from_pkey(nil, pkey, nil)
        defer { EVP_PKEY_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: 32)
        var length = 32
        precondition(EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer_ex(ctx, peer.pkey, 0) == 1
                     && EVP_PKEY_derive(ctx, &out, &length) == 1)
    }

    func sign(_ message: [UInt8], md: OpaquePointer) -> [UInt8] {
        let ctx = EVP_MD_CTX_new()
        defer { EVP_MD_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: 80)
        var length = out.count
        precondition(EVP_DigestSignInit(ctx, nil, md, nil, pkey) == 1
                     && EVP_DigestSign(ctx, &out, &length, message, message.count) == 1)
        return out
    }

    func verify(_ der: [UInt8], _ message: [UInt8], md: OpaquePointer) -> Bool {
        let ctx = EVP_MD_CTX_new()
        defer { EVP_MD_CTX_free(ctx) }
        return EVP_DigestVerifyInit(ctx, nil, md, nil, pkey) == 1
            && EVP_DigestVerify(ctx, der, der.count, message, message.count) == 1
    }

    /// Decoding a received point, with the on-curve check any receiver must do.
    static func importPoint(_ curve: Curve, _ point: [UInt8]) {
        let key = m2m_ec_public_from_point(curve == .p256 ? "P-256" : "brainpoolP256r1", point, point.count)
        let ctx = EVP_PKEY_CTX_new_from_pkey(nil, key, nil)
        precondition(EVP_PKEY_public_check_quick(ctx) == 1)
        EVP_PKEY_CTX_free(ctx)
        EVP_PKEY_free(key)
    }

    static func x963(_ kdf: OpaquePointer, _ secret: [UInt8]) {
        var out = [UInt8](repeating: 0, count: 64)
        let info: [UInt8] = [0x10, 0x88, 0x10]
        precondition(m2m_x963kdf(kdf, secret, secret.count, info, info.count, &out, out.count) == 1)
    }
}

final class RawCMAC {
    let mac: OpaquePointer
    let template: OpaquePointer
    init(key: [UInt8]) {
        mac = EVP_MAC_fetch(nil, "CMAC", nil)!
        template = EVP_MAC_CTX_new(mac)!
        precondition(m2m_cmac_init(template, key, key.count) == 1)
    }
    deinit {
        EVP_MAC_CTX_free(template)
        EVP_MAC_free(mac)
    }

    @discardableResult
    func mac(_ data: [UInt8]) -> [UInt8] {
        let ctx = EVP_MAC_CTX_dup(template)
        defer { EVP_MAC_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: 16)
        var length = 0
        precondition(EVP_MAC_update(ctx, data, data.count) == 1 && EVP_MAC_final(ctx, &out, &length, 16) == 1)
        return out
    }
}

/// One SCP03t segment done with raw calls: ICV (AES-ECB), AES-CBC with padding, CMAC over header+ciphertext.
final class RawSegment {
    let enc: [UInt8]
    let cmac: RawCMAC
    let ecb: OpaquePointer
    let cbc: OpaquePointer
    var counter: UInt32 = 0
    init(enc: [UInt8], mac: [UInt8]) {
        self.enc = enc
        cmac = RawCMAC(key: mac)
        ecb = EVP_CIPHER_fetch(nil, "AES-128-ECB", nil)!
        cbc = EVP_CIPHER_fetch(nil, "AES-128-CBC", nil)!
    }
    deinit {
        EVP_CIPHER_free(ecb)
        EVP_CIPHER_free(cbc)
    }

    func wrap(_ plain: [UInt8]) {
        counter += 1
        var block = [UInt8](repeating: 0, count: 16)
        block[15] = UInt8(truncatingIfNeeded: counter)
        var icv = [UInt8](repeating: 0, count: 32)
        var n: Int32 = 0
        let c1 = EVP_CIPHER_CTX_new()
        precondition(EVP_CipherInit_ex2(c1, ecb, enc, nil, 1, nil) == 1 && EVP_CIPHER_CTX_set_padding(c1, 0) == 1
                     && EVP_CipherUpdate(c1, &icv, &n, block, 16) == 1)
        EVP_CIPHER_CTX_free(c1)
        var padded = plain + [0x80]
        while padded.count % 16 != 0 { padded.append(0) }
        var cipher = [UInt8](repeating: 0, count: padded.count + 16)
        let c2 = EVP_CIPHER_CTX_new()
        precondition(EVP_CipherInit_ex2(c2, cbc, enc, icv, 1, nil) == 1 && EVP_CIPHER_CTX_set_padding(c2, 0) == 1
                     && EVP_CipherUpdate(c2, &cipher, &n, padded, Int32(padded.count)) == 1)
        EVP_CIPHER_CTX_free(c2)
        cipher.removeSubrange(Int(n)...)
        let length = cipher.count + 8
        _ = cmac.mac([UInt8](repeating: 0, count: 16) + [0x86, 0x82, UInt8(length >> 8), UInt8(length & 0xFF)] + cipher)
    }
}
