// SGP.02 reason codes (why a function failed or warned).
// One constant per row; `meaning` quotes the spec's wording. Rows tagged `unverified` are our
// best reading of SGP.02 (spec/sgp02-offcard.md §3.4) and must be checked against the PDF.
// Checked by Tests/M2MCoreTests/Tables/ReasonCode.csv.

extension ReasonCode {
    /// 1 Access Error: Access error.
    public static let accessError = ReasonCode("1")
    /// 1.1 Unknown (Identification or Authentication): The requester is unknown or not authenticated.
    public static let unknownIdentity = ReasonCode("1.1")
    /// 1.2 Not Allowed (Authorisation): The requester is not authorised.
    public static let notAllowed = ReasonCode("1.2")
    /// 2 Format Error: Format error.
    public static let formatError = ReasonCode("2")
    /// 2.1 Invalid: Invalid value or format.
    public static let invalid = ReasonCode("2.1")
    /// 2.2 Mandatory Element Missing: A mandatory element is missing.
    public static let mandatoryElementMissing = ReasonCode("2.2")
    /// 2.3 Conditional Element Missing: A conditional element is missing.
    public static let conditionalElementMissing = ReasonCode("2.3")
    /// 3 Conditions of Use Not Satisfied: Conditions of use not satisfied.
    public static let conditionsOfUseNotSatisfied = ReasonCode("3")
    /// 3.1 Unsupported: Not supported.
    public static let unsupported = ReasonCode("3.1")
    /// 3.2 Maximum Size Exceeded: A size limit is exceeded. (unverified)
    public static let maximumSizeExceeded = ReasonCode("3.2")
    /// 3.3 Already in Use (Uniqueness): The value is already in use.
    public static let alreadyInUse = ReasonCode("3.3")
    /// 3.4 Invalid Destination: Invalid destination. (unverified)
    public static let invalidDestination = ReasonCode("3.4")
    /// 3.5 Invalid Transition: The state transition is not allowed.
    public static let invalidTransition = ReasonCode("3.5")
    /// 3.6 Related Objects Exist: Related objects exist. (unverified)
    public static let relatedObjectsExist = ReasonCode("3.6")
    /// 3.7 Unavailable: Not available.
    public static let unavailable = ReasonCode("3.7")
    /// 3.8 Refused: Refused (for example by policy).
    public static let refused = ReasonCode("3.8")
    /// 3.9 Unknown: The object is unknown.
    public static let unknown = ReasonCode("3.9")
    /// 3.10 Invalid Association: Invalid association between objects.
    public static let invalidAssociation = ReasonCode("3.10")
    /// 4 Processing Error: Processing error.
    public static let processingError = ReasonCode("4")
    /// 4.2 Execution Error: Execution error.
    public static let executionError = ReasonCode("4.2")
    /// 4.3 Stopped on Warning: Stopped on warning.
    public static let stoppedOnWarning = ReasonCode("4.3")
    /// 4.4 Pending Operation: Busy: another operation is pending on the object. (unverified)
    public static let pendingOperation = ReasonCode("4.4")
    /// 4.8 Insufficient Memory: Insufficient memory.
    public static let insufficientMemory = ReasonCode("4.8")
    /// 4.10 Time to Live Expired: The validity period expired.
    public static let timeToLiveExpired = ReasonCode("4.10")
    /// 5 Transport Error: Transport error.
    public static let transportError = ReasonCode("5")
    /// 5.1 Inaccessible: The target cannot be reached.
    public static let inaccessible = ReasonCode("5.1")
    /// 5.3 Transport Expired: The transport attempt timed out. (unverified)
    public static let transportExpired = ReasonCode("5.3")
    /// 6 Security Error: Security error.
    public static let securityError = ReasonCode("6")
    /// 6.1 Verification Failed: A signature, MAC or certificate did not verify.
    public static let verificationFailed = ReasonCode("6.1")
    /// 6.3 Expired: A security object has expired.
    public static let expired = ReasonCode("6.3")
    /// 6.4 Maximum number of attempts exceeded: Too many attempts.
    public static let maximumAttemptsExceeded = ReasonCode("6.4")

    /// Every row of the table, in spec order.
    public static let table: [StatusCodeEntry<ReasonCode>] = [
        .init(code: .accessError, name: "Access Error", meaning: "Access error", evidence: .confirmed),
        .init(code: .unknownIdentity, name: "Unknown (Identification or Authentication)", meaning: "The requester is unknown or not authenticated", evidence: .confirmed),
        .init(code: .notAllowed, name: "Not Allowed (Authorisation)", meaning: "The requester is not authorised", evidence: .confirmed),
        .init(code: .formatError, name: "Format Error", meaning: "Format error", evidence: .confirmed),
        .init(code: .invalid, name: "Invalid", meaning: "Invalid value or format", evidence: .confirmed),
        .init(code: .mandatoryElementMissing, name: "Mandatory Element Missing", meaning: "A mandatory element is missing", evidence: .confirmed),
        .init(code: .conditionalElementMissing, name: "Conditional Element Missing", meaning: "A conditional element is missing", evidence: .confirmed),
        .init(code: .conditionsOfUseNotSatisfied, name: "Conditions of Use Not Satisfied", meaning: "Conditions of use not satisfied", evidence: .confirmed),
        .init(code: .unsupported, name: "Unsupported", meaning: "Not supported", evidence: .confirmed),
        .init(code: .maximumSizeExceeded, name: "Maximum Size Exceeded", meaning: "A size limit is exceeded", evidence: .unverified),
        .init(code: .alreadyInUse, name: "Already in Use (Uniqueness)", meaning: "The value is already in use", evidence: .confirmed),
        .init(code: .invalidDestination, name: "Invalid Destination", meaning: "Invalid destination", evidence: .unverified),
        .init(code: .invalidTransition, name: "Invalid Transition", meaning: "The state transition is not allowed", evidence: .confirmed),
        .init(code: .relatedObjectsExist, name: "Related Objects Exist", meaning: "Related objects exist", evidence: .unverified),
        .init(code: .unavailable, name: "Unavailable", meaning: "Not available", evidence: .confirmed),
        .init(code: .refused, name: "Refused", meaning: "Refused (for example by policy)", evidence: .confirmed),
        .init(code: .unknown, name: "Unknown", meaning: "The object is unknown", evidence: .confirmed),
        .init(code: .invalidAssociation, name: "Invalid Association", meaning: "Invalid association between objects", evidence: .confirmed),
        .init(code: .processingError, name: "Processing Error", meaning: "Processing error", evidence: .confirmed),
        .init(code: .executionError, name: "Execution Error", meaning: "Execution error", evidence: .confirmed),
        .init(code: .stoppedOnWarning, name: "Stopped on Warning", meaning: "Stopped on warning", evidence: .confirmed),
        .init(code: .pendingOperation, name: "Pending Operation", meaning: "Busy: another operation is pending on the object", evidence: .unverified),
        .init(code: .insufficientMemory, name: "Insufficient Memory", meaning: "Insufficient memory", evidence: .confirmed),
        .init(code: .timeToLiveExpired, name: "Time to Live Expired", meaning: "The validity period expired", evidence: .confirmed),
        .init(code: .transportError, name: "Transport Error", meaning: "Transport error", evidence: .confirmed),
        .init(code: .inaccessible, name: "Inaccessible", meaning: "The target cannot be reached", evidence: .confirmed),
        .init(code: .transportExpired, name: "Transport Expired", meaning: "The transport attempt timed out", evidence: .unverified),
        .init(code: .securityError, name: "Security Error", meaning: "Security error", evidence: .confirmed),
        .init(code: .verificationFailed, name: "Verification Failed", meaning: "A signature, MAC or certificate did not verify", evidence: .confirmed),
        .init(code: .expired, name: "Expired", meaning: "A security object has expired", evidence: .confirmed),
        .init(code: .maximumAttemptsExceeded, name: "Maximum number of attempts exceeded", meaning: "Too many attempts", evidence: .confirmed),
    ]
}
