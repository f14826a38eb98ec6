//! `command_id`: which operation a PDU carries.

use core::fmt;

/// The `command_id` header field (SMPP 3.4 §5.1.2.1, 5.0 §4.7.5).
///
/// A newtype rather than an enum so that any value read from the wire stays
/// representable: unknown ids are answered with `generic_nack`/`ESME_RINVCMDID`
/// by the session, not rejected by the codec.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct CommandId(pub u32);

/// Bit 31 marks a response.
const RESPONSE_BIT: u32 = 0x8000_0000;

macro_rules! command_ids {
    ($( $(#[$doc:meta])* $name:ident = $value:expr, $spec:literal; )*) => {
        /// The bits a specified command id may have set: the response bit and
/// nine low bits (the highest, `broadcast_sm`'s family, is 0x113).
const SPECIFIED_BITS: u32 = RESPONSE_BIT | 0x1FF;

/// A specified id's slot in [`INDEX`]: response bit, then the low nine.
const fn slot(id: u32) -> usize {
    ((id >> 31) * 512 + (id & 0x1FF)) as usize
}

/// [`CommandId::index`] by [`slot`]; `u8::MAX`: no command there.
const INDEX: [u8; 1024] = {
    assert!(CommandId::ALL.len() < u8::MAX as usize);
    let mut table = [u8::MAX; 1024];
    let mut i = 0;
    while i < CommandId::ALL.len() {
        let id = CommandId::ALL[i].0;
        assert!(id & !SPECIFIED_BITS == 0);
        table[slot(id)] = i as u8;
        i += 1;
    }
    table
};

impl CommandId {
    /// Its place in [`CommandId::ALL`], `None` for an unknown id: a dense
    /// index for tables kept per command (counters, histograms), found
    /// without a search.
    #[inline]
    pub const fn index(self) -> Option<usize> {
        if self.0 & !SPECIFIED_BITS != 0 {
            return None;
        }
        match INDEX[slot(self.0)] {
            u8::MAX => None,
            i => Some(i as usize),
        }
    }

            $( $(#[$doc])* pub const $name: CommandId = CommandId($value); )*

            /// Every command id defined by SMPP 3.4 and 5.0 (33 values).
            pub const ALL: &'static [CommandId] = &[$(CommandId::$name),*];

            /// The specification's name (`"submit_sm"`), or `None` for an unknown id.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some($spec), )*
                    _ => None,
                }
            }

            /// Looks a command id up by its specification name (`"submit_sm_resp"`).
            pub fn from_name(name: &str) -> Option<CommandId> {
                match name {
                    $( $spec => Some(CommandId::$name), )*
                    _ => None,
                }
            }
        }
    };
}

command_ids! {
    /// `generic_nack`: response-only, answers an unusable or unknown request.
    GENERIC_NACK = 0x8000_0000, "generic_nack";
    /// `bind_receiver`.
    BIND_RECEIVER = 0x0000_0001, "bind_receiver";
    /// `bind_receiver_resp`.
    BIND_RECEIVER_RESP = 0x8000_0001, "bind_receiver_resp";
    /// `bind_transmitter`.
    BIND_TRANSMITTER = 0x0000_0002, "bind_transmitter";
    /// `bind_transmitter_resp`.
    BIND_TRANSMITTER_RESP = 0x8000_0002, "bind_transmitter_resp";
    /// `query_sm`.
    QUERY_SM = 0x0000_0003, "query_sm";
    /// `query_sm_resp`.
    QUERY_SM_RESP = 0x8000_0003, "query_sm_resp";
    /// `submit_sm`.
    SUBMIT_SM = 0x0000_0004, "submit_sm";
    /// `submit_sm_resp`.
    SUBMIT_SM_RESP = 0x8000_0004, "submit_sm_resp";
    /// `deliver_sm`.
    DELIVER_SM = 0x0000_0005, "deliver_sm";
    /// `deliver_sm_resp`.
    DELIVER_SM_RESP = 0x8000_0005, "deliver_sm_resp";
    /// `unbind`.
    UNBIND = 0x0000_0006, "unbind";
    /// `unbind_resp`.
    UNBIND_RESP = 0x8000_0006, "unbind_resp";
    /// `replace_sm`.
    REPLACE_SM = 0x0000_0007, "replace_sm";
    /// `replace_sm_resp`.
    REPLACE_SM_RESP = 0x8000_0007, "replace_sm_resp";
    /// `cancel_sm`.
    CANCEL_SM = 0x0000_0008, "cancel_sm";
    /// `cancel_sm_resp`.
    CANCEL_SM_RESP = 0x8000_0008, "cancel_sm_resp";
    /// `bind_transceiver` (new in 3.4).
    BIND_TRANSCEIVER = 0x0000_0009, "bind_transceiver";
    /// `bind_transceiver_resp`.
    BIND_TRANSCEIVER_RESP = 0x8000_0009, "bind_transceiver_resp";
    /// `outbind`: the MC asks the ESME to bind; it has no response PDU.
    OUTBIND = 0x0000_000B, "outbind";
    /// `enquire_link`.
    ENQUIRE_LINK = 0x0000_0015, "enquire_link";
    /// `enquire_link_resp`.
    ENQUIRE_LINK_RESP = 0x8000_0015, "enquire_link_resp";
    /// `submit_multi`.
    SUBMIT_MULTI = 0x0000_0021, "submit_multi";
    /// `submit_multi_resp`.
    SUBMIT_MULTI_RESP = 0x8000_0021, "submit_multi_resp";
    /// `alert_notification`: has no response PDU.
    ALERT_NOTIFICATION = 0x0000_0102, "alert_notification";
    /// `data_sm`.
    DATA_SM = 0x0000_0103, "data_sm";
    /// `data_sm_resp`.
    DATA_SM_RESP = 0x8000_0103, "data_sm_resp";
    /// `broadcast_sm` (5.0).
    BROADCAST_SM = 0x0000_0111, "broadcast_sm";
    /// `broadcast_sm_resp` (5.0).
    BROADCAST_SM_RESP = 0x8000_0111, "broadcast_sm_resp";
    /// `query_broadcast_sm` (5.0).
    QUERY_BROADCAST_SM = 0x0000_0112, "query_broadcast_sm";
    /// `query_broadcast_sm_resp` (5.0).
    QUERY_BROADCAST_SM_RESP = 0x8000_0112, "query_broadcast_sm_resp";
    /// `cancel_broadcast_sm` (5.0).
    CANCEL_BROADCAST_SM = 0x0000_0113, "cancel_broadcast_sm";
    /// `cancel_broadcast_sm_resp` (5.0).
    CANCEL_BROADCAST_SM_RESP = 0x8000_0113, "cancel_broadcast_sm_resp";
}

impl CommandId {
    /// The raw value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// Bit 31 is set: this is a response (`generic_nack` included).
    pub const fn is_response(self) -> bool {
        self.0 & RESPONSE_BIT != 0
    }

    /// Not a response.
    pub const fn is_request(self) -> bool {
        !self.is_response()
    }

    /// Defined by SMPP 3.4 or 5.0.
    pub const fn is_known(self) -> bool {
        self.name().is_some()
    }

    /// In the vendor-reserved ranges 0x00010200–0x000102FF / 0x80010200–0x800102FF.
    pub const fn is_vendor(self) -> bool {
        matches!(self.0 & !RESPONSE_BIT, 0x0001_0200..=0x0001_02FF)
    }

    /// The id of the response to this request. `None` for responses and for the
    /// two requests that have no response: `outbind` and `alert_notification`.
    pub const fn response_id(self) -> Option<CommandId> {
        if self.is_response() || self.0 == Self::OUTBIND.0 || self.0 == Self::ALERT_NOTIFICATION.0 {
            None
        } else {
            Some(CommandId(self.0 | RESPONSE_BIT))
        }
    }

    /// The id of the request this response answers (`None` for requests and `generic_nack`).
    pub const fn request_id(self) -> Option<CommandId> {
        if self.is_response() && self.0 != Self::GENERIC_NACK.0 {
            Some(CommandId(self.0 & !RESPONSE_BIT))
        } else {
            None
        }
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "0x{:08X}", self.0),
        }
    }
}

impl fmt::Debug for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "CommandId({name})"),
            None => write!(f, "CommandId(0x{:08X})", self.0),
        }
    }
}

impl From<u32> for CommandId {
    fn from(v: u32) -> Self {
        CommandId(v)
    }
}

impl From<CommandId> for u32 {
    fn from(v: CommandId) -> u32 {
        v.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_the_place_in_all_and_none_for_unknown_ids() {
        for (i, &c) in CommandId::ALL.iter().enumerate() {
            assert_eq!(c.index(), Some(i), "{c:?}");
        }
        for id in [0x0000_0200, 0x8000_0115, 0x0000_000A, 0x1234_5678, u32::MAX] {
            assert_eq!(CommandId(id).name(), None);
            assert_eq!(CommandId(id).index(), None);
        }
    }

    #[test]
    fn thirty_three_known_ids_with_unique_values() {
        assert_eq!(CommandId::ALL.len(), 33);
        let mut v: Vec<u32> = CommandId::ALL.iter().map(|c| c.0).collect();
        v.sort_unstable();
        v.dedup();
        assert_eq!(v.len(), 33);
        for id in CommandId::ALL {
            assert_eq!(CommandId::from_name(id.name().unwrap()), Some(*id));
        }
    }

    #[test]
    fn response_pairs() {
        assert_eq!(
            CommandId::SUBMIT_SM.response_id(),
            Some(CommandId::SUBMIT_SM_RESP)
        );
        assert_eq!(
            CommandId::SUBMIT_SM_RESP.request_id(),
            Some(CommandId::SUBMIT_SM)
        );
        assert_eq!(CommandId::OUTBIND.response_id(), None);
        assert_eq!(CommandId::ALERT_NOTIFICATION.response_id(), None);
        assert_eq!(CommandId::GENERIC_NACK.request_id(), None);
        assert!(
            !CommandId(0x8000_000B).is_known(),
            "outbind_resp does not exist"
        );
        assert!(
            !CommandId(0x8000_0102).is_known(),
            "alert_notification_resp does not exist"
        );
        assert_eq!(CommandId(0x22).to_string(), "0x00000022");
        assert!(CommandId(0x0001_0234).is_vendor());
    }
}
