import M2MCore
@testable import M2MCrypto
import Testing

@Suite("EC keys on P-256 and brainpoolP256r1")
struct ECTests {
    @Test("Sign/verify in r‖s and DER, ECDH agreement, PKCS#8 round trip", arguments: Curve.allCases)
    func roundTrip(curve: Curve) throws {
        let a = try ECPrivateKey(generatingOn: curve)
        let b = try ECPrivateKey(generatingOn: curve)
        let message = Array("SGP.02".utf8)
        let signature = try a.signature(for: message)
        #expect(signature.rawRepresentation.count == 64)
        #expect(a.publicKey.isValidSignature(signature, for: message))
        #expect(!b.publicKey.isValidSignature(signature, for: message))
        #expect(!a.publicKey.isValidSignature(signature, for: Array("SGP.22".utf8)))
        let der = try signature.derRepresentation
        #expect(try ECDSASignature(derRepresentation: der, curve: curve) == signature)
        #expect(try a.sharedSecret(with: b.publicKey) == b.sharedSecret(with: a.publicKey))
        let restored = try ECPrivateKey(pkcs8: a.pkcs8DER.bytes)
        #expect(restored.publicKey == a.publicKey)
        #expect(restored.curve == curve)
        let fromPEM = try ECPrivateKey(pkcs8: Array(a.pkcs8PEM.utf8))
        #expect(fromPEM.publicKey == a.publicKey)
        let fromScalar = try ECPrivateKey(rawScalar: a.rawScalar, curve: curve)
        #expect(fromScalar.publicKey == a.publicKey)
        #expect(try ECPublicKey(x962Representation: a.publicKey.x962Representation, curve: curve) == a.publicKey)
        #expect(!"\(a)".contains(Hex.encode(try a.rawScalar.bytes)))
    }

    @Test("Imported points are copies of the curve's template: each key its own, on many threads at once", arguments: Curve.allCases)
    func importsFromTemplate(curve: Curve) async throws {
        let keys = try (0..<6).map { _ in try ECPrivateKey(generatingOn: curve) }
        #expect(Set(keys.map(\.publicKey.x962Representation)).count == keys.count)
        let message = Array("template".utf8)
        let signatures = try keys.map { try $0.signature(for: message) }
        let points = keys.map(\.publicKey.x962Representation)
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for task in 0..<8 {
                group.addTask {
                    var ok = true
                    for round in 0..<20 {
                        let k = (task + round) % points.count
                        guard let imported = try? ECPublicKey(x962Representation: points[k], curve: curve) else { return false }
                        ok = ok && imported.x962Representation == points[k]
                            && imported.isValidSignature(signatures[k], for: message)
                            && !imported.isValidSignature(signatures[(k + 1) % points.count], for: message)
                    }
                    return ok
                }
            }
            return await group.reduce(into: true) { $0 = $0 && $1 }
        }
        #expect(outcomes)
        // A generated key pair is new each time and agrees with an imported copy of its partner.
        let a = try ECPrivateKey(generatingOn: curve), b = try ECPrivateKey(generatingOn: curve)
        #expect(try a.sharedSecret(with: ECPublicKey(x962Representation: b.publicKey.x962Representation, curve: curve))
                == b.sharedSecret(with: a.publicKey))
    }

    @Test("A key's pooled verification contexts give the same answers, failures in between, on many threads", arguments: Curve.allCases)
    func pooledVerification(curve: Curve) async throws {
        let key = try ECPrivateKey(generatingOn: curve)
        let messages = (0..<8).map { Array("message \($0)".utf8) }
        let signatures = try messages.map { try key.signature(for: $0) }
        let zero = try ECDSASignature(rawRepresentation: [UInt8](repeating: 0, count: 64), curve: curve)
        // 8 tasks at once, each alternating good, tampered and malformed checks on the same key: a
        // context left behind by a failure must still verify the next good signature, and never
        // accept a bad one.
        let outcomes = await withTaskGroup(of: [Bool].self) { group in
            for task in 0..<8 {
                group.addTask {
                    var results: [Bool] = []
                    for round in 0..<12 {
                        let k = (task + round) % messages.count
                        results.append(key.publicKey.isValidSignature(signatures[k], for: messages[k]))
                        results.append(!key.publicKey.isValidSignature(signatures[k], for: messages[(k + 1) % messages.count]))
                        results.append(!key.publicKey.isValidSignature(zero, for: messages[k]))
                    }
                    return results
                }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
        #expect(outcomes.count == 8 * 12 * 3)
        #expect(outcomes.allSatisfy { $0 })
    }

    @Test("A P-256 key prepared for repeated verification answers as OpenSSL's EVP verification, on many threads")
    func preparedVerification() async throws {
        // RFC 6979 A.2.5: P-256, SHA-256, message "sample" — a known answer for both paths.
        let rfcKey = try ECPublicKey(x962Representation: hex("04" + "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"
                                                                   + "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299"), curve: .p256)
        let rfcSignature = try ECDSASignature(rawRepresentation: hex("EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
                                                                      + "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"), curve: .p256)
        #expect(rfcKey.isValidSignature(rfcSignature, for: Array("sample".utf8)))
        #expect(rfcKey.prepareForRepeatedVerification())
        #expect(rfcKey.isPreparedForRepeatedVerification)
        #expect(rfcKey.isValidSignature(rfcSignature, for: Array("sample".utf8)))
        #expect(!rfcKey.isValidSignature(rfcSignature, for: Array("samplf".utf8)))

        let signer = try ECPrivateKey(generatingOn: .p256)
        let other = try ECPrivateKey(generatingOn: .p256)
        // Two keys on the same point: one verifies through EVP, the other through the tables.
        let plain = try ECPublicKey(x962Representation: signer.publicKey.x962Representation, curve: .p256)
        let fast = try ECPublicKey(x962Representation: signer.publicKey.x962Representation, curve: .p256)
        #expect(fast.prepareForRepeatedVerification())
        #expect(fast.prepareForRepeatedVerification()) // once built, kept
        #expect(!plain.isPreparedForRepeatedVerification)
        let order = hex("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551")
        func minus(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] { // a - b, 32 bytes, a ≥ b
            var out = [UInt8](repeating: 0, count: 32), borrow = 0
            for i in (0..<32).reversed() {
                let d = Int(a[i]) - Int(b[i]) - borrow
                out[i] = UInt8((d + 256) % 256)
                borrow = d < 0 ? 1 : 0
            }
            return out
        }
        var cases: [(ECDSASignature, [UInt8])] = []
        for k in 0..<64 {
            let message = Array("message \(k)".utf8)
            let signature = try signer.signature(for: message)
            let raw = signature.rawRepresentation
            let r = Array(raw[0..<32]), s = Array(raw[32..<64])
            var flippedR = raw; flippedR[k % 32] ^= 0x01
            var flippedS = raw; flippedS[32 + k % 32] ^= 0x80
            cases.append((signature, message))                                                      // valid
            cases.append((signature, message + [0]))                                                // other message
            cases.append((try ECDSASignature(rawRepresentation: flippedR, curve: .p256), message))   // r changed
            cases.append((try ECDSASignature(rawRepresentation: flippedS, curve: .p256), message))   // s changed
            cases.append((try ECDSASignature(rawRepresentation: r + minus(order, s), curve: .p256), message)) // (r, n-s): also valid
            cases.append((try other.signature(for: message), message))                               // another key
        }
        let zero = [UInt8](repeating: 0, count: 32), ones = [UInt8](repeating: 0xFF, count: 32)
        let one = Array(zero.dropLast()) + [1]
        let sample = try signer.signature(for: Array("edge".utf8)).rawRepresentation
        let (r, s) = (Array(sample[..<32]), Array(sample[32...]))
        // r or s zero, equal to n, or above it; both 1; s = n - 1.
        let edges: [[UInt8]] = [zero + s, r + zero, order + s, r + order, ones + ones, one + one, r + minus(order, one)]
        for raw in edges {
            cases.append((try ECDSASignature(rawRepresentation: raw, curve: .p256), Array("edge".utf8)))
        }
        let expected = cases.map { plain.isValidSignature($0.0, for: $0.1) }
        #expect(expected.filter { $0 }.count == 2 * 64)
        // The table itself answers every case (never -1, never nil), as EVP does.
        #expect(cases.map { fast.fixedBaseVerification($0.0, digest: SHA256.hash($0.1)) } == expected.map { $0 ? 1 : 0 })
        #expect(plain.fixedBaseVerification(cases[0].0, digest: SHA256.hash(cases[0].1)) == nil)
        // 4 tasks at once through the shared table.
        let all = cases
        let answers = await withTaskGroup(of: [Bool].self) { group in
            for _ in 0..<4 { group.addTask { all.map { fast.isValidSignature($0.0, for: $0.1) } } }
            return await group.reduce(into: []) { $0.append(contentsOf: $1) }
        }
        #expect(answers == Array([[Bool]](repeating: expected, count: 4).joined()))
        // brainpoolP256r1 keys are not prepared (OpenSSL's generic code is slower with a table) and still verify.
        let brainpool = try ECPrivateKey(generatingOn: .brainpoolP256r1)
        #expect(!brainpool.publicKey.prepareForRepeatedVerification())
        #expect(brainpool.publicKey.isValidSignature(try brainpool.signature(for: [1, 2, 3]), for: [1, 2, 3]))
    }

    @Test("Real-card vector 4: ECDH(eSK.DP, PK.ECASD) gives the logged shared secret")
    func realCardECDH() throws {
        let ecasd = try ECPublicKey(x962Representation: hex("043F157A6242EC54888EB50967BD84D1A885E51D66B2F6CD135354724C91D790EDB48B015F6B272DF50E49EAB2E1383BF0EEB0E9848543B971397D274D88E8EA77"), curve: .p256)
        let esk = try ECPrivateKey(rawScalar: hex("F779BB7D138DEC67FA9E379D4B23BA1533B1D81CB11D1EAFC5AF85C2BB55C21B"), curve: .p256)
        #expect(try esk.sharedSecret(with: ecasd).bytes == hex("2812b8eedf1ece900668afec0237ffb72d6ca70c00d2c54157466836fd7884ac"))
    }

    @Test("Negative: point off the curve, wrong lengths, zero and out-of-range scalars, bad signatures")
    func negative() throws {
        var point = try ECPrivateKey(generatingOn: .p256).publicKey.x962Representation
        point[40] ^= 0x01
        #expect(throws: CryptoError(code: .invalidKey)) { try ECPublicKey(x962Representation: point, curve: .p256) }
        #expect(throws: CryptoError(code: .invalidKey)) { try ECPublicKey(x962Representation: [0x04] + [UInt8](repeating: 0, count: 64), curve: .p256) }
        #expect(throws: CryptoError(code: .invalidKey)) { try ECPublicKey(x962Representation: [0x04, 1, 2], curve: .brainpoolP256r1) }
        // A P-256 point is not a brainpool point.
        let p256Point = try ECPrivateKey(generatingOn: .p256).publicKey.x962Representation
        #expect(throws: CryptoError(code: .invalidKey)) { try ECPublicKey(x962Representation: p256Point, curve: .brainpoolP256r1) }
        #expect(throws: CryptoError(code: .invalidKey)) { try ECPrivateKey(rawScalar: [UInt8](repeating: 0, count: 32), curve: .p256) }
        #expect(throws: CryptoError(code: .invalidKey)) { try ECPrivateKey(rawScalar: [UInt8](repeating: 0xFF, count: 32), curve: .p256) }
        #expect(throws: CryptoError(code: .invalidSignature)) { try ECDSASignature(rawRepresentation: [1, 2, 3], curve: .p256) }
        #expect(throws: CryptoError(code: .invalidSignature)) { try ECDSASignature(derRepresentation: [0x30, 0x02, 0x01], curve: .p256) }
        #expect(throws: CryptoError(code: .invalidKey)) { try ECPrivateKey(pkcs8: [0x30, 0x03, 0x02, 0x01, 0x00]) }
        let key = try ECPrivateKey(generatingOn: .p256)
        let other = try ECPrivateKey(generatingOn: .brainpoolP256r1)
        #expect(throws: CryptoError(code: .invalidKey)) { try key.sharedSecret(with: other.publicKey) }
        let zeroSignature = try ECDSASignature(rawRepresentation: [UInt8](repeating: 0, count: 64), curve: .p256)
        #expect(!key.publicKey.isValidSignature(zeroSignature, for: [1]))
    }

    @Test("An agreement-only key agrees with the full key pair; 0, n and above are refused", arguments: Curve.allCases)
    func agreementKey(curve: Curve) throws {
        let full = try ECPrivateKey(generatingOn: curve)
        let peer = try ECPrivateKey(generatingOn: curve)
        let agreement = try ECAgreementKey(rawScalar: try full.rawScalar, curve: curve)
        #expect(try agreement.sharedSecret(with: peer.publicKey) == (try peer.sharedSecret(with: full.publicKey)))
        #expect(try ECAgreementKey(full).sharedSecret(with: peer.publicKey) == (try full.sharedSecret(with: peer.publicKey)))
        var above = curve.order
        above[31] &+= 1
        var below = curve.order
        below[31] &-= 1
        for bad in [[UInt8](repeating: 0, count: 32), curve.order, above, [UInt8](repeating: 0xFF, count: 32), [UInt8](repeating: 1, count: 33)] {
            #expect(throws: CryptoError(code: .invalidKey)) { _ = try ECAgreementKey(rawScalar: bad, curve: curve) }
            #expect(throws: CryptoError.self) { _ = try ECPrivateKey(rawScalar: bad, curve: curve) }
        }
        #expect(curve.isValidScalar(below) && curve.isValidScalar([1]))
        _ = try ECPrivateKey(rawScalar: below, curve: curve)
    }
}
