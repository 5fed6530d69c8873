import Foundation
import M2MCore
import M2MCrypto
import Testing

func hex(_ text: String) -> [UInt8] { Hex.decode(text.replacingOccurrences(of: " ", with: ""))! }

enum Vectors {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Vectors")

    static func load<T: Decodable>(_ path: String, as type: T.Type = T.self) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: folder.appendingPathComponent(path)))
    }
}

@Suite("Primitives")
struct PrimitiveTests {
    @Test("SHA-256 FIPS 180-2 vector")
    func sha256() {
        #expect(SHA256.hash(Array("abc".utf8)) == hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"))
    }

    struct CMACVectors: Decodable {
        struct Case: Decodable { let message: String; let mac: String }
        let key: String
        let cases: [Case]
    }

    @Test("AES-CMAC: NIST SP 800-38B / RFC 4493 vectors")
    func cmac() throws {
        let v: CMACVectors = try Vectors.load("nist-cmac/vectors.json")
        let cmac = try AESCMAC(key: hex(v.key))
        for c in v.cases {
            #expect(cmac.mac(hex(c.message)) == hex(c.mac))
            // Split input gives the same MAC.
            let m = hex(c.message)
            #expect(cmac.mac(Array(m.prefix(7)), Array(m.dropFirst(7))) == hex(c.mac))
        }
        #expect(throws: CryptoError(code: .invalidKey)) { try AESCMAC(key: [UInt8](repeating: 0, count: 15)) }
    }

    struct X963Vectors: Decodable {
        struct Case: Decodable { let z: String; let shared_info: String; let key_data: String }
        let cases: [Case]
    }

    @Test("X9.63 KDF (SHA-256): NIST CAVS vectors")
    func x963() throws {
        let v: X963Vectors = try Vectors.load("cavs-x963/vectors.json")
        for c in v.cases {
            let out = try X963KDF.derive(sharedSecret: hex(c.z), sharedInfo: hex(c.shared_info), length: hex(c.key_data).count)
            #expect(out.bytes == hex(c.key_data))
        }
    }

    @Test("AES-CBC and ECB round trip; 3DES two- and three-key; KCV")
    func blockCiphers() throws {
        let key = hex("000102030405060708090a0b0c0d0e0f")
        // FIPS 197 C.1 (AES-128 ECB).
        #expect(try BlockCipher.aesECBEncryptBlock(key: key, block: hex("00112233445566778899aabbccddeeff")) == hex("69c4e0d86a7b0430d8cdb78070b4c55a"))
        let iv = [UInt8](repeating: 7, count: 16)
        let data = (0..<64).map { UInt8($0) }
        let cipher = try BlockCipher.cbc(.aes, encrypt: true, key: key, iv: iv, data: data)
        #expect(cipher != data)
        #expect(try BlockCipher.cbc(.aes, encrypt: false, key: key, iv: iv, data: cipher) == data)
        #expect(throws: CryptoError(code: .invalidInput)) { try BlockCipher.cbc(.aes, encrypt: true, key: key, iv: iv, data: [1, 2, 3]) }
        let des2 = hex("0123456789abcdeffedcba9876543210")
        let des3 = des2 + hex("0123456789abcdef")
        let zeros = [UInt8](repeating: 0, count: 8)
        #expect(try BlockCipher.cbc(.tripleDES, encrypt: true, key: des2, iv: zeros, data: data)
                == BlockCipher.cbc(.tripleDES, encrypt: true, key: des3, iv: zeros, data: data))
        // pySim compute_kcv_aes: the first 3 bytes of AES(key, 01×16).
        #expect(try KeyCheckValue.aes(key).count == 3)
        #expect(try KeyCheckValue.aes(key) == Array(BlockCipher.aesECBEncryptBlock(key: key, block: [UInt8](repeating: 1, count: 16)).prefix(3)))
    }

    @Test("SecureBytes redacts and compares in constant time")
    func secureBytes() {
        let a = SecureBytes([1, 2, 3])
        #expect("\(a)" == "SecureBytes(3 bytes redacted)")
        #expect(a == SecureBytes([1, 2, 3]))
        #expect(a != SecureBytes([1, 2, 4]))
        #expect(a[1..<3].bytes == [2, 3])
        #expect(ConstantTime.equal([UInt8](), [UInt8]()))
        #expect(!ConstantTime.equal([1], [1, 2]))
        #expect(SecureRandom.bytes(32) != SecureRandom.bytes(32))
    }
}
