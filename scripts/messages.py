"""The SGP.02 function catalogue: every function of ES1, ES2, ES3, ES4, ES4A and ES7 with its
message elements, in schema order. This table is the single source for the generated Swift
message types, our v4 XSD, the Action-URI tables and the golden files (scripts/gen_messages.py).

Where GSMA's schema (xsd/gsma/xsd/euicc.request.ES*.xsd) defines a message, the elements below
copy it exactly (names, order, cardinality, including its inconsistent spellings). The rest
(source "m2mrsp") is our design in the same style, documented in docs/wire.md.

Field: (xml_name, swift_name, type, cardinality) with cardinality "1", "?", "*" or "+".
"""

# Shared field shapes ---------------------------------------------------------------------
EID = ("Eid", "eid", "EID", "1")
ICCID = ("Iccid", "iccid", "ICCID", "1")
ICCID_OPT = ("Iccid", "iccid", "ICCID", "?")
ICCIDS = ("Iccid", "iccids", "ICCID", "*")
SMSR_ID = ("Smsr-id", "smsrID", "OID", "1")
SMSR_ID_CAMEL = ("SmSr-id", "smsrID", "OID", "1")
MNO_ID = ("Mno-id", "mnoID", "OID", "1")
MNO_ID_OPT = ("Mno-id", "mnoID", "OID", "?")
EIS = ("Eis", "eis", "EIS", "1")
EIS_OPT = ("Eis", "eis", "EIS", "?")
TS = ("CompletionTimestamp", "completionTimestamp", "Timestamp", "1")
TS_LOWER = ("completionTimestamp", "completionTimestamp", "Timestamp", "1")
EUICC_RESPONSE = ("EuiccResponseData", "euiccResponseData", "HexBinary", "?")
POL2_OPT = ("pol2", "pol2", "POL2", "?")
POL2_REQ = ("pol2", "pol2", "POL2", "1")
NEW_ADDRESS = ("newSubscriptionAddress", "newSubscriptionAddress", "SubscriptionAddress", "1")
PLMA = ("Plma", "plma", "PLMA", "1")
PLMAS = ("Plma", "plmas", "PLMA", "*")
ONC = ("Onc", "onc", "ONC", "1")
ONCS = ("Onc", "oncs", "ONC", "*")
M2MSP_OPT = ("M2MSP-id", "m2mSPID", "OID", "?")
PROFILE_TYPE_OPT = ("ProfileType", "profileType", "String100", "?")


def fn(interface, name, pattern, section, source, caller, receiver, summary, request=(), response=()):
    return dict(interface=interface, name=name, pattern=pattern, section=section, source=source,
                caller=caller, receiver=receiver, summary=summary, request=list(request),
                response=list(response))


def notification(interface, name, section, source, caller, receiver, summary, fields):
    return fn(interface, name, "notification", section, source, caller, receiver, summary, request=fields)


G, M = "gsma", "m2mrsp"

FUNCTIONS = [
    # ES1: EUM → SM-SR ---------------------------------------------------------------------
    fn("ES1", "RegisterEIS", "synchronous", "5.2.1", G, "EUM", "SM-SR",
       "Register a new eUICC (its EUM-signed EIS) at the SM-SR that will manage it.",
       [EIS]),
    fn("ES1", "UpdateEISAdditionalProperties", "synchronous", "5.2.2", M, "EUM", "SM-SR",
       "Replace the AdditionalProperties of a registered eUICC's EIS.",
       [EID, ("AdditionalProperties", "additionalProperties", "PropertyList", "1")]),

    # ES2: MNO → SM-DP; notifications SM-DP → MNO -----------------------------------------
    fn("ES2", "GetEIS", "synchronous", "5.3.1", G, "MNO", "SM-DP",
       "Get the Operator-filtered EIS of an eUICC (the SM-DP relays ES3.GetEIS).",
       [EID, SMSR_ID], [EIS_OPT]),
    fn("ES2", "DownloadProfile", "asynchronous", "5.3.2", G, "MNO", "SM-DP",
       "Download and install a Profile (by ICCID and/or Profile Type) into a new ISD-P; optionally enable it.",
       [EID, SMSR_ID_CAMEL, ("ProfileType", "profileType", "String", "?"), ICCID_OPT,
        ("EnableProfile", "enableProfile", "Bool", "1")],
       [ICCID_OPT]),
    fn("ES2", "UpdatePolicyRules", "synchronous", "5.3.3", G, "MNO", "SM-DP",
       "Replace the POL2 of a Profile (relayed as ES3.UpdatePolicyRules).",
       [EID, ICCID, SMSR_ID, POL2_OPT]),
    fn("ES2", "UpdateSubscriptionAddress", "synchronous", "5.3.4", G, "MNO", "SM-DP",
       "Change the IMSI/MSISDN recorded for a Profile in the EIS.",
       [EID, SMSR_ID, ICCID, NEW_ADDRESS]),
    fn("ES2", "EnableProfile", "asynchronous", "5.3.5", G, "MNO", "SM-DP",
       "Enable a Profile through the SM-DP (relayed as ES3.EnableProfile).",
       [EID, SMSR_ID_CAMEL, ICCID]),
    fn("ES2", "DisableProfile", "asynchronous", "5.3.6", G, "MNO", "SM-DP",
       "Disable a Profile through the SM-DP (relayed as ES3.DisableProfile).",
       [EID, SMSR_ID, ICCID]),
    fn("ES2", "DeleteProfile", "asynchronous", "5.3.7", G, "MNO", "SM-DP",
       "Delete a Profile and its ISD-P through the SM-DP (relayed as ES3.DeleteISDP).",
       [EID, ICCID, SMSR_ID]),
    notification("ES2", "HandleProfileDisabledNotification", "5.3.8", G, "SM-DP", "MNO",
                 "A Profile of this Operator was disabled.", [EID, ICCID, TS]),
    notification("ES2", "HandleProfileEnabledNotification", "5.3.9", G, "SM-DP", "MNO",
                 "A Profile of this Operator was enabled.", [EID, ICCID, TS_LOWER]),
    notification("ES2", "HandleSMSRChangeNotification", "5.3.10", G, "SM-DP", "MNO",
                 "The eUICC moved to a new SM-SR.", [EIS, TS]),
    notification("ES2", "HandleProfileDeletedNotification", "5.3.11", G, "SM-DP", "MNO",
                 "A Profile of this Operator was deleted.", [EID, ICCID, TS]),
    fn("ES2", "AuditEIS", "asynchronous", "5.3.12", M, "MNO", "SM-DP",
       "Refresh EIS data from the eUICC (relayed as ES3.AuditEIS).",
       [EID, SMSR_ID, ICCIDS], [EIS_OPT]),
    fn("ES2", "SetPLMA", "synchronous", "5.3.13", M, "MNO", "SM-DP",
       "Grant or change the PLMA of an M2M SP (relayed as ES3.SetPLMA).",
       [SMSR_ID, PLMA]),
    fn("ES2", "GetPLMA", "synchronous", "5.3.14", M, "MNO", "SM-DP",
       "Read the PLMAs this Operator has set (relayed as ES3.GetPLMA).",
       [SMSR_ID, M2MSP_OPT, PROFILE_TYPE_OPT], [PLMAS]),
    notification("ES2", "HandleProfileDownloadedNotification", "5.3.15", M, "SM-DP", "MNO",
                 "A Profile was downloaded and installed.", [EID, ICCID, TS]),
    notification("ES2", "HandleProfilePOL2UpdatedNotification", "5.3.16", M, "SM-DP", "MNO",
                 "The POL2 of a Profile changed.", [EID, ICCID, POL2_REQ, TS]),
    notification("ES2", "HandlePLMASettingNotification", "5.3.17", M, "SM-DP", "MNO",
                 "A PLMA concerning this party was set.", [PLMA, TS]),
    fn("ES2", "SetONC", "synchronous", "5.3.18", M, "MNO", "SM-DP",
       "Set the Operator Notifications Configuration for a Profile Type (relayed as ES3.SetONC).",
       [SMSR_ID, ONC]),
    fn("ES2", "GetONC", "synchronous", "5.3.19", M, "MNO", "SM-DP",
       "Read the Operator Notifications Configuration (relayed as ES3.GetONC).",
       [SMSR_ID, PROFILE_TYPE_OPT], [ONCS]),
    fn("ES2", "SetEmergencyProfileAttribute", "asynchronous", "5.3.20", M, "MNO", "SM-DP",
       "Give a Profile the Emergency Profile Attribute (unset elsewhere on the eUICC).",
       [EID, SMSR_ID, ICCID], [EUICC_RESPONSE]),
    notification("ES2", "HandleEmergencyProfileAttributeSetNotification", "5.3.21", M, "SM-DP", "MNO",
                 "The Emergency Profile Attribute was set on a Profile.", [EID, ICCID, TS]),
    notification("ES2", "HandleEmergencyProfileAttributeUnsetNotification", "5.3.22", M, "SM-DP", "MNO",
                 "The Emergency Profile Attribute moved away from a Profile.", [EID, ICCID, TS]),
    fn("ES2", "SetFallBackAttribute", "asynchronous", "5.3.23", M, "MNO", "SM-DP",
       "Give a Profile the Fall-Back Attribute (unset on its previous holder).",
       [EID, SMSR_ID, ICCID], [EUICC_RESPONSE]),
    notification("ES2", "HandleFallBackAttributeSetNotification", "5.3.24", M, "SM-DP", "MNO",
                 "The Fall-Back Attribute was set on a Profile.", [EID, ICCID, TS]),
    notification("ES2", "HandleFallBackAttributeUnsetNotification", "5.3.25", M, "SM-DP", "MNO",
                 "The Fall-Back Attribute moved away from a Profile.", [EID, ICCID, TS]),

    # ES3: SM-DP → SM-SR; notifications SM-SR → SM-DP -------------------------------------
    fn("ES3", "GetEIS", "synchronous", "5.4.1", G, "SM-DP", "SM-SR",
       "Get the EIS (with the ECASD certificate for key establishment), filtered for the SM-DP.",
       [EID], [EIS_OPT]),
    fn("ES3", "AuditEIS", "asynchronous", "5.4.2", G, "SM-DP", "SM-SR",
       "Re-read the eUICC state (all or the listed Profiles) and return the updated EIS.",
       [EID, ICCIDS], [EIS_OPT]),
    fn("ES3", "CreateISDP", "asynchronous", "5.4.3", G, "SM-DP", "SM-SR",
       "Create an empty ISD-P for a Profile to be downloaded.",
       [EID, ICCID, MNO_ID, ("RequiredMemory", "requiredMemory", "NonNegativeInt", "1"),
        ("MoreToDo", "moreToDo", "Bool", "?")],
       [("Isd-p-aid", "isdPAID", "AID", "1"), EUICC_RESPONSE]),
    fn("ES3", "SendData", "asynchronous", "5.4.4", G, "SM-DP", "SM-SR",
       "Carry an SM-DP command script transparently to a security domain on the eUICC (ES8).",
       [EID, ("Sd-aid", "sdAID", "AID", "1"), ("Data", "data", "HexBinary", "1"),
        ("MoreToDo", "moreToDo", "Bool", "?")],
       [EUICC_RESPONSE]),
    fn("ES3", "ProfileDownloadCompleted", "synchronous", "5.4.5", G, "SM-DP", "SM-SR",
       "The download is finished: record the Profile in the EIS (state Disabled).",
       [EID, ICCID, ("ProfileType", "profileType", "String", "?"),
        ("SubscriptionAddress", "subscriptionAddress", "SubscriptionAddress", "?"), POL2_OPT]),
    fn("ES3", "UpdatePolicyRules", "synchronous", "5.4.6", G, "SM-DP", "SM-SR",
       "Update the POL2 of a Profile in the EIS (relay of ES2).",
       [EID, ICCID, POL2_OPT]),
    fn("ES3", "UpdateSubscriptionAddress", "synchronous", "5.4.7", G, "SM-DP", "SM-SR",
       "Update the subscription address of a Profile in the EIS.",
       [EID, ICCID, NEW_ADDRESS]),
    fn("ES3", "EnableProfile", "asynchronous", "5.4.8", G, "SM-DP", "SM-SR",
       "Enable a Profile (relay of ES2.EnableProfile).", [EID, ICCID], [EUICC_RESPONSE]),
    fn("ES3", "DisableProfile", "asynchronous", "5.4.9", G, "SM-DP", "SM-SR",
       "Disable a Profile (relay of ES2.DisableProfile).", [EID, ICCID], [EUICC_RESPONSE]),
    fn("ES3", "DeleteISDP", "asynchronous", "5.4.10", G, "SM-DP", "SM-SR",
       "Delete an ISD-P and its Profile (relay of ES2.DeleteProfile; download clean-up).",
       [EID, ICCID], [EUICC_RESPONSE]),
    fn("ES3", "UpdateConnectivityParameters", "asynchronous", "5.4.11", G, "SM-DP", "SM-SR",
       "Forward SCP03-protected connectivity parameters to the ISD-P.",
       [EID, ICCID, ("ConnectivityParameters", "connectivityParameters", "HexBinary", "1")], [EUICC_RESPONSE]),
    notification("ES3", "HandleProfileDisabledNotification", "5.4.12", G, "SM-SR", "SM-DP",
                 "A Profile was disabled.", [EID, ICCID, MNO_ID, TS]),
    notification("ES3", "HandleProfileEnabledNotification", "5.4.13", G, "SM-SR", "SM-DP",
                 "A Profile was enabled.", [EID, ICCID, MNO_ID, TS]),
    notification("ES3", "HandleSMSRChangeNotification", "5.4.14", G, "SM-SR", "SM-DP",
                 "The eUICC moved to a new SM-SR.", [EIS, MNO_ID, TS_LOWER]),
    notification("ES3", "HandleProfileDeletedNotification", "5.4.15", G, "SM-SR", "SM-DP",
                 "A Profile was deleted.", [EID, ICCID, MNO_ID, TS]),
    fn("ES3", "SetPLMA", "synchronous", "5.4.16", M, "SM-DP", "SM-SR",
       "Set a PLMA on behalf of the Operator it names (relay of ES2.SetPLMA).", [PLMA]),
    fn("ES3", "GetPLMA", "synchronous", "5.4.17", M, "SM-DP", "SM-SR",
       "Read an Operator's PLMAs (relay of ES2.GetPLMA).",
       [MNO_ID, M2MSP_OPT, PROFILE_TYPE_OPT], [PLMAS]),
    notification("ES3", "HandleProfileDownloadedNotification", "5.4.18", M, "SM-SR", "SM-DP",
                 "A Profile was downloaded and installed.", [EID, ICCID, MNO_ID, TS]),
    notification("ES3", "HandleProfilePOL2UpdatedNotification", "5.4.19", M, "SM-SR", "SM-DP",
                 "The POL2 of a Profile changed.", [EID, ICCID, MNO_ID, POL2_REQ, TS]),
    notification("ES3", "HandlePLMASettingNotification", "5.4.20", M, "SM-SR", "SM-DP",
                 "A PLMA was set.", [PLMA, TS]),
    fn("ES3", "SetONC", "synchronous", "5.4.21", M, "SM-DP", "SM-SR",
       "Set an Operator's Notifications Configuration (relay of ES2.SetONC).", [ONC]),
    fn("ES3", "GetONC", "synchronous", "5.4.22", M, "SM-DP", "SM-SR",
       "Read an Operator's Notifications Configuration (relay of ES2.GetONC).",
       [MNO_ID, PROFILE_TYPE_OPT], [ONCS]),
    fn("ES3", "SetEmergencyProfileAttribute", "asynchronous", "5.4.23", M, "SM-DP", "SM-SR",
       "Set the Emergency Profile Attribute (relay of ES2).", [EID, ICCID], [EUICC_RESPONSE]),
    notification("ES3", "HandleEmergencyProfileAttributeSetNotification", "5.4.24", M, "SM-SR", "SM-DP",
                 "The Emergency Profile Attribute was set on a Profile.", [EID, ICCID, MNO_ID, TS]),
    notification("ES3", "HandleEmergencyProfileAttributeUnsetNotification", "5.4.25", M, "SM-SR", "SM-DP",
                 "The Emergency Profile Attribute moved away from a Profile.", [EID, ICCID, MNO_ID, TS]),
    fn("ES3", "SetFallBackAttribute", "asynchronous", "5.4.26", M, "SM-DP", "SM-SR",
       "Set the Fall-Back Attribute (relay of ES2).", [EID, ICCID], [EUICC_RESPONSE]),
    notification("ES3", "HandleFallBackAttributeSetNotification", "5.4.27", M, "SM-SR", "SM-DP",
                 "The Fall-Back Attribute was set on a Profile.", [EID, ICCID, MNO_ID, TS]),
    notification("ES3", "HandleFallBackAttributeUnsetNotification", "5.4.28", M, "SM-SR", "SM-DP",
                 "The Fall-Back Attribute moved away from a Profile.", [EID, ICCID, MNO_ID, TS]),

    # ES4: MNO / M2M SP → SM-SR; notifications SM-SR → MNO / M2M SP -------------------------
    fn("ES4", "GetEIS", "synchronous", "5.5.1", G, "MNO or M2M SP", "SM-SR",
       "Get the EIS, filtered to the caller's Profiles (or its PLMA).", [EID], [EIS_OPT]),
    fn("ES4", "UpdatePolicyRules", "synchronous", "5.5.2", G, "MNO", "SM-SR",
       "Set the POL2 of the Operator's own Profile (never delegable).", [EID, ICCID, POL2_REQ]),
    fn("ES4", "UpdateSubscriptionAddress", "synchronous", "5.5.3", G, "MNO", "SM-SR",
       "Update IMSI/MSISDN in the EIS.", [EID, ICCID, NEW_ADDRESS]),
    fn("ES4", "AuditEIS", "asynchronous", "5.5.4", G, "MNO or M2M SP", "SM-SR",
       "Refresh the EIS from the eUICC.", [EID, ICCIDS], [EIS_OPT]),
    fn("ES4", "EnableProfile", "asynchronous", "5.5.5", G, "MNO or M2M SP", "SM-SR",
       "Enable a Profile.", [EID, ICCID], [EUICC_RESPONSE]),
    fn("ES4", "DisableProfile", "asynchronous", "5.5.6", G, "MNO or M2M SP", "SM-SR",
       "Disable the enabled Profile (the eUICC then enables the Fall-Back Profile).", [EID, ICCID],
       [EUICC_RESPONSE]),
    fn("ES4", "DeleteProfile", "asynchronous", "5.5.7", G, "MNO or M2M SP", "SM-SR",
       "Delete a Profile and its ISD-P.", [EID, ICCID], [EUICC_RESPONSE]),
    fn("ES4", "PrepareSMSRChange", "synchronous", "5.5.8", G, "MNO", "SM-SR (new)",
       "Ask the new SM-SR whether it accepts to manage the eUICC.",
       [EID, ("CurrentSMSRid", "currentSMSRID", "OID", "1")]),
    fn("ES4", "SMSRChange", "asynchronous", "5.5.9", G, "MNO", "SM-SR (current)",
       "Ask the current SM-SR to hand the eUICC over to the new SM-SR (drives ES7).",
       [EID, ("Target-Smsr-id", "targetSMSRID", "OID", "1")]),
    notification("ES4", "HandleProfileDisabledNotification", "5.5.10", G, "SM-SR", "MNO or M2M SP",
                 "A Profile was disabled.", [EID, ICCID, TS]),
    notification("ES4", "HandleProfileEnabledNotification", "5.5.11", G, "SM-SR", "MNO or M2M SP",
                 "A Profile was enabled.", [EID, ICCID, TS]),
    notification("ES4", "HandleSMSRChangeNotification", "5.5.12", G, "SM-SR (new)", "MNO",
                 "The eUICC moved to a new SM-SR.", [EIS, TS]),
    notification("ES4", "HandleProfileDeletedNotification", "5.5.13", G, "SM-SR", "MNO or M2M SP",
                 "A Profile was deleted.", [EID, ICCID, TS]),
    notification("ES4", "HandleProfileDownloadedNotification", "5.5.14", M, "SM-SR", "M2M SP or MNO",
                 "A Profile was downloaded on one of the party's eUICCs.", [EID, ICCID, TS]),
    notification("ES4", "HandleProfilePOL2UpdatedNotification", "5.5.15", M, "SM-SR", "MNO or M2M SP",
                 "The POL2 of a Profile changed.", [EID, ICCID, POL2_REQ, TS]),
    notification("ES4", "HandlePLMASettingNotification", "5.5.16", M, "SM-SR", "M2M SP",
                 "A PLMA was granted or changed for this M2M SP.", [PLMA, TS]),
    fn("ES4", "GetPLMA", "synchronous", "5.5.17", M, "M2M SP or MNO", "SM-SR",
       "Read the PLMAs granted to the caller.", [MNO_ID_OPT, PROFILE_TYPE_OPT], [PLMAS]),
    fn("ES4", "SetEmergencyProfileAttribute", "asynchronous", "5.5.18", M, "MNO or M2M SP", "SM-SR",
       "Set the Emergency Profile Attribute on a Profile.", [EID, ICCID], [EUICC_RESPONSE]),
    notification("ES4", "HandleEmergencyProfileAttributeSetNotification", "5.5.19", M, "SM-SR", "MNO or M2M SP",
                 "The Emergency Profile Attribute was set on a Profile.", [EID, ICCID, TS]),
    notification("ES4", "HandleEmergencyProfileAttributeUnsetNotification", "5.5.20", M, "SM-SR", "MNO or M2M SP",
                 "The Emergency Profile Attribute moved away from a Profile.", [EID, ICCID, TS]),
    fn("ES4", "SetFallBackAttribute", "asynchronous", "5.5.21", M, "MNO or M2M SP", "SM-SR",
       "Set the Fall-Back Attribute on a Profile.", [EID, ICCID], [EUICC_RESPONSE]),
    notification("ES4", "HandleFallBackAttributeSetNotification", "5.5.22", M, "SM-SR", "MNO or M2M SP",
                 "The Fall-Back Attribute was set on a Profile.", [EID, ICCID, TS]),
    notification("ES4", "HandleFallBackAttributeUnsetNotification", "5.5.23", M, "SM-SR", "MNO or M2M SP",
                 "The Fall-Back Attribute moved away from a Profile.", [EID, ICCID, TS]),

    # ES4A: MNO → SM-SR (v4) ---------------------------------------------------------------
    fn("ES4A", "SetPLMA", "synchronous", "5.7.1", M, "MNO", "SM-SR",
       "Create or replace the PLMA the Operator gives an M2M SP for a Profile Type.", [PLMA]),
    fn("ES4A", "GetPLMA", "synchronous", "5.7.2", M, "MNO", "SM-SR",
       "Read the PLMAs this Operator has set.", [M2MSP_OPT, PROFILE_TYPE_OPT], [PLMAS]),
    fn("ES4A", "SetONC", "synchronous", "5.7.3", M, "MNO", "SM-SR",
       "Set the Operator Notifications Configuration for a Profile Type.", [ONC]),
    fn("ES4A", "GetONC", "synchronous", "5.7.4", M, "MNO", "SM-SR",
       "Read the Operator Notifications Configuration.", [PROFILE_TYPE_OPT], [ONCS]),

    # ES7: SM-SR ↔ SM-SR --------------------------------------------------------------------
    fn("ES7", "HandoverEUICC", "asynchronous", "5.6.1", G, "SM-SR (current)", "SM-SR (new)",
       "Transfer the EIS; the new SM-SR then drives authentication and key set creation.", [EIS]),
    fn("ES7", "AuthenticateSMSR", "asynchronous", "5.6.2", G, "SM-SR (new)", "SM-SR (current)",
       "Deliver CERT.SR.ECDSA of the new SM-SR to the eUICC and obtain its random challenge.",
       [EIS, ("SmsrCertificate", "smsrCertificate", "HexBinary", "1")],
       [("RandomChallenge", "randomChallenge", "HexBinary", "1")]),
    fn("ES7", "CreateAdditionalKeySet", "asynchronous", "5.6.3", G, "SM-SR (new)", "SM-SR (current)",
       "Create the new SM-SR's ISD-R key set by ECKA (GP Amendment E scenario #3).",
       [EID, ("KeyVersionNumber", "keyVersionNumber", "KeysetVersion", "1"),
        ("InitialSequenceCounter", "initialSequenceCounter", "Int", "1"),
        ("ECCKeyLength", "eccKeyLength", "ECCKeyLength", "1"),
        ("ScenarioParameter", "scenarioParameter", "Byte", "1"),
        ("HostId", "hostID", "HexBinary", "1"),
        ("EphemeralPublicKey", "ephemeralPublicKey", "HexBinary", "1"),
        ("Signature", "signature", "HexBinary", "1")],
       [("DerivationRandom", "derivationRandom", "HexBinary", "1"), ("Receipt", "receipt", "HexBinary", "1")]),
]

REQUEST_BASE = [
    ("FunctionCallIdentifier", "functionCallIdentifier", "String", "1"),
    ("ValidityPeriod", "validityPeriod", "PositiveInt", "?"),
]
RESPONSE_BASE = [
    ("ProcessingStart", "processingStart", "Timestamp", "?"),
    ("ProcessingEnd", "processingEnd", "Timestamp", "?"),
    ("AcceptableValidityPeriod", "acceptableValidityPeriod", "PositiveInt", "?"),
    ("FunctionExecutionStatus", "functionExecutionStatus", "FunctionExecutionStatus", "1"),
]
