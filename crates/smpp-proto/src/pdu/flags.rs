//! Typed views of the bit fields `esm_class` (§5.2.12) and
//! `registered_delivery` (§5.2.17).
//!
//! The PDU structs keep these fields as `u8` (what the wire carries); the
//! types here read and build them by name, and keep every bit they do not
//! name (reserved ones included) as it was:
//!
//! ```
//! use smpp_proto::pdu::{EsmClass, MessageType, ReceiptRequest, RegisteredDelivery};
//!
//! let esm = EsmClass::from(0x44);
//! assert!(esm.is_delivery_receipt() && esm.udhi());
//! assert_eq!(esm.message_type(), MessageType::DeliveryReceipt);
//!
//! let rd = RegisteredDelivery::NONE
//!     .with_receipt(ReceiptRequest::FailureOnly)
//!     .with_intermediate_notification(true);
//! assert_eq!(rd.bits(), 0x12);
//! assert!(rd.wants_receipt_for(false) && !rd.wants_receipt_for(true));
//! ```

use core::fmt;

/// `esm_class`: messaging mode (bits 1-0), message type (bits 5-2) and GSM
/// network features (bits 7-6: UDHI, reply path).
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EsmClass(u8);

/// The messaging mode of an `esm_class` (bits 1-0; meaningful in submissions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessagingMode {
    /// 0x00: the MC's default mode (usually store and forward).
    Default,
    /// 0x01: datagram (one attempt, no receipt).
    Datagram,
    /// 0x02: forward (transaction) mode: the answer waits for the outcome.
    Forward,
    /// 0x03: explicit store and forward.
    StoreAndForward,
}

/// The message type of an `esm_class` (bits 5-2), by the value it adds to
/// the octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// 0x00: a normal message.
    Default,
    /// 0x04: an MC delivery receipt.
    DeliveryReceipt,
    /// 0x08: an SME delivery acknowledgement.
    SmeDeliveryAck,
    /// 0x10: an SME manual/user acknowledgement.
    SmeManualAck,
    /// 0x18: a conversation abort (Korean CDMA).
    ConversationAbort,
    /// 0x20: an intermediate delivery notification.
    IntermediateNotification,
    /// Any other value of bits 5-2 (reserved), as it adds to the octet.
    Reserved(u8),
}

impl MessageType {
    /// The bits it sets in `esm_class` (within 0x3C).
    pub const fn bits(self) -> u8 {
        match self {
            MessageType::Default => 0x00,
            MessageType::DeliveryReceipt => 0x04,
            MessageType::SmeDeliveryAck => 0x08,
            MessageType::SmeManualAck => 0x10,
            MessageType::ConversationAbort => 0x18,
            MessageType::IntermediateNotification => 0x20,
            MessageType::Reserved(bits) => bits & EsmClass::TYPE_MASK,
        }
    }
}

impl EsmClass {
    /// Bits 1-0: the messaging mode.
    pub const MODE_MASK: u8 = 0x03;
    /// Bits 5-2: the message type (0x3C, not cloudhopper's 0x1C).
    pub const TYPE_MASK: u8 = 0x3C;
    /// Bit 6: the user data starts with a User Data Header.
    pub const UDHI: u8 = 0x40;
    /// Bit 7: reply path (GSM).
    pub const REPLY_PATH: u8 = 0x80;
    /// Bits 7-6: the GSM network specific features.
    pub const FEATURES_MASK: u8 = 0xC0;

    /// A normal message in the default mode, no UDH (0x00).
    pub const DEFAULT: EsmClass = EsmClass(0);
    /// An MC delivery receipt (0x04).
    pub const DELIVERY_RECEIPT: EsmClass = EsmClass(0x04);
    /// An intermediate delivery notification (0x20).
    pub const INTERMEDIATE_NOTIFICATION: EsmClass = EsmClass(0x20);

    /// The octet as is.
    pub const fn new(bits: u8) -> EsmClass {
        EsmClass(bits)
    }

    /// The octet (every bit kept, reserved ones included).
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// The messaging mode (bits 1-0).
    pub const fn mode(self) -> MessagingMode {
        match self.0 & Self::MODE_MASK {
            0 => MessagingMode::Default,
            1 => MessagingMode::Datagram,
            2 => MessagingMode::Forward,
            _ => MessagingMode::StoreAndForward,
        }
    }

    /// The same with another messaging mode.
    #[must_use]
    pub const fn with_mode(self, mode: MessagingMode) -> EsmClass {
        let bits = match mode {
            MessagingMode::Default => 0,
            MessagingMode::Datagram => 1,
            MessagingMode::Forward => 2,
            MessagingMode::StoreAndForward => 3,
        };
        EsmClass(self.0 & !Self::MODE_MASK | bits)
    }

    /// The message type (bits 5-2).
    pub const fn message_type(self) -> MessageType {
        match self.0 & Self::TYPE_MASK {
            0x00 => MessageType::Default,
            0x04 => MessageType::DeliveryReceipt,
            0x08 => MessageType::SmeDeliveryAck,
            0x10 => MessageType::SmeManualAck,
            0x18 => MessageType::ConversationAbort,
            0x20 => MessageType::IntermediateNotification,
            other => MessageType::Reserved(other),
        }
    }

    /// The same with another message type.
    #[must_use]
    pub const fn with_message_type(self, message_type: MessageType) -> EsmClass {
        EsmClass(self.0 & !Self::TYPE_MASK | message_type.bits())
    }

    /// An MC delivery receipt (message type 0x04, whatever the other bits).
    pub const fn is_delivery_receipt(self) -> bool {
        self.0 & Self::TYPE_MASK == 0x04
    }

    /// An intermediate delivery notification (message type 0x20).
    pub const fn is_intermediate_notification(self) -> bool {
        self.0 & Self::TYPE_MASK == 0x20
    }

    /// A delivery receipt or an intermediate notification: what a receiver
    /// reads as a report on an earlier message rather than a new message.
    pub const fn is_receipt(self) -> bool {
        self.is_delivery_receipt() || self.is_intermediate_notification()
    }

    /// UDHI: the user data starts with a User Data Header.
    pub const fn udhi(self) -> bool {
        self.0 & Self::UDHI != 0
    }

    /// The same with UDHI set or cleared.
    #[must_use]
    pub const fn with_udhi(self, on: bool) -> EsmClass {
        self.with_bit(Self::UDHI, on)
    }

    /// The reply path bit.
    pub const fn reply_path(self) -> bool {
        self.0 & Self::REPLY_PATH != 0
    }

    /// The same with the reply path bit set or cleared.
    #[must_use]
    pub const fn with_reply_path(self, on: bool) -> EsmClass {
        self.with_bit(Self::REPLY_PATH, on)
    }

    /// Only the GSM network features (UDHI, reply path): what passes on when
    /// a message is forwarded as a normal message in the default mode.
    #[must_use]
    pub const fn network_features(self) -> EsmClass {
        EsmClass(self.0 & Self::FEATURES_MASK)
    }

    /// The user data after its User Data Header when UDHI is set (the UDHL
    /// octet says how long the header is; a header longer than the data
    /// leaves nothing), else all of it.
    pub fn strip_udh(self, user_data: &[u8]) -> &[u8] {
        if !self.udhi() {
            return user_data;
        }
        let skip = user_data.first().map_or(0, |&l| usize::from(l) + 1);
        user_data.get(skip..).unwrap_or_default()
    }

    const fn with_bit(self, bit: u8, on: bool) -> EsmClass {
        if on {
            EsmClass(self.0 | bit)
        } else {
            EsmClass(self.0 & !bit)
        }
    }
}

impl From<u8> for EsmClass {
    fn from(bits: u8) -> EsmClass {
        EsmClass(bits)
    }
}

impl From<EsmClass> for u8 {
    fn from(esm: EsmClass) -> u8 {
        esm.0
    }
}

impl fmt::Debug for EsmClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EsmClass")
            .field("bits", &format_args!("{:#04x}", self.0))
            .field("mode", &self.mode())
            .field("message_type", &self.message_type())
            .field("udhi", &self.udhi())
            .field("reply_path", &self.reply_path())
            .finish()
    }
}

/// `registered_delivery`: the MC delivery receipt asked for (bits 1-0), SME
/// originated acknowledgements (bits 3-2) and the intermediate notification
/// (bit 4).
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RegisteredDelivery(u8);

/// Which MC delivery receipt a submission asks for (bits 1-0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiptRequest {
    /// 0x00: none.
    None,
    /// 0x01: on the final outcome, success or failure.
    SuccessOrFailure,
    /// 0x02: on failure only (v5.0: a cancellation counts as one).
    FailureOnly,
    /// 0x03: on success only (v5.0; reserved in v3.4).
    SuccessOnly,
}

impl RegisteredDelivery {
    /// Bits 1-0: the MC delivery receipt.
    pub const RECEIPT_MASK: u8 = 0x03;
    /// Bit 2: SME delivery acknowledgement requested.
    pub const SME_DELIVERY_ACK: u8 = 0x04;
    /// Bit 3: SME manual/user acknowledgement requested.
    pub const SME_MANUAL_ACK: u8 = 0x08;
    /// Bit 4: intermediate notification requested (the v3.4 text calls it
    /// "bit 5"; its value, and every implementation, is 0x10).
    pub const INTERMEDIATE_NOTIFICATION: u8 = 0x10;

    /// Nothing asked for (0x00).
    pub const NONE: RegisteredDelivery = RegisteredDelivery(0);
    /// A receipt on the final outcome, success or failure (0x01).
    pub const RECEIPT: RegisteredDelivery = RegisteredDelivery(0x01);

    /// The octet as is.
    pub const fn new(bits: u8) -> RegisteredDelivery {
        RegisteredDelivery(bits)
    }

    /// The octet (every bit kept, reserved ones included).
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// The MC delivery receipt asked for.
    pub const fn receipt(self) -> ReceiptRequest {
        match self.0 & Self::RECEIPT_MASK {
            0 => ReceiptRequest::None,
            1 => ReceiptRequest::SuccessOrFailure,
            2 => ReceiptRequest::FailureOnly,
            _ => ReceiptRequest::SuccessOnly,
        }
    }

    /// The same asking for another receipt.
    #[must_use]
    pub const fn with_receipt(self, receipt: ReceiptRequest) -> RegisteredDelivery {
        let bits = match receipt {
            ReceiptRequest::None => 0,
            ReceiptRequest::SuccessOrFailure => 1,
            ReceiptRequest::FailureOnly => 2,
            ReceiptRequest::SuccessOnly => 3,
        };
        RegisteredDelivery(self.0 & !Self::RECEIPT_MASK | bits)
    }

    /// Whether an MC delivery receipt is asked for on some outcome.
    pub const fn wants_receipt(self) -> bool {
        self.0 & Self::RECEIPT_MASK != 0
    }

    /// Whether a receipt is asked for on this final outcome: `success` for
    /// a delivered message, `false` for every other final state (undeliverable,
    /// expired, rejected, deleted...).
    pub const fn wants_receipt_for(self, success: bool) -> bool {
        match self.receipt() {
            ReceiptRequest::None => false,
            ReceiptRequest::SuccessOrFailure => true,
            ReceiptRequest::FailureOnly => !success,
            ReceiptRequest::SuccessOnly => success,
        }
    }

    /// An SME delivery acknowledgement is asked for (0x04).
    pub const fn sme_delivery_ack(self) -> bool {
        self.0 & Self::SME_DELIVERY_ACK != 0
    }

    /// An SME manual/user acknowledgement is asked for (0x08).
    pub const fn sme_manual_ack(self) -> bool {
        self.0 & Self::SME_MANUAL_ACK != 0
    }

    /// An intermediate notification is asked for (0x10).
    pub const fn intermediate_notification(self) -> bool {
        self.0 & Self::INTERMEDIATE_NOTIFICATION != 0
    }

    /// The same with the SME delivery acknowledgement bit set or cleared.
    #[must_use]
    pub const fn with_sme_delivery_ack(self, on: bool) -> RegisteredDelivery {
        self.with_bit(Self::SME_DELIVERY_ACK, on)
    }

    /// The same with the SME manual acknowledgement bit set or cleared.
    #[must_use]
    pub const fn with_sme_manual_ack(self, on: bool) -> RegisteredDelivery {
        self.with_bit(Self::SME_MANUAL_ACK, on)
    }

    /// The same with the intermediate notification bit set or cleared.
    #[must_use]
    pub const fn with_intermediate_notification(self, on: bool) -> RegisteredDelivery {
        self.with_bit(Self::INTERMEDIATE_NOTIFICATION, on)
    }

    const fn with_bit(self, bit: u8, on: bool) -> RegisteredDelivery {
        if on {
            RegisteredDelivery(self.0 | bit)
        } else {
            RegisteredDelivery(self.0 & !bit)
        }
    }
}

impl From<u8> for RegisteredDelivery {
    fn from(bits: u8) -> RegisteredDelivery {
        RegisteredDelivery(bits)
    }
}

impl From<RegisteredDelivery> for u8 {
    fn from(rd: RegisteredDelivery) -> u8 {
        rd.0
    }
}

impl fmt::Debug for RegisteredDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredDelivery")
            .field("bits", &format_args!("{:#04x}", self.0))
            .field("receipt", &self.receipt())
            .field("sme_delivery_ack", &self.sme_delivery_ack())
            .field("sme_manual_ack", &self.sme_manual_ack())
            .field(
                "intermediate_notification",
                &self.intermediate_notification(),
            )
            .finish()
    }
}

/// Typed accessors of the bodies that carry `esm_class` and
/// `registered_delivery` (the fields stay `u8`).
macro_rules! typed_fields {
    (esm: $($esm:ty),*; rd: $($rd:ty),*) => {
        $(impl $esm {
            /// `esm_class`, typed.
            pub fn esm_class(&self) -> EsmClass {
                EsmClass(self.esm_class)
            }

            /// Sets `esm_class`.
            pub fn set_esm_class(&mut self, esm_class: EsmClass) {
                self.esm_class = esm_class.bits();
            }
        })*
        $(impl $rd {
            /// `registered_delivery`, typed.
            pub fn registered_delivery(&self) -> RegisteredDelivery {
                RegisteredDelivery(self.registered_delivery)
            }

            /// Sets `registered_delivery`.
            pub fn set_registered_delivery(&mut self, registered_delivery: RegisteredDelivery) {
                self.registered_delivery = registered_delivery.bits();
            }
        })*
    };
}

typed_fields! {
    esm: super::SubmitSm, super::DataSm, super::SubmitMulti;
    rd: super::SubmitSm, super::DataSm, super::SubmitMulti, super::ReplaceSm
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::{DataSm, ReplaceSm, SubmitMulti, SubmitSm};

    #[test]
    fn every_messaging_mode() {
        for (bits, mode) in [
            (0x00, MessagingMode::Default),
            (0x01, MessagingMode::Datagram),
            (0x02, MessagingMode::Forward),
            (0x03, MessagingMode::StoreAndForward),
        ] {
            assert_eq!(EsmClass::from(bits).mode(), mode);
            assert_eq!(EsmClass::from(0xFC | bits).mode(), mode);
            assert_eq!(EsmClass::from(0xFF).with_mode(mode).bits(), 0xFC | bits);
            assert_eq!(EsmClass::DEFAULT.with_mode(mode).bits(), bits);
        }
    }

    #[test]
    fn every_message_type() {
        for (bits, kind) in [
            (0x00, MessageType::Default),
            (0x04, MessageType::DeliveryReceipt),
            (0x08, MessageType::SmeDeliveryAck),
            (0x10, MessageType::SmeManualAck),
            (0x18, MessageType::ConversationAbort),
            (0x20, MessageType::IntermediateNotification),
            (0x0C, MessageType::Reserved(0x0C)),
            (0x3C, MessageType::Reserved(0x3C)),
        ] {
            assert_eq!(EsmClass::from(bits).message_type(), kind, "{bits:#x}");
            // The other bits do not change the type, and stay.
            assert_eq!(EsmClass::from(0xC3 | bits).message_type(), kind);
            assert_eq!(kind.bits(), bits);
            assert_eq!(
                EsmClass::from(0xC3).with_message_type(kind).bits(),
                0xC3 | bits
            );
        }
        assert_eq!(MessageType::Reserved(0xFF).bits(), 0x3C);
    }

    #[test]
    fn receipts_are_told_by_the_type_bits_only() {
        for bits in 0..=u8::MAX {
            let esm = EsmClass::from(bits);
            assert_eq!(esm.is_delivery_receipt(), bits & 0x3C == 0x04, "{bits:#x}");
            assert_eq!(
                esm.is_intermediate_notification(),
                bits & 0x3C == 0x20,
                "{bits:#x}"
            );
            assert_eq!(esm.is_receipt(), matches!(bits & 0x3C, 0x04 | 0x20));
            assert_eq!(esm.udhi(), bits & 0x40 != 0);
            assert_eq!(esm.reply_path(), bits & 0x80 != 0);
            assert_eq!(esm.network_features().bits(), bits & 0xC0);
            assert_eq!(u8::from(esm), bits);
        }
        assert!(EsmClass::from(0x44).is_delivery_receipt());
        assert!(!EsmClass::from(0x08).is_receipt());
        assert_eq!(EsmClass::DELIVERY_RECEIPT.bits(), 0x04);
        assert_eq!(EsmClass::INTERMEDIATE_NOTIFICATION.bits(), 0x20);
    }

    #[test]
    fn udhi_and_reply_path_set_and_clear_one_bit() {
        let esm = EsmClass::from(0x23);
        assert_eq!(esm.with_udhi(true).bits(), 0x63);
        assert_eq!(esm.with_udhi(true).with_udhi(false), esm);
        assert_eq!(esm.with_reply_path(true).bits(), 0xA3);
        assert_eq!(esm.with_reply_path(true).with_reply_path(false), esm);
    }

    #[test]
    fn strip_udh_skips_the_header_only_with_udhi() {
        let data = [0x05, 0x00, 0x03, 0x01, 0x02, 0x01, b'h', b'i'];
        assert_eq!(EsmClass::from(0x40).strip_udh(&data), b"hi");
        assert_eq!(EsmClass::from(0x00).strip_udh(&data), &data[..]);
        assert_eq!(EsmClass::from(0x40).strip_udh(&[9, 1]), b"");
        assert_eq!(EsmClass::from(0x40).strip_udh(&[]), b"");
    }

    #[test]
    fn every_receipt_request() {
        for (bits, kind, success, failure) in [
            (0x00, ReceiptRequest::None, false, false),
            (0x01, ReceiptRequest::SuccessOrFailure, true, true),
            (0x02, ReceiptRequest::FailureOnly, false, true),
            (0x03, ReceiptRequest::SuccessOnly, true, false),
        ] {
            for rd in [
                RegisteredDelivery::from(bits),
                RegisteredDelivery::from(0xFC | bits),
            ] {
                assert_eq!(rd.receipt(), kind);
                assert_eq!(rd.wants_receipt(), bits != 0);
                assert_eq!(rd.wants_receipt_for(true), success, "{bits:#x}");
                assert_eq!(rd.wants_receipt_for(false), failure, "{bits:#x}");
            }
            assert_eq!(
                RegisteredDelivery::from(0xFF).with_receipt(kind).bits(),
                0xFC | bits
            );
        }
    }

    #[test]
    fn sme_acks_and_the_intermediate_notification() {
        for bits in 0..=u8::MAX {
            let rd = RegisteredDelivery::from(bits);
            assert_eq!(rd.sme_delivery_ack(), bits & 0x04 != 0);
            assert_eq!(rd.sme_manual_ack(), bits & 0x08 != 0);
            assert_eq!(rd.intermediate_notification(), bits & 0x10 != 0);
            assert_eq!(u8::from(rd), bits);
        }
        let rd = RegisteredDelivery::NONE;
        assert_eq!(rd.with_sme_delivery_ack(true).bits(), 0x04);
        assert_eq!(rd.with_sme_manual_ack(true).bits(), 0x08);
        assert_eq!(rd.with_intermediate_notification(true).bits(), 0x10);
        assert_eq!(
            RegisteredDelivery::from(0xFF)
                .with_sme_delivery_ack(false)
                .with_sme_manual_ack(false)
                .with_intermediate_notification(false)
                .bits(),
            0xE3
        );
        assert_eq!(RegisteredDelivery::RECEIPT.bits(), 0x01);
    }

    #[test]
    fn bodies_read_and_set_the_typed_fields() {
        let mut sm = SubmitSm {
            esm_class: 0x44,
            registered_delivery: 0x11,
            ..Default::default()
        };
        assert!(sm.esm_class().is_delivery_receipt());
        assert!(sm.registered_delivery().intermediate_notification());
        sm.set_esm_class(EsmClass::INTERMEDIATE_NOTIFICATION);
        sm.set_registered_delivery(RegisteredDelivery::NONE);
        assert_eq!((sm.esm_class, sm.registered_delivery), (0x20, 0));
        let mut data = DataSm::default();
        data.set_esm_class(EsmClass::DEFAULT.with_udhi(true));
        data.set_registered_delivery(RegisteredDelivery::RECEIPT);
        assert_eq!((data.esm_class, data.registered_delivery), (0x40, 1));
        let mut multi = SubmitMulti::default();
        multi.set_esm_class(EsmClass::from(3));
        multi.set_registered_delivery(RegisteredDelivery::from(2));
        assert_eq!(multi.esm_class().mode(), MessagingMode::StoreAndForward);
        assert_eq!(
            multi.registered_delivery().receipt(),
            ReceiptRequest::FailureOnly
        );
        let mut replace = ReplaceSm::default();
        replace.set_registered_delivery(RegisteredDelivery::from(3));
        assert_eq!(replace.registered_delivery, 3);
    }

    #[test]
    fn debug_names_the_parts() {
        let s = format!("{:?}", EsmClass::from(0x44));
        assert!(s.contains("0x44") && s.contains("DeliveryReceipt") && s.contains("udhi: true"));
        let s = format!("{:?}", RegisteredDelivery::from(0x11));
        assert!(s.contains("0x11") && s.contains("SuccessOrFailure"));
    }
}
