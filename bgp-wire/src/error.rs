//! Decode and encode errors. A [`DecodeError`] carries the NOTIFICATION it maps to (code,
//! subcode, data), the RFC 7606 action the speaker must take, and a [`Reason`] naming the rule.

use std::fmt;
use std::net::Ipv4Addr;

use crate::iana::{AfiSafi, attr, error_code};
use crate::notification::Notification;

/// What the speaker does about a malformed message (RFC 7606 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorAction {
    /// Send the NOTIFICATION and close the session (RFC 4271 §6).
    SessionReset,
    /// Delete and ignore routes of this AFI/SAFI for the rest of the session (RFC 4760 §7,
    /// RFC 7606 §2); a speaker that does not implement it resets the session instead.
    AfiSafiDisable(AfiSafi),
    /// Withdraw every route the UPDATE announces, as if listed as withdrawn (RFC 7606 §2).
    TreatAsWithdraw,
    /// Drop the offending attribute and process the rest of the UPDATE (RFC 7606 §2).
    AttributeDiscard,
}

impl ErrorAction {
    /// Severity order: discard < treat-as-withdraw < AFI/SAFI disable < session reset.
    pub fn severity(self) -> u8 {
        match self {
            ErrorAction::AttributeDiscard => 0,
            ErrorAction::TreatAsWithdraw => 1,
            ErrorAction::AfiSafiDisable(_) => 2,
            ErrorAction::SessionReset => 3,
        }
    }
}

impl fmt::Display for ErrorAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorAction::SessionReset => f.write_str("session reset"),
            ErrorAction::AfiSafiDisable(af) => write!(f, "AFI/SAFI disable ({af})"),
            ErrorAction::TreatAsWithdraw => f.write_str("treat-as-withdraw"),
            ErrorAction::AttributeDiscard => f.write_str("attribute discard"),
        }
    }
}

/// Attribute name for messages: `ORIGIN (1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttrName(pub u8);

impl fmt::Display for AttrName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", attr::name(self.0), self.0)
    }
}

/// The rule a message broke: the field, the value and the RFC section.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// The 16-octet marker is not all ones.
    #[error("header marker is not all ones (RFC 4271 §4.1, §6.1: Connection Not Synchronized)")]
    ConnectionNotSynchronized,
    /// The header length field is out of range for the message type.
    #[error(
        "header length {length} is outside {min}..={max} for message type {msg_type} (RFC 4271 §6.1, RFC 8654 §4)"
    )]
    BadMessageLength {
        /// Length field value.
        length: u16,
        /// Message type.
        msg_type: u8,
        /// Smallest legal length.
        min: u16,
        /// Largest legal length.
        max: u16,
    },
    /// The buffer does not hold exactly the message the header describes.
    #[error(
        "header length {length} does not match the {available} octets supplied (RFC 4271 §4.1)"
    )]
    FrameLength {
        /// Length field value.
        length: u16,
        /// Octets handed to the decoder.
        available: usize,
    },
    /// The message type is not one this speaker knows.
    #[error("message type {msg_type} is not defined (RFC 4271 §6.1: Bad Message Type)")]
    BadMessageType {
        /// Type octet.
        msg_type: u8,
    },
    /// OPEN version is not 4.
    #[error("OPEN version {version} is not supported; only 4 is (RFC 4271 §6.2)")]
    UnsupportedVersion {
        /// Version octet.
        version: u8,
    },
    /// OPEN AS number breaks a rule.
    #[error("OPEN peer AS {asn} is invalid: {rule}")]
    BadPeerAs {
        /// The AS number (2-octet field or capability value).
        asn: u32,
        /// The rule broken.
        rule: &'static str,
    },
    /// Hold time of 1 or 2 seconds.
    #[error(
        "OPEN hold time {hold_time} s is unacceptable: it must be 0 or at least 3 (RFC 4271 §4.2, §6.2)"
    )]
    UnacceptableHoldTime {
        /// Hold time field.
        hold_time: u16,
    },
    /// BGP identifier 0.0.0.0.
    #[error("OPEN BGP identifier {id} is invalid: it must be non-zero (RFC 6286 §2.1)")]
    BadBgpIdentifier {
        /// Identifier field.
        id: Ipv4Addr,
    },
    /// Optional parameter type other than capabilities.
    #[error(
        "OPEN optional parameter type {param_type} is not supported; only capabilities (2) are (RFC 4271 §6.2, RFC 5492 §4)"
    )]
    UnsupportedOptionalParameter {
        /// Parameter type.
        param_type: u8,
    },
    /// Optional parameter lengths do not add up.
    #[error("OPEN optional parameters are malformed: {detail} (RFC 4271 §4.2, RFC 9072 §2)")]
    MalformedOptionalParameters {
        /// What is wrong.
        detail: &'static str,
    },
    /// A known capability has a malformed value.
    #[error("capability {code} is malformed: {detail} (RFC 5492 §4)")]
    MalformedCapability {
        /// Capability code.
        code: u8,
        /// What is wrong.
        detail: &'static str,
    },
    /// A capability the local speaker requires is missing or unusable.
    #[error("capability {code} is required but not supported by the peer (RFC 5492 §5)")]
    UnsupportedCapability {
        /// Capability code.
        code: u8,
    },
    /// UPDATE length fields overrun the message.
    #[error(
        "UPDATE {field} length {length} overruns the {available} octets left in the message (RFC 4271 §6.3, RFC 7606 §4)"
    )]
    UpdateLengthOverrun {
        /// Which length field.
        field: &'static str,
        /// Field value.
        length: usize,
        /// Octets available.
        available: usize,
    },
    /// An attribute header or value runs past Total Path Attribute Length.
    #[error(
        "path attribute {attr} overruns the attribute block: needs {needed} octets, {available} left (RFC 7606 §4)"
    )]
    AttributeOverrun {
        /// Attribute type (0 if even the type octet was missing).
        attr: AttrName,
        /// Octets the attribute claims.
        needed: usize,
        /// Octets left in the block.
        available: usize,
    },
    /// Optional/Transitive flags conflict with the attribute type.
    #[error(
        "path attribute {attr} has flags {flags:#04x}; its Optional/Transitive bits must be {expected:#04x} (RFC 4271 §6.3, RFC 7606 §3.c)"
    )]
    AttributeFlags {
        /// Attribute type.
        attr: AttrName,
        /// Flags received.
        flags: u8,
        /// Optional/Transitive bits required.
        expected: u8,
    },
    /// Attribute length wrong for its type.
    #[error(
        "path attribute {attr} length {length} is invalid: must be {expected} (RFC 4271 §6.3, {rule})"
    )]
    AttributeLength {
        /// Attribute type.
        attr: AttrName,
        /// Length received.
        length: usize,
        /// Required length.
        expected: &'static str,
        /// Section defining the handling.
        rule: &'static str,
    },
    /// ORIGIN value not 0..=2.
    #[error(
        "ORIGIN value {value} is undefined: must be 0 (IGP), 1 (EGP) or 2 (INCOMPLETE) (RFC 4271 §6.3, RFC 7606 §7.1)"
    )]
    InvalidOrigin {
        /// Value received.
        value: u8,
    },
    /// AS_PATH segment structure broken.
    #[error("{attr} is malformed: {detail} (RFC 4271 §6.3, RFC 7606 §7.2)")]
    MalformedAsPath {
        /// AS_PATH or AS4_PATH.
        attr: AttrName,
        /// What is wrong.
        detail: &'static str,
    },
    /// NEXT_HOP is not a usable unicast address.
    #[error("NEXT_HOP {next_hop} is not a valid unicast address (RFC 4271 §6.3, RFC 7606 §7.3)")]
    InvalidNextHop {
        /// Address received.
        next_hop: Ipv4Addr,
    },
    /// A well-known mandatory attribute is absent.
    #[error(
        "well-known mandatory attribute {attr} is missing from an UPDATE that announces routes (RFC 4271 §6.3, RFC 7606 §3.d)"
    )]
    MissingWellKnown {
        /// Attribute type.
        attr: AttrName,
    },
    /// An unrecognized attribute has the Optional bit clear.
    #[error(
        "path attribute type {type_code} is not recognized but is flagged well-known (RFC 4271 §6.3)"
    )]
    UnrecognizedWellKnown {
        /// Attribute type.
        type_code: u8,
    },
    /// An attribute appears twice.
    #[error("path attribute {attr} appears more than once (RFC 7606 §3.g: {handling})")]
    DuplicateAttribute {
        /// Attribute type.
        attr: AttrName,
        /// What the RFC says happens.
        handling: &'static str,
    },
    /// LOCAL_PREF from an external peer.
    #[error(
        "LOCAL_PREF received from an external peer is discarded (RFC 4271 §5.1.5, RFC 7606 §7.5)"
    )]
    LocalPrefFromExternal,
    /// AS4_PATH/AS4_AGGREGATOR between NEW speakers.
    #[error("{attr} received from a 4-octet-AS speaker is discarded (RFC 6793 §6)")]
    As4FromNewSpeaker {
        /// Attribute type.
        attr: AttrName,
    },
    /// Other malformed optional attribute.
    #[error("optional attribute {attr} is malformed: {detail} (RFC 4271 §6.3, {rule})")]
    MalformedOptional {
        /// Attribute type.
        attr: AttrName,
        /// What is wrong.
        detail: &'static str,
        /// Section defining the handling.
        rule: &'static str,
    },
    /// NLRI prefix length larger than the address.
    #[error("{field}: prefix length {length} exceeds {max} (RFC 4271 §6.3, RFC 7606 §5.3)")]
    PrefixLength {
        /// NLRI field (Withdrawn Routes, NLRI, MP_REACH_NLRI, MP_UNREACH_NLRI).
        field: &'static str,
        /// Prefix length received.
        length: u8,
        /// Maximum for the family.
        max: u8,
    },
    /// NLRI ends in the middle of a prefix or path identifier.
    #[error(
        "{field}: NLRI is truncated, {needed} octets needed but {available} left (RFC 4271 §6.3, RFC 7606 §5.3)"
    )]
    TruncatedNlri {
        /// NLRI field.
        field: &'static str,
        /// Octets needed for the next element.
        needed: usize,
        /// Octets left.
        available: usize,
    },
    /// MP_REACH_NLRI / MP_UNREACH_NLRI too short to read the family.
    #[error(
        "{attr} is {length} octets, too short for its fixed fields (RFC 4760 §3, RFC 7606 §7.11)"
    )]
    MpTooShort {
        /// Attribute type.
        attr: AttrName,
        /// Attribute length.
        length: usize,
    },
    /// MP_REACH_NLRI next hop length not valid for the family.
    #[error(
        "MP_REACH_NLRI next hop length {length} is invalid for {afi_safi} (RFC 4760 §3, RFC 2545 §3, RFC 8950 §3, RFC 7606 §7.11)"
    )]
    MpNextHopLength {
        /// Family.
        afi_safi: AfiSafi,
        /// Next hop length field.
        length: u8,
    },
    /// MP attribute for a family this codec does not decode.
    #[error("{attr} carries {afi_safi}, which this speaker does not support (RFC 4760 §7)")]
    MpUnsupportedFamily {
        /// Attribute type.
        attr: AttrName,
        /// Family.
        afi_safi: AfiSafi,
    },
    /// ROUTE-REFRESH of the wrong length.
    #[error("ROUTE-REFRESH length {length} is invalid: must be 23 (RFC 2918 §3, RFC 7313 §5)")]
    RouteRefreshLength {
        /// Message length.
        length: u16,
    },
}

/// A malformed message: the NOTIFICATION it maps to, the RFC 7606 action, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} [NOTIFICATION {code}/{subcode}, action: {action}]")]
pub struct DecodeError {
    /// NOTIFICATION error code.
    pub code: u8,
    /// NOTIFICATION error subcode.
    pub subcode: u8,
    /// NOTIFICATION data.
    pub data: Vec<u8>,
    /// RFC 7606 action.
    pub action: ErrorAction,
    /// The rule broken.
    pub reason: Reason,
}

impl DecodeError {
    /// Builds an error.
    pub fn new(code: u8, subcode: u8, data: Vec<u8>, action: ErrorAction, reason: Reason) -> Self {
        DecodeError {
            code,
            subcode,
            data,
            action,
            reason,
        }
    }

    /// A Message Header Error (always a session reset).
    pub(crate) fn header(subcode: u8, data: Vec<u8>, reason: Reason) -> Self {
        DecodeError::new(
            error_code::MESSAGE_HEADER,
            subcode,
            data,
            ErrorAction::SessionReset,
            reason,
        )
    }

    /// An OPEN Message Error (always a session reset).
    pub(crate) fn open(subcode: u8, data: Vec<u8>, reason: Reason) -> Self {
        DecodeError::new(
            error_code::OPEN_MESSAGE,
            subcode,
            data,
            ErrorAction::SessionReset,
            reason,
        )
    }

    /// An UPDATE Message Error with the given action.
    pub(crate) fn update(subcode: u8, data: Vec<u8>, action: ErrorAction, reason: Reason) -> Self {
        DecodeError::new(error_code::UPDATE_MESSAGE, subcode, data, action, reason)
    }

    /// The Unsupported Capability error (2/7) a speaker sends when the peer lacks a capability
    /// it requires; `capability` is the capability TLV (code, length, value) for the data field.
    pub fn unsupported_capability(code: u8, capability: Vec<u8>) -> Self {
        DecodeError::open(
            error_code::open::UNSUPPORTED_CAPABILITY,
            capability,
            Reason::UnsupportedCapability { code },
        )
    }

    /// The NOTIFICATION to send for this error when the action is (or escalates to) a reset.
    pub fn to_notification(&self) -> Notification {
        Notification {
            code: self.code,
            subcode: self.subcode,
            data: self.data.clone(),
        }
    }
}

/// Why a message could not be encoded. Encoding never panics and never emits an illegal message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The message would exceed the negotiated maximum.
    #[error(
        "{what} would be {length} octets, over the {max}-octet message limit (RFC 4271 §4.1, RFC 8654)"
    )]
    MessageTooLong {
        /// Message kind.
        what: &'static str,
        /// Encoded length.
        length: usize,
        /// Limit.
        max: usize,
    },
    /// The attributes leave no room for even one prefix.
    #[error(
        "path attributes take {attributes} octets; with the {overhead}-octet UPDATE overhead no prefix of {prefix} octets fits in {max} (RFC 4271 §4.3)"
    )]
    AttributesTooLarge {
        /// Encoded attribute octets.
        attributes: usize,
        /// Fixed overhead.
        overhead: usize,
        /// Encoded size of the first prefix.
        prefix: usize,
        /// Limit.
        max: usize,
    },
    /// A single attribute value exceeds 65535 octets.
    #[error(
        "path attribute {attr} value is {length} octets, over the 65535 an attribute can carry (RFC 4271 §4.3)"
    )]
    AttributeTooLong {
        /// Attribute type.
        attr: AttrName,
        /// Value length.
        length: usize,
    },
    /// An AS_SET or confederation set longer than 255 members cannot be split.
    #[error(
        "{kind} has {count} AS numbers; a set cannot be split across segments of at most 255 (RFC 4271 §4.3)"
    )]
    AsSetTooLong {
        /// Segment kind.
        kind: &'static str,
        /// Member count.
        count: usize,
    },
    /// A capability, parameter or other length-limited field is too long.
    #[error("{what} is {length} octets, over its {max}-octet field")]
    FieldTooLong {
        /// Field.
        what: &'static str,
        /// Length.
        length: usize,
        /// Limit.
        max: usize,
    },
    /// A prefix does not belong to the family being encoded.
    #[error("prefix {prefix} does not belong to {afi_safi}")]
    FamilyMismatch {
        /// The prefix.
        prefix: ipnet::IpNet,
        /// The family.
        afi_safi: AfiSafi,
    },
    /// Path identifiers present where ADD-PATH is not negotiated, or missing where it is.
    #[error("prefix {prefix} {problem} for {afi_safi} (RFC 7911 §3)")]
    PathId {
        /// The prefix.
        prefix: ipnet::IpNet,
        /// The family.
        afi_safi: AfiSafi,
        /// "has a path identifier but ADD-PATH send is not negotiated", or the reverse.
        problem: &'static str,
    },
    /// The next hop cannot be carried for the family.
    #[error("next hop {next_hop} cannot be carried for {afi_safi} (RFC 4760 §3, RFC 8950)")]
    NextHopFamily {
        /// Next hop, displayed.
        next_hop: String,
        /// Family.
        afi_safi: AfiSafi,
    },
    /// The family has no NLRI encoding in this codec.
    #[error("{afi_safi} is not supported by this codec")]
    UnsupportedFamily {
        /// Family.
        afi_safi: AfiSafi,
    },
}
