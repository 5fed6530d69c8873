import Foundation
import M2MCore
import Testing

@Suite("Subject and reason codes")
struct StatusCodeTests {
    static let tables = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Tables")

    static func rows(_ name: String) throws -> [[String]] {
        let text = try String(contentsOf: tables.appendingPathComponent(name), encoding: .utf8)
        return text.split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    @Test("SubjectCode table matches Tables/SubjectCode.csv row for row")
    func subjectTable() throws {
        let expected = try Self.rows("SubjectCode.csv")
        #expect(SubjectCode.table.map { [$0.code.rawValue, $0.name, $0.evidence.rawValue] } == expected)
    }

    @Test("ReasonCode table matches Tables/ReasonCode.csv row for row")
    func reasonTable() throws {
        let expected = try Self.rows("ReasonCode.csv")
        #expect(ReasonCode.table.map { [$0.code.rawValue, $0.name, $0.evidence.rawValue] } == expected)
    }

    @Test("A broader code matches its sub-codes, not its siblings")
    func hierarchy() {
        switch SubjectCode.eid {
        case .euicc: break
        default: Issue.record("8.1 must match 8.1.1")
        }
        #expect(SubjectCode.euicc ~= .eid)
        #expect(!(SubjectCode.euicc ~= .profile))
        #expect(!(SubjectCode(rawValue: "8.1")! ~= SubjectCode(rawValue: "8.10")!))
        #expect(ReasonCode.formatError ~= .mandatoryElementMissing)
        #expect(SubjectCode(rawValue: "8.1.1.7")!.meaning == "The EID of the eUICC")
        #expect(SubjectCode(rawValue: "x") == nil)
    }

    @Test("FunctionExecutionStatus reads as the spec words it")
    func statusText() {
        let status = FunctionExecutionStatus.failed(.pol2, .refused, identifier: "8944500000000000121", message: "disabling not allowed")
        #expect(status.description == "FAILED 8.2.3/3.8 (The Profile's POL2 (enforced by the SM-SR): Refused (for example by policy)) [8944500000000000121]: disabling not allowed")
        #expect(FunctionExecutionStatus.success.description == "EXECUTED_SUCCESS")
    }
}
