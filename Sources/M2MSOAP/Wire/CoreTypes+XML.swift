// XML forms of M2MCore's structured types, element by element as euicc.common.types.xsd defines
// them (order, spelling, cardinality). Each type reads with a ChildReader and writes in order.

public import M2MCore
public import M2MXML

extension FunctionExecutionStatus: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        let path = path()
        var r = ChildReader(element, path: path)
        let status: Status = try r.required("Status")
        let data: StatusCodeData? = try r.optional("StatusCodeData")
        try r.finish()
        self.init(status: status, statusCodeData: data)
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.element("rps:Status", status)
        w.optional("rps:StatusCodeData", statusCodeData)
        w.endElement()
    }
}

extension FunctionExecutionStatus.StatusCodeData: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        let path = path()
        var r = ChildReader(element, path: path)
        let subject: SubjectCode = try r.required("Subject")
        let reason: ReasonCode = try r.required("Reason")
        let identifier: String? = try r.optional("SubjectIdentifier")
        let message: String? = try r.optional("Message")
        try r.finish()
        self.init(subject: subject, reason: reason, subjectIdentifier: identifier, message: message)
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.element("rps:Subject", subject)
        w.element("rps:Reason", reason)
        w.optional("rps:SubjectIdentifier", subjectIdentifier)
        w.optional("rps:Message", message)
        w.endElement()
    }
}

extension SubscriptionAddress: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        let path = path()
        var r = ChildReader(element, path: path)
        let imsi: IMSI? = try r.optional("Imsi")
        let msisdn: MSISDN? = try r.optional("Msisdn")
        try r.finish()
        self.init(imsi: imsi, msisdn: msisdn)
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.optional("rps:Imsi", imsi)
        w.optional("rps:Msisdn", msisdn)
        w.endElement()
    }
}

extension POL2: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        let path = path()
        var r = ChildReader(element, path: path)
        let rules: [Rule] = try r.repeated("Rule")
        try r.finish()
        self.init(rules: rules)
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.each("rps:Rule", rules)
        w.endElement()
    }
}

extension POL2.Rule: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        let path = path()
        var r = ChildReader(element, path: path)
        let subject: Subject = try r.required("Subject")
        let action: Action = try r.required("Action")
        let qualification: Qualification = try r.required("Qualification")
        try r.finish()
        self.init(subject: subject, action: action, qualification: qualification)
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.element("rps:Subject", subject)
        w.element("rps:Action", action)
        w.element("rps:Qualification", qualification)
        w.endElement()
    }
}

extension ProfileInfo: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        let path = path()
        var r = ChildReader(element, path: path)
        let iccid: ICCID = try r.required("Iccid")
        let aid: AID = try r.required("Isd-p-aid")
        let mno: OID = try r.required("Mno-id")
        let fallback: Bool = try r.required("FallbackAttribute")
        let address: SubscriptionAddress = try r.required("SubscriptionAddress")
        let state: ProfileState = try r.required("State")
        let smdp: OID? = try r.optional("Smdp-id")
        let type: String100? = try r.optional("ProfileType")
        let allocated: Int = try r.required("AllocatedMemory")
        let free: Int? = try r.optional("FreeMemory")
        let pol2: POL2 = try r.required("pol2")
        try r.finish()
        self.init(
            iccid: iccid, isdPAID: aid, mnoID: mno, fallbackAttribute: fallback, subscriptionAddress: address, state: state,
            smdpID: smdp, profileType: type, allocatedMemory: allocated, freeMemory: free, pol2: pol2)
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.element("rps:Iccid", iccid)
        w.element("rps:Isd-p-aid", isdPAID)
        w.element("rps:Mno-id", mnoID)
        w.element("rps:FallbackAttribute", fallbackAttribute)
        w.element("rps:SubscriptionAddress", subscriptionAddress)
        w.element("rps:State", state)
        w.optional("rps:Smdp-id", smdpID)
        w.optional("rps:ProfileType", profileType)
        w.element("rps:AllocatedMemory", allocatedMemory)
        w.optional("rps:FreeMemory", freeMemory)
        w.element("rps:pol2", pol2)
        w.endElement()
    }
}

extension SecurityDomain: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        let path = path()
        var r = ChildReader(element, path: path)
        let aid: AID = try r.required("Aid")
        let tars: [TAR] = try r.repeated("Tar")
        let sin: HexBinary = try r.required("Sin")
        let sdin: HexBinary = try r.required("Sdin")
        let role: Role = try r.required("Role")
        let keysets: [Keyset] = try r.repeated("Keyset", min: 1, max: 127)
        try r.finish()
        guard sin.count <= 16, sdin.count <= 16 else { throw SOAPError.invalid(path, "Sin and Sdin are at most 16 bytes") }
        self.init(aid: aid, tars: tars, sin: sin, sdin: sdin, role: role, keysets: keysets)
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.element("rps:Aid", aid)
        w.each("rps:Tar", tars)
        w.element("rps:Sin", sin)
        w.element("rps:Sdin", sdin)
        w.element("rps:Role", role)
        w.each("rps:Keyset", keysets)
        w.endElement()
    }
}

extension Keyset: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        let path = path()
        var r = ChildReader(element, path: path)
        let version: Int = try r.required("Version")
        guard (1...127).contains(version) else { throw SOAPError.invalid("\(path)/Version", "key set version is 1 to 127") }
        let type: Usage? = try r.optional("Type")
        let counter: Int? = try r.optional("Cntr")
        var items: [Item] = []
        while true {
            if let key: Key = try r.optional("Key") {
                items.append(.key(key))
            } else if let certificate: GPCertificateReference = try r.optional("Certificate") {
                items.append(.certificate(certificate))
            } else {
                break
            }
            guard items.count <= 128 else { throw SOAPError.invalid(path, "at most 128 keys or certificates") }
        }
        try r.finish()
        self.init(version: version, type: type, counter: counter, items: items)
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.element("rps:Version", version)
        w.optional("rps:Type", type)
        w.optional("rps:Cntr", counter)
        for item in items {
            switch item {
            case .key(let key): w.element("rps:Key", key)
            case .certificate(let certificate): w.element("rps:Certificate", certificate)
            }
        }
        w.endElement()
    }
}

extension Key: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        let path = path()
        let kcv: HexBinary = try HexBinary(xmlText: try element.requiredAttribute("kcv", path: path), path: "\(path)/@kcv")
        var r = ChildReader(element, path: path)
        let index: Int = try r.required("Index")
        guard (0...127).contains(index) else { throw SOAPError.invalid("\(path)/Index", "key index is 0 to 127") }
        let components: [Component] = try r.repeated("KeyComponents", min: 1)
        try r.finish()
        self.init(kcv: kcv, index: index, components: components)
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname, attributes: [("kcv", kcv.text)])
        w.element("rps:Index", index)
        w.each("rps:KeyComponents", components)
        w.endElement()
    }
}

extension Key.Component: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        let path = path()
        let type = try HexBinary(xmlText: try element.requiredAttribute("type", path: path), path: "\(path)/@type")
        guard type.count == 1 else { throw SOAPError.invalid("\(path)/@type", "a key type is one byte") }
        let value = try HexBinary(xmlText: try element.requiredAttribute("value", path: path), path: "\(path)/@value")
        try ChildReader(element, path: path).finish()
        self.init(type: type.bytes[0], value: value)
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname, attributes: [("type", Hex.encode([type])), ("value", value.text)])
        w.endElement()
    }
}

extension GPCertificateReference: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        let path = path()
        var r = ChildReader(element, path: path)
        let index: Int = try r.required("Index")
        let ca: OID = try r.required("CaId")
        let value: HexBinary = try r.required("Value")
        try r.finish()
        self.init(index: index, caID: ca, value: value)
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.element("rps:Index", index)
        w.element("rps:CaId", caID)
        w.element("rps:Value", value)
        w.endElement()
    }
}

extension EUICCCapabilities: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        let path = path()
        var r = ChildReader(element, path: path)
        let cattp: Bool = try r.required("CattpSupport")
        let cattpVersion: ThreeDigitVersion? = try r.optional("CattpVersion")
        let http: Bool = try r.required("HttpSupport")
        let httpVersion: ThreeDigitVersion? = try r.optional("HttpVersion")
        let securePacket: ThreeDigitVersion = try r.required("SecurePacketVersion")
        let rsp: ThreeDigitVersion = try r.required("RemoteProvisioningVersion")
        try r.finish()
        self.init(
            cattpSupport: cattp, cattpVersion: cattpVersion, httpSupport: http, httpVersion: httpVersion,
            securePacketVersion: securePacket, remoteProvisioningVersion: rsp)
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.element("rps:CattpSupport", cattpSupport)
        w.optional("rps:CattpVersion", cattpVersion)
        w.element("rps:HttpSupport", httpSupport)
        w.optional("rps:HttpVersion", httpVersion)
        w.element("rps:SecurePacketVersion", securePacketVersion)
        w.element("rps:RemoteProvisioningVersion", remoteProvisioningVersion)
        w.endElement()
    }
}

extension EUMSignedInfo: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        let path = path()
        var r = ChildReader(element, path: path)
        let eid: EID = try r.required("Eid")
        let eum: OID = try r.required("Eum-id")
        let date: Timestamp = try r.required("ProductionDate")
        let platformType: String100 = try r.required("PlatformType")
        let platformVersion: ThreeDigitVersion = try r.required("PlatformVersion")
        let loadFile: AID = try r.required("Isd-p-loadfile-aid")
        let module: AID = try r.required("Isd-p-module-aid")
        let ecasd: SecurityDomain = try r.required("Ecasd")
        let capabilities: EUICCCapabilities = try r.required("EuiccCapabilities")
        try r.finish()
        self.init(
            eid: eid, eumID: eum, productionDate: date, platformType: platformType, platformVersion: platformVersion,
            isdPLoadFileAID: loadFile, isdPModuleAID: module, ecasd: ecasd, capabilities: capabilities)
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.element("rps:Eid", eid)
        w.element("rps:Eum-id", eumID)
        w.element("rps:ProductionDate", productionDate)
        w.element("rps:PlatformType", platformType)
        w.element("rps:PlatformVersion", platformVersion)
        w.element("rps:Isd-p-loadfile-aid", isdPLoadFileAID)
        w.element("rps:Isd-p-module-aid", isdPModuleAID)
        w.element("rps:Ecasd", ecasd)
        w.element("rps:EuiccCapabilities", capabilities)
        w.endElement()
    }
}

extension AuditTrailRecord: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        let path = path()
        var r = ChildReader(element, path: path)
        let eid: EID = try r.required("Eid")
        let smsr: OID = try r.required("Smsr-id")
        let date: Timestamp = try r.required("OperationDate")
        let type: HexBinary = try r.required("OperationType")
        guard type.count == 2 else { throw SOAPError.invalid("\(path)/OperationType", "an operation type is 2 bytes") }
        let requester: OID? = try r.optional("RequesterId")
        let status: FunctionExecutionStatus? = try r.optional("OperationExecutionStatus")
        let aid: AID? = try r.optional("Isd-p-aid")
        let iccid: ICCID? = try r.optional("Iccid")
        let imei: HexBinary? = try r.optional("Imei")
        let meid: HexBinary? = try r.optional("Meid")
        try r.finish()
        self.init(
            eid: eid, smsrID: smsr, operationDate: date, operationType: type, requesterID: requester,
            operationExecutionStatus: status, isdPAID: aid, iccid: iccid, imei: imei, meid: meid)
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.element("rps:Eid", eid)
        w.element("rps:Smsr-id", smsrID)
        w.element("rps:OperationDate", operationDate)
        w.element("rps:OperationType", operationType)
        w.optional("rps:RequesterId", requesterID)
        w.optional("rps:OperationExecutionStatus", operationExecutionStatus)
        w.optional("rps:Isd-p-aid", isdPAID)
        w.optional("rps:Iccid", iccid)
        w.optional("rps:Imei", imei)
        w.optional("rps:Meid", meid)
        w.endElement()
    }
}

extension AdditionalProperty: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        let path = path()
        let key = try element.requiredAttribute("key", path: path)
        guard !key.isEmpty else { throw SOAPError.invalid("\(path)/@key", "a property key is not empty") }
        let value = try element.requiredAttribute("value", path: path)
        try ChildReader(element, path: path).finish()
        self.init(key: key, value: value)
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname, attributes: [("key", key), ("value", value)])
        w.endElement()
    }
}

/// The `AdditionalProperties` wrapper: one or more `Property` elements.
public struct PropertyList: XMLValue, Hashable, Codable {
    public var properties: [AdditionalProperty]

    public init(_ properties: [AdditionalProperty]) { self.properties = properties }

    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        let path = path()
        var r = ChildReader(element, path: path)
        properties = try r.repeated("Property", min: 1)
        try r.finish()
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.each("rps:Property", properties)
        w.endElement()
    }

    public init(from decoder: any Decoder) throws {
        properties = try decoder.singleValueContainer().decode([AdditionalProperty].self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(properties)
    }
}

extension EIS: XMLValue {
    /// The AdditionalProperty key that carries the v4 Emergency Profile Attribute (value: the ICCID).
    public static let emergencyProfilePropertyKey = "urn:m2mrsp:EmergencyProfileAttribute"

    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        let path = path()
        var r = ChildReader(element, path: path)
        let signedInfo: EUMSignedInfo = try r.required("EumSignedInfo")
        let signature: XMLSignature = try r.required("EumSignature")
        let remaining: Int = try r.required("RemainingMemory")
        let available: Int = try r.required("AvailableMemoryForProfiles")
        let audit: Timestamp? = try r.optional("LastAuditDate")
        let smsr: OID = try r.required("Smsr-id")
        var profiles: [ProfileInfo] = try r.repeated("ProfileInfo")
        let isdR: SecurityDomain = try r.required("Isd-r")
        var trail: [AuditTrailRecord]?
        if let trailElement = try r.next("AuditTrail") {
            var t = ChildReader(trailElement, path: "\(path)/AuditTrail")
            trail = try t.repeated("Record")
            try t.finish()
        }
        var properties = try r.optional("AdditionalProperties", as: PropertyList.self)?.properties
        try r.finish()
        guard remaining >= 0, available >= 0 else { throw SOAPError.invalid(path, "memory sizes are not negative") }
        if let list = properties {
            let emergency = Set(list.filter { $0.key == EIS.emergencyProfilePropertyKey }.map(\.value))
            for index in profiles.indices where emergency.contains(profiles[index].iccid.text) {
                profiles[index].emergencyProfileAttribute = true
            }
            let rest = list.filter { $0.key != EIS.emergencyProfilePropertyKey }
            properties = rest.isEmpty ? nil : rest
        }
        self.init(
            eumSignedInfo: signedInfo, eumSignature: signature, remainingMemory: remaining,
            availableMemoryForProfiles: available, lastAuditDate: audit, smsrID: smsr, profiles: profiles, isdR: isdR,
            auditTrail: trail, additionalProperties: properties)
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.element("rps:EumSignedInfo", eumSignedInfo)
        w.element("rps:EumSignature", eumSignature)
        w.element("rps:RemainingMemory", remainingMemory)
        w.element("rps:AvailableMemoryForProfiles", availableMemoryForProfiles)
        w.optional("rps:LastAuditDate", lastAuditDate)
        w.element("rps:Smsr-id", smsrID)
        w.each("rps:ProfileInfo", profiles)
        w.element("rps:Isd-r", isdR)
        if let trail = auditTrail {
            w.startElement("rps:AuditTrail")
            w.each("rps:Record", trail)
            w.endElement()
        }
        let emergency = profiles.filter(\.emergencyProfileAttribute).map {
            AdditionalProperty(key: EIS.emergencyProfilePropertyKey, value: $0.iccid.text)
        }
        let properties = (additionalProperties ?? []) + emergency
        if !properties.isEmpty { w.element("rps:AdditionalProperties", PropertyList(properties)) }
        w.endElement()
    }
}
