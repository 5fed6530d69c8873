// XML forms of the v4 PLMA and ONC structures (xsd/m2mrsp-v4.xsd, our design: docs/wire.md).

public import M2MCore
public import M2MXML

extension PLMA: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        self = try ChildReader.read(element, path: path) { (r) throws(SOAPError) in
            let mno: OID = try r.required("Mno-id")
            let sp: OID = try r.required("M2MSP-id")
            let type: String100 = try r.required("ProfileType")
            let functions: [PLMAFunction] = try r.repeated("AuthorisedFunction")
            let notifications: [NotificationType] = try r.repeated("AuthorisedNotification")
            try r.finish()
            return Self(mnoID: mno, m2mSPID: sp, profileType: type, authorisedFunctions: functions, authorisedNotifications: notifications)
        }
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.element("rps:Mno-id", mnoID)
        w.element("rps:M2MSP-id", m2mSPID)
        w.element("rps:ProfileType", profileType)
        w.each("rps:AuthorisedFunction", authorisedFunctions)
        w.each("rps:AuthorisedNotification", authorisedNotifications)
        w.endElement()
    }
}

extension ONC: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        self = try ChildReader.read(element, path: path) { (r) throws(SOAPError) in
            let mno: OID = try r.required("Mno-id")
            let type: String100 = try r.required("ProfileType")
            let discarded: [NotificationType] = try r.repeated("DiscardedNotification")
            try r.finish()
            return Self(mnoID: mno, profileType: type, discardedNotifications: discarded)
        }
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.element("rps:Mno-id", mnoID)
        w.element("rps:ProfileType", profileType)
        w.each("rps:DiscardedNotification", discardedNotifications)
        w.endElement()
    }
}
