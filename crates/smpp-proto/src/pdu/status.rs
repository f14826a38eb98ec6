//! `command_status`: the outcome carried by every response.

use core::fmt;

/// The `command_status` header field (SMPP 3.4 §5.1.3, 5.0 §4.7.6).
///
/// Any `u32` is representable: vendor codes (0x400–0x4FF) and legacy codes
/// outside the specification are common on real links.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct CommandStatus(pub u32);

macro_rules! statuses {
    ($( $(#[$doc:meta])* $name:ident = $value:expr, $spec:literal; )*) => {
        impl CommandStatus {
            $( $(#[$doc])* #[doc = concat!("\n\nWire name `", $spec, "`.")] pub const $name: CommandStatus = CommandStatus($value); )*

            /// Every status value named by SMPP 3.4 and 5.0.
            pub const ALL: &'static [CommandStatus] = &[$(CommandStatus::$name),*];

            /// The specification's name (`"ESME_RTHROTTLED"`), or `None` when unnamed.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some($spec), )*
                    _ => None,
                }
            }

            /// Looks a status up by its specification name. The v3.4 names of
            /// 0xC0–0xC4 (`ESME_RINVOPTPARSTREAM`, ...) are accepted too.
            pub fn from_name(name: &str) -> Option<CommandStatus> {
                match name {
                    $( $spec => Some(CommandStatus::$name), )*
                    "ESME_RINVOPTPARSTREAM" => Some(CommandStatus::INVALID_TLV_STREAM),
                    "ESME_ROPTPARNOTALLWD" => Some(CommandStatus::TLV_NOT_ALLOWED),
                    "ESME_RINVPARLEN" => Some(CommandStatus::INVALID_TLV_LENGTH),
                    "ESME_RMISSINGOPTPARAM" => Some(CommandStatus::MISSING_TLV),
                    "ESME_RINVOPTPARAMVAL" => Some(CommandStatus::INVALID_TLV_VALUE),
                    _ => None,
                }
            }
        }
    };
}

statuses! {
    /// Success.
    OK = 0x00, "ESME_ROK";
    /// Message length (short_message or message_payload) is invalid.
    INVALID_MESSAGE_LENGTH = 0x01, "ESME_RINVMSGLEN";
    /// command_length is invalid.
    INVALID_COMMAND_LENGTH = 0x02, "ESME_RINVCMDLEN";
    /// command_id is unknown or unsupported.
    INVALID_COMMAND_ID = 0x03, "ESME_RINVCMDID";
    /// The PDU is not allowed in the current bind state.
    INVALID_BIND_STATUS = 0x04, "ESME_RINVBNDSTS";
    /// The ESME is already bound.
    ALREADY_BOUND = 0x05, "ESME_RALYBND";
    /// Invalid priority_flag.
    INVALID_PRIORITY_FLAG = 0x06, "ESME_RINVPRTFLG";
    /// Invalid registered_delivery flag.
    INVALID_REGISTERED_DELIVERY = 0x07, "ESME_RINVREGDLVFLG";
    /// System error.
    SYSTEM_ERROR = 0x08, "ESME_RSYSERR";
    /// Invalid source address.
    INVALID_SOURCE_ADDRESS = 0x0A, "ESME_RINVSRCADR";
    /// Invalid destination address.
    INVALID_DESTINATION_ADDRESS = 0x0B, "ESME_RINVDSTADR";
    /// Invalid message_id.
    INVALID_MESSAGE_ID = 0x0C, "ESME_RINVMSGID";
    /// Bind failed.
    BIND_FAILED = 0x0D, "ESME_RBINDFAIL";
    /// Invalid password.
    INVALID_PASSWORD = 0x0E, "ESME_RINVPASWD";
    /// Invalid system_id.
    INVALID_SYSTEM_ID = 0x0F, "ESME_RINVSYSID";
    /// cancel_sm failed.
    CANCEL_FAILED = 0x11, "ESME_RCANCELFAIL";
    /// replace_sm failed.
    REPLACE_FAILED = 0x13, "ESME_RREPLACEFAIL";
    /// Message queue full.
    MESSAGE_QUEUE_FULL = 0x14, "ESME_RMSGQFUL";
    /// Invalid service_type.
    INVALID_SERVICE_TYPE = 0x15, "ESME_RINVSERTYP";
    /// Invalid number_of_dests.
    INVALID_NUMBER_OF_DESTINATIONS = 0x33, "ESME_RINVNUMDESTS";
    /// Invalid distribution list name.
    INVALID_DISTRIBUTION_LIST_NAME = 0x34, "ESME_RINVDLNAME";
    /// Invalid dest_flag (submit_multi).
    INVALID_DESTINATION_FLAG = 0x40, "ESME_RINVDESTFLAG";
    /// Invalid "submit with replace" request.
    INVALID_SUBMIT_WITH_REPLACE = 0x42, "ESME_RINVSUBREP";
    /// Invalid esm_class.
    INVALID_ESM_CLASS = 0x43, "ESME_RINVESMCLASS";
    /// Cannot submit to a distribution list.
    CANNOT_SUBMIT_TO_DISTRIBUTION_LIST = 0x44, "ESME_RCNTSUBDL";
    /// submit_sm, submit_multi or data_sm failed.
    SUBMIT_FAILED = 0x45, "ESME_RSUBMITFAIL";
    /// Invalid source address TON.
    INVALID_SOURCE_TON = 0x48, "ESME_RINVSRCTON";
    /// Invalid source address NPI.
    INVALID_SOURCE_NPI = 0x49, "ESME_RINVSRCNPI";
    /// Invalid destination address TON.
    INVALID_DESTINATION_TON = 0x50, "ESME_RINVDSTTON";
    /// Invalid destination address NPI.
    INVALID_DESTINATION_NPI = 0x51, "ESME_RINVDSTNPI";
    /// Invalid system_type.
    INVALID_SYSTEM_TYPE = 0x53, "ESME_RINVSYSTYP";
    /// Invalid replace_if_present_flag.
    INVALID_REPLACE_FLAG = 0x54, "ESME_RINVREPFLAG";
    /// Invalid number of messages.
    INVALID_NUMBER_OF_MESSAGES = 0x55, "ESME_RINVNUMMSGS";
    /// Throttling error: the ESME exceeded its allowed message rate.
    THROTTLED = 0x58, "ESME_RTHROTTLED";
    /// Invalid schedule_delivery_time.
    INVALID_SCHEDULED_DELIVERY_TIME = 0x61, "ESME_RINVSCHED";
    /// Invalid validity_period (expiry time).
    INVALID_EXPIRY_TIME = 0x62, "ESME_RINVEXPIRY";
    /// Invalid or unknown sm_default_msg_id.
    INVALID_DEFAULT_MESSAGE_ID = 0x63, "ESME_RINVDFTMSGID";
    /// ESME receiver temporary application error: retry later.
    RECEIVER_TEMPORARY_ERROR = 0x64, "ESME_RX_T_APPN";
    /// ESME receiver permanent application error: do not retry this destination.
    RECEIVER_PERMANENT_ERROR = 0x65, "ESME_RX_P_APPN";
    /// ESME receiver rejects the message: do not retry it.
    RECEIVER_REJECTED = 0x66, "ESME_RX_R_APPN";
    /// query_sm failed.
    QUERY_FAILED = 0x67, "ESME_RQUERYFAIL";
    /// The TLV section is corrupt (stray octets, or a TLV overruns the PDU).
    INVALID_TLV_STREAM = 0xC0, "ESME_RINVTLVSTREAM";
    /// A TLV is not allowed in this PDU.
    TLV_NOT_ALLOWED = 0xC1, "ESME_RTLVNOTALLWD";
    /// A TLV has an invalid length.
    INVALID_TLV_LENGTH = 0xC2, "ESME_RINVTLVLEN";
    /// A required TLV is missing.
    MISSING_TLV = 0xC3, "ESME_RMISSINGTLV";
    /// A TLV has an invalid value.
    INVALID_TLV_VALUE = 0xC4, "ESME_RINVTLVVAL";
    /// Delivery failure (transaction mode).
    DELIVERY_FAILURE = 0xFE, "ESME_RDELIVERYFAILURE";
    /// Unknown error.
    UNKNOWN_ERROR = 0xFF, "ESME_RUNKNOWNERR";
    /// ESME not authorised for this service_type (5.0).
    SERVICE_TYPE_UNAUTHORISED = 0x100, "ESME_RSERTYPUNAUTH";
    /// Operation recognised but prohibited for this ESME (5.0).
    PROHIBITED = 0x101, "ESME_RPROHIBITED";
    /// service_type temporarily unavailable (5.0).
    SERVICE_TYPE_UNAVAILABLE = 0x102, "ESME_RSERTYPUNAVAIL";
    /// service_type denied (5.0).
    SERVICE_TYPE_DENIED = 0x103, "ESME_RSERTYPDENIED";
    /// Invalid data_coding (5.0).
    INVALID_DATA_CODING = 0x104, "ESME_RINVDCS";
    /// Invalid source address subunit (5.0).
    INVALID_SOURCE_ADDRESS_SUBUNIT = 0x105, "ESME_RINVSRCADDRSUBUNIT";
    /// Invalid destination address subunit (5.0).
    INVALID_DESTINATION_ADDRESS_SUBUNIT = 0x106, "ESME_RINVDSTADDRSUBUNIT";
    /// Invalid broadcast frequency interval (5.0).
    INVALID_BROADCAST_FREQUENCY_INTERVAL = 0x107, "ESME_RINVBCASTFREQINT";
    /// Invalid broadcast alias name (5.0).
    INVALID_BROADCAST_ALIAS_NAME = 0x108, "ESME_RINVBCASTALIAS_NAME";
    /// Invalid broadcast area format (5.0).
    INVALID_BROADCAST_AREA_FORMAT = 0x109, "ESME_RINVBCASTAREAFMT";
    /// Invalid number of broadcast areas (5.0).
    INVALID_NUMBER_OF_BROADCAST_AREAS = 0x10A, "ESME_RINVNUMBCAST_AREAS";
    /// Invalid broadcast content type (5.0).
    INVALID_BROADCAST_CONTENT_TYPE = 0x10B, "ESME_RINVBCASTCNTTYPE";
    /// Invalid broadcast message class (5.0).
    INVALID_BROADCAST_MESSAGE_CLASS = 0x10C, "ESME_RINVBCASTMSGCLASS";
    /// broadcast_sm failed (5.0).
    BROADCAST_FAILED = 0x10D, "ESME_RBCASTFAIL";
    /// query_broadcast_sm failed (5.0).
    BROADCAST_QUERY_FAILED = 0x10E, "ESME_RBCASTQUERYFAIL";
    /// cancel_broadcast_sm failed (5.0).
    BROADCAST_CANCEL_FAILED = 0x10F, "ESME_RBCASTCANCELFAIL";
    /// Invalid number of repeated broadcasts (5.0).
    INVALID_BROADCAST_REPEAT = 0x110, "ESME_RINVBCAST_REP";
    /// Invalid broadcast service group (5.0).
    INVALID_BROADCAST_SERVICE_GROUP = 0x111, "ESME_RINVBCASTSRVGRP";
    /// Invalid broadcast channel indicator (5.0).
    INVALID_BROADCAST_CHANNEL_INDICATOR = 0x112, "ESME_RINVBCASTCHANIND";
}

/// Every specified status is below this (the highest is 0x112).
const SPAN: usize = 0x120;

/// [`CommandStatus::index`] by value; `u8::MAX`: no status there.
const INDEX: [u8; SPAN] = {
    assert!(CommandStatus::ALL.len() < u8::MAX as usize);
    let mut table = [u8::MAX; SPAN];
    let mut i = 0;
    while i < CommandStatus::ALL.len() {
        let v = CommandStatus::ALL[i].0 as usize;
        assert!(v < SPAN);
        table[v] = i as u8;
        i += 1;
    }
    table
};

impl CommandStatus {
    /// Its place in [`CommandStatus::ALL`], `None` for a status the
    /// specifications do not name: a dense index for tables kept per
    /// status, found without a search.
    #[inline]
    pub const fn index(self) -> Option<usize> {
        if self.0 as usize >= SPAN {
            return None;
        }
        match INDEX[self.0 as usize] {
            u8::MAX => None,
            i => Some(i as usize),
        }
    }

    /// The raw value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// `ESME_ROK`.
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// In the MC vendor-specific range 0x400–0x4FF.
    pub const fn is_vendor(self) -> bool {
        matches!(self.0, 0x400..=0x4FF)
    }

    /// A transient condition: retry later with back-off rather than failing the
    /// message (throttling, queue full, system error, receiver temporary error,
    /// transaction-mode delivery failure, service temporarily unavailable).
    pub const fn is_transient(self) -> bool {
        matches!(self.0, 0x08 | 0x14 | 0x58 | 0x64 | 0xFE | 0x102)
    }
}

impl fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None if self.is_vendor() => write!(f, "vendor error 0x{:08X}", self.0),
            None => write!(f, "0x{:08X}", self.0),
        }
    }
}

impl fmt::Debug for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommandStatus({self})")
    }
}

impl From<u32> for CommandStatus {
    fn from(v: u32) -> Self {
        CommandStatus(v)
    }
}

impl From<CommandStatus> for u32 {
    fn from(v: CommandStatus) -> u32 {
        v.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_the_place_in_all_and_none_for_unnamed_statuses() {
        for (i, &s) in CommandStatus::ALL.iter().enumerate() {
            assert_eq!(s.index(), Some(i), "{s:?}");
        }
        for v in [0x0000_0113, 0x0000_011F, 0x0000_0120, 0x0000_0400, u32::MAX] {
            assert_eq!(CommandStatus(v).name(), None);
            assert_eq!(CommandStatus(v).index(), None);
        }
    }

    #[test]
    fn names_round_trip_and_values_unique() {
        let mut seen = std::collections::HashSet::new();
        for s in CommandStatus::ALL {
            assert!(seen.insert(s.0), "duplicate {s}");
            assert_eq!(CommandStatus::from_name(s.name().unwrap()), Some(*s));
        }
        assert_eq!(CommandStatus::ALL.len(), 67);
        assert_eq!(CommandStatus::THROTTLED.to_string(), "ESME_RTHROTTLED");
        assert_eq!(CommandStatus(0x0401).to_string(), "vendor error 0x00000401");
        assert_eq!(
            CommandStatus::from_name("ESME_RINVOPTPARSTREAM"),
            Some(CommandStatus::INVALID_TLV_STREAM)
        );
    }
}
