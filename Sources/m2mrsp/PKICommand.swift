// `m2mrsp pki init`: a complete test PKI (docs/cli/pki.md, docs/pki.md).

import ArgumentParser
import Foundation
import M2MCrypto
import M2MTestKit

struct PKICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki",
        abstract: "Create test PKIs for development, tests and the demo.",
        subcommands: [Init.self]
    )

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a complete TEST PKI: CI, EUM, SM-DP and SM-SR certificates, TLS identities, a sample eUICC.",
            discussion: """
                CI and EUM are X.509 (verifiable with `openssl verify`), CERT.DP.ECDSA and CERT.SR.ECDSA are \
                GlobalPlatform-format certificates signed by the CI, CERT.ECASD.ECKA of the sample eUICC is signed \
                by the EUM. eSIM keys use --curve; TLS keys are P-256. Every key is a labelled test key; each role \
                has its own folder. The CI's private key is written only here.
                """
        )

        @Argument(help: "Directory to create.")
        var directory: String

        @Option(help: "Curve of the eSIM PKI: p256 or brainpoolP256r1.")
        var curve: String = "p256"

        @Flag(help: "Write into an existing, non-empty directory.")
        var force = false

        func run() throws {
            guard let curve = Curve(name: curve) else {
                throw ValidationError("unknown curve '\(self.curve)': use p256 or brainpoolP256r1")
            }
            let url = URL(fileURLWithPath: directory)
            if let contents = try? FileManager.default.contentsOfDirectory(atPath: url.path), !contents.isEmpty, !force {
                throw ValidationError("\(directory) exists and is not empty (use --force to write into it)")
            }
            let pki = try TestPKI.generate(curve: curve)
            // Check before writing: the chains hold.
            try pki.eum.verify(root: pki.ci)
            _ = try EUICCChain.verify(ecasdCertificate: pki.sampleECASDCertificate, eum: pki.eum, ci: pki.ci)
            for certificate in [pki.smdp.certificate, pki.smsr.certificate].compactMap({ $0 }) {
                try GPCertificateVerifier.verify(certificate, issuer: pki.ci.publicKey)
            }
            let files = try pki.write(to: url)
            print("Test PKI on \(curve) written to \(directory) (\(files.count) files). TEST KEYS ONLY.")
            for file in files { print("  \(file)") }
            print("Check the X.509 parts: openssl verify -CAfile \(directory)/ci/ci.crt.pem \(directory)/eum/eum.crt.pem")
        }
    }
}
