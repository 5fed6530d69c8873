// XML forms of M2MCore's structured types, element by element as euicc.common.types.xsd defines
// them (order, spelling, cardinality). Each type reads with a ChildReader and writes in order.

public import M2MCore
public import M2MXML

extension FunctionExecutionStatus: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        self = try ChildReader.read(element, path: path) { (r) throws(SOAPError) in
            let status: Status = try r.required("Status")
            let data: StatusCodeData? = try r.optional("StatusCodeData")
            try r.finish()
            return Self(status: status, statusCodeData: data)
        }
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
        self = try ChildReader.read(element, path: path) { (r) throws(SOAPError) in
            let subject: SubjectCode = try r.required("Subject")
            let reason: ReasonCode = try r.required("Reason")
            let identifier: String? = try r.optional("SubjectIdentifier")
            let message: String? = try r.optional("Message")
            try r.finish()
            return Self(subject: subject, reason: reason, subjectIdentifier: identifier, message: message)
        }
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
        self = try ChildReader.read(element, path: path) { (r) throws(SOAPError) in
            let imsi: IMSI? = try r.optional("Imsi")
            let msisdn: MSISDN? = try r.optional("Msisdn")
            try r.finish()
            return Self(imsi: imsi, msisdn: msisdn)
        }
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
        self = try ChildReader.read(element, path: path) { (r) throws(SOAPError) in
            let rules: [Rule] = try r.repeated("Rule")
            try r.finish()
            return Self(rules: rules)
        }
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.each("rps:Rule", rules)
        w.endElement()
    }
}

extension POL2.Rule: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        self = try ChildReader.read(element, path: path) { (r) throws(SOAPError) in
            let subject: Subject = try r.required("Subject")
            let action: Action = try r.required("Action")
            let qualification: Qualification = try r.required("Qualification")
            try r.finish()
            return Self(subject: subject, action: action, qualification: qualification)
        }
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
        self = try ChildReader.read(element, path: path) { (r) throws(SOAPError) in
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
            return Self(
                iccid: iccid, isdPAID: aid, mnoID: mno, fallbackAttribute: fallback, subscriptionAddress: address, state: state,
                smdpID: smdp, profileType: type, allocatedMemory: allocated, freeMemory: free, pol2: pol2)
        }
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
        self = try ChildReader.read(element, path: path) { (r) throws(SOAPError) in
            let aid: AID = try r.required("Aid")
            let tars: [TAR] = try r.repeated("Tar")
            let sin: HexBinary = try r.required("Sin")
            let sdin: HexBinary = try r.required("Sdin")
            let role: Role = try r.required("Role")
            let keysets: [Keyset] = try r.repeated("Keyset", min: 1, max: 127)
            try r.finish()
            guard sin.count <= 16, sdin.count <= 16 else { throw SOAPError.invalid(r.path, "Sin and Sdin are at most 16 bytes") }
            return Self(aid: aid, tars: tars, sin: sin, sdin: sdin, role: role, keysets: keysets)
        }
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
        self = try ChildReader.read(element, path: path) { (r) throws(SOAPError) in
            let version: Int = try r.required("Version")
            guard (1...127).contains(version) else { throw SOAPError.invalid("\(r.path)/Version", "key set version is 1 to 127") }
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
                guard items.count <= 128 else { throw SOAPError.invalid(r.path, "at most 128 keys or certificates") }
            }
            try r.finish()
            return Self(version: version, type: type, counter: counter, items: items)
        }
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
        self = try ChildReader.read(element, path: path) { (r) throws(SOAPError) in
            let kcv: HexBinary = try HexBinary(xmlText: try element.requiredAttribute("kcv", path: r.path), path: "\(r.path)/@kcv")
            let index: Int = try r.required("Index")
            guard (0...127).contains(index) else { throw SOAPError.invalid("\(r.path)/Index", "key index is 0 to 127") }
            let components: [Component] = try r.repeated("KeyComponents", min: 1)
            try r.finish()
            return Self(kcv: kcv, index: index, components: components)
        }
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.attribute("kcv", kcv.text)
        w.element("rps:Index", index)
        w.each("rps:KeyComponents", components)
        w.endElement()
    }
}

extension Key.Component: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        self = try ChildReader.read(element, path: path) { (r) throws(SOAPError) in
            let type = try HexBinary(xmlText: try element.requiredAttribute("type", path: r.path), path: "\(r.path)/@type")
            guard type.count == 1 else { throw SOAPError.invalid("\(r.path)/@type", "a key type is one byte") }
            let value = try HexBinary(xmlText: try element.requiredAttribute("value", path: r.path), path: "\(r.path)/@value")
            try r.finish()
            return Self(type: type.bytes[0], value: value)
        }
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.attribute("type", Hex.encode([type]))
        w.attribute("value", value.text)
        w.endElement()
    }
}

extension GPCertificateReference: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        self = try ChildReader.read(element, path: path) { (r) throws(SOAPError) in
            let index: Int = try r.required("Index")
            let ca: OID = try r.required("CaId")
            let value: HexBinary = try r.required("Value")
            try r.finish()
            return Self(index: index, caID: ca, value: value)
        }
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
        self = try ChildReader.read(element, path: path) { (r) throws(SOAPError) in
            let cattp: Bool = try r.required("CattpSupport")
            let cattpVersion: ThreeDigitVersion? = try r.optional("CattpVersion")
            let http: Bool = try r.required("HttpSupport")
            let httpVersion: ThreeDigitVersion? = try r.optional("HttpVersion")
            let securePacket: ThreeDigitVersion = try r.required("SecurePacketVersion")
            let rsp: ThreeDigitVersion = try r.required("RemoteProvisioningVersion")
            try r.finish()
            return Self(
                cattpSupport: cattp, cattpVersion: cattpVersion, httpSupport: http, httpVersion: httpVersion,
                securePacketVersion: securePacket, remoteProvisioningVersion: rsp)
        }
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
        self = try ChildReader.read(element, path: path) { (r) throws(SOAPError) in
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
            return Self(
                eid: eid, eumID: eum, productionDate: date, platformType: platformType, platformVersion: platformVersion,
                isdPLoadFileAID: loadFile, isdPModuleAID: module, ecasd: ecasd, capabilities: capabilities)
        }
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
        self = try ChildReader.read(element, path: path) { (r) throws(SOAPError) in
            let eid: EID = try r.required("Eid")
            let smsr: OID = try r.required("Smsr-id")
            let date: Timestamp = try r.required("OperationDate")
            let type: HexBinary = try r.required("OperationType")
            guard type.count == 2 else { throw SOAPError.invalid("\(r.path)/OperationType", "an operation type is 2 bytes") }
            let requester: OID? = try r.optional("RequesterId")
            let status: FunctionExecutionStatus? = try r.optional("OperationExecutionStatus")
            let aid: AID? = try r.optional("Isd-p-aid")
            let iccid: ICCID? = try r.optional("Iccid")
            let imei: HexBinary? = try r.optional("Imei")
            let meid: HexBinary? = try r.optional("Meid")
            try r.finish()
            return Self(
                eid: eid, smsrID: smsr, operationDate: date, operationType: type, requesterID: requester,
                operationExecutionStatus: status, isdPAID: aid, iccid: iccid, imei: imei, meid: meid)
        }
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
        self = try ChildReader.read(element, path: path) { (r) throws(SOAPError) in
            let key = try element.requiredAttribute("key", path: r.path)
            guard !key.isEmpty else { throw SOAPError.invalid("\(r.path)/@key", "a property key is not empty") }
            let value = try element.requiredAttribute("value", path: r.path)
            try r.finish()
            return Self(key: key, value: value)
        }
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.attribute("key", key)
        w.attribute("value", value)
        w.endElement()
    }
}

/// The `AdditionalProperties` wrapper: one or more `Property` elements.
public struct PropertyList: XMLValue, Hashable, Codable {
    public var properties: [AdditionalProperty]

    public init(_ properties: [AdditionalProperty]) { self.properties = properties }

    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        properties = try ChildReader.read(element, path: path) { (r) throws(SOAPError) in
            let properties: [AdditionalProperty] = try r.repeated("Property", min: 1)
            try r.finish()
            return properties
        }
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
        self = try ChildReader.read(element, path: path) { (r) throws(SOAPError) in
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
                trail = try ChildReader.read(trailElement, path: { "\(r.path)/AuditTrail" }) { (t) throws(SOAPError) in
                    let records: [AuditTrailRecord] = try t.repeated("Record")
                    try t.finish()
                    return records
                }
            }
            var properties = try r.optional("AdditionalProperties", as: PropertyList.self)?.properties
            try r.finish()
            guard remaining >= 0, available >= 0 else { throw SOAPError.invalid(r.path, "memory sizes are not negative") }
            if let list = properties {
                // The emergency attribute travels as a property naming the Profile's ICCID.
                var rest: [AdditionalProperty] = []
                for property in list {
                    guard property.key == EIS.emergencyProfilePropertyKey else {
                        rest.append(property)
                        continue
                    }
                    for index in profiles.indices where profiles[index].iccid.text == property.value {
                        profiles[index].emergencyProfileAttribute = true
                    }
                }
                properties = rest.isEmpty ? nil : rest
            }
            return Self(
                eumSignedInfo: signedInfo, eumSignature: signature, remainingMemory: remaining,
                availableMemoryForProfiles: available, lastAuditDate: audit, smsrID: smsr, profiles: profiles, isdR: isdR,
                auditTrail: trail, additionalProperties: properties)
        }
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
        // Our properties, then one per emergency Profile (as PropertyList would write them).
        let hasEmergency = profiles.contains { $0.emergencyProfileAttribute }
        if !(additionalProperties ?? []).isEmpty || hasEmergency {
            w.startElement("rps:AdditionalProperties")
            w.each("rps:Property", additionalProperties ?? [])
            for profile in profiles where profile.emergencyProfileAttribute {
                w.element("rps:Property", AdditionalProperty(key: EIS.emergencyProfilePropertyKey, value: profile.iccid.text))
            }
            w.endElement()
        }
        w.endElement()
    }
}
