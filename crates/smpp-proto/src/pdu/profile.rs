//! Which TLVs each operation may carry, per SMPP version, and the strict
//! profile that refuses the others.
//!
//! The specification tells receivers to ignore a TLV that is known but not
//! expected in a PDU (3.4 §5.3, 5.0 §2.11.1): that is the
//! [`TlvProfile::Lenient`] default, which keeps every TLV. A test SMSC (or
//! an operator checking its customers) may ask for [`TlvProfile::Strict`]
//! instead: a request carrying a TLV this table does not allow for its
//! operation and the session's version is answered `ESME_RTLVNOTALLWD`.
//!
//! The lists: SMPP 3.4 per operation (its PDU definitions; OpenSMPP and
//! Kannel register the same lists); SMPP 5.0 by operation family (§4.2 to
//! §4.6), where `data_sm` takes the submission list when the ESME sends it
//! and the delivery list when the MC does, and every response may carry
//! `congestion_state`. SMPP 3.3 has no TLVs.

use super::{Body, CommandId, FieldValue, Pdu, TlvTag};

/// How a session treats a TLV that the table does not allow in a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlvProfile {
    /// Keep it (the specification's rule for receivers).
    #[default]
    Lenient,
    /// Answer the request with `ESME_RTLVNOTALLWD`. On an ESME's session
    /// this applies to the MC's requests too: an MC that sent no
    /// `sc_interface_version` counts as 3.3, so its receipts' TLVs
    /// (`receipted_message_id`, `message_state`) would be refused.
    Strict,
}

/// Who sent a PDU (5.0's `data_sm` lists differ by direction).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// The ESME.
    Esme,
    /// The MC.
    Mc,
}

use TlvTag as T;

const V34_SUBMIT_SM: &[TlvTag] = &[
    T::USER_MESSAGE_REFERENCE,
    T::SOURCE_PORT,
    T::SOURCE_ADDR_SUBUNIT,
    T::DESTINATION_PORT,
    T::DEST_ADDR_SUBUNIT,
    T::SAR_MSG_REF_NUM,
    T::SAR_TOTAL_SEGMENTS,
    T::SAR_SEGMENT_SEQNUM,
    T::MORE_MESSAGES_TO_SEND,
    T::PAYLOAD_TYPE,
    T::MESSAGE_PAYLOAD,
    T::PRIVACY_INDICATOR,
    T::CALLBACK_NUM,
    T::CALLBACK_NUM_PRES_IND,
    T::CALLBACK_NUM_ATAG,
    T::SOURCE_SUBADDRESS,
    T::DEST_SUBADDRESS,
    T::USER_RESPONSE_CODE,
    T::DISPLAY_TIME,
    T::SMS_SIGNAL,
    T::MS_VALIDITY,
    T::MS_MSG_WAIT_FACILITIES,
    T::NUMBER_OF_MESSAGES,
    T::ALERT_ON_MESSAGE_DELIVERY,
    T::LANGUAGE_INDICATOR,
    T::ITS_REPLY_TYPE,
    T::ITS_SESSION_INFO,
    T::USSD_SERVICE_OP,
];

const V34_SUBMIT_MULTI: &[TlvTag] = &[
    T::USER_MESSAGE_REFERENCE,
    T::SOURCE_PORT,
    T::SOURCE_ADDR_SUBUNIT,
    T::DESTINATION_PORT,
    T::DEST_ADDR_SUBUNIT,
    T::SAR_MSG_REF_NUM,
    T::SAR_TOTAL_SEGMENTS,
    T::SAR_SEGMENT_SEQNUM,
    T::PAYLOAD_TYPE,
    T::MESSAGE_PAYLOAD,
    T::PRIVACY_INDICATOR,
    T::CALLBACK_NUM,
    T::CALLBACK_NUM_PRES_IND,
    T::CALLBACK_NUM_ATAG,
    T::SOURCE_SUBADDRESS,
    T::DEST_SUBADDRESS,
    T::DISPLAY_TIME,
    T::SMS_SIGNAL,
    T::MS_VALIDITY,
    T::MS_MSG_WAIT_FACILITIES,
    T::ALERT_ON_MESSAGE_DELIVERY,
    T::LANGUAGE_INDICATOR,
];

const V34_DELIVER_SM: &[TlvTag] = &[
    T::USER_MESSAGE_REFERENCE,
    T::SOURCE_PORT,
    T::DESTINATION_PORT,
    T::SAR_MSG_REF_NUM,
    T::SAR_TOTAL_SEGMENTS,
    T::SAR_SEGMENT_SEQNUM,
    T::USER_RESPONSE_CODE,
    T::PRIVACY_INDICATOR,
    T::PAYLOAD_TYPE,
    T::MESSAGE_PAYLOAD,
    T::CALLBACK_NUM,
    T::SOURCE_SUBADDRESS,
    T::DEST_SUBADDRESS,
    T::LANGUAGE_INDICATOR,
    T::ITS_SESSION_INFO,
    T::NETWORK_ERROR_CODE,
    T::MESSAGE_STATE,
    T::RECEIPTED_MESSAGE_ID,
];

const V34_DATA_SM: &[TlvTag] = &[
    T::SOURCE_PORT,
    T::SOURCE_ADDR_SUBUNIT,
    T::SOURCE_NETWORK_TYPE,
    T::SOURCE_BEARER_TYPE,
    T::SOURCE_TELEMATICS_ID,
    T::DESTINATION_PORT,
    T::DEST_ADDR_SUBUNIT,
    T::DEST_NETWORK_TYPE,
    T::DEST_BEARER_TYPE,
    T::DEST_TELEMATICS_ID,
    T::SAR_MSG_REF_NUM,
    T::SAR_TOTAL_SEGMENTS,
    T::SAR_SEGMENT_SEQNUM,
    T::MORE_MESSAGES_TO_SEND,
    T::QOS_TIME_TO_LIVE,
    T::PAYLOAD_TYPE,
    T::MESSAGE_PAYLOAD,
    T::SET_DPF,
    T::RECEIPTED_MESSAGE_ID,
    T::MESSAGE_STATE,
    T::NETWORK_ERROR_CODE,
    T::USER_MESSAGE_REFERENCE,
    T::PRIVACY_INDICATOR,
    T::CALLBACK_NUM,
    T::CALLBACK_NUM_PRES_IND,
    T::CALLBACK_NUM_ATAG,
    T::SOURCE_SUBADDRESS,
    T::DEST_SUBADDRESS,
    T::USER_RESPONSE_CODE,
    T::DISPLAY_TIME,
    T::SMS_SIGNAL,
    T::MS_VALIDITY,
    T::MS_MSG_WAIT_FACILITIES,
    T::NUMBER_OF_MESSAGES,
    T::ALERT_ON_MESSAGE_DELIVERY,
    T::LANGUAGE_INDICATOR,
    T::ITS_REPLY_TYPE,
    T::ITS_SESSION_INFO,
];

const V34_DATA_SM_RESP: &[TlvTag] = &[
    T::DELIVERY_FAILURE_REASON,
    T::NETWORK_ERROR_CODE,
    T::ADDITIONAL_STATUS_INFO_TEXT,
    T::DPF_RESULT,
];

const BIND_RESP: &[TlvTag] = &[T::SC_INTERFACE_VERSION];
const ALERT: &[TlvTag] = &[T::MS_AVAILABILITY_STATUS];

/// 5.0 Message Submission Request TLVs (submit_sm, submit_multi without
/// dest_subaddress, data_sm from the ESME).
const V50_SUBMISSION: &[TlvTag] = &[
    T::ALERT_ON_MESSAGE_DELIVERY,
    T::BILLING_IDENTIFICATION,
    T::CALLBACK_NUM,
    T::CALLBACK_NUM_ATAG,
    T::CALLBACK_NUM_PRES_IND,
    T::DEST_ADDR_NP_COUNTRY,
    T::DEST_ADDR_NP_INFORMATION,
    T::DEST_ADDR_NP_RESOLUTION,
    T::DEST_ADDR_SUBUNIT,
    T::DEST_BEARER_TYPE,
    T::DEST_NETWORK_ID,
    T::DEST_NETWORK_TYPE,
    T::DEST_NODE_ID,
    T::DEST_SUBADDRESS,
    T::DEST_TELEMATICS_ID,
    T::DESTINATION_PORT,
    T::DISPLAY_TIME,
    T::ITS_REPLY_TYPE,
    T::ITS_SESSION_INFO,
    T::LANGUAGE_INDICATOR,
    T::MESSAGE_PAYLOAD,
    T::MORE_MESSAGES_TO_SEND,
    T::MS_MSG_WAIT_FACILITIES,
    T::MS_VALIDITY,
    T::NUMBER_OF_MESSAGES,
    T::PAYLOAD_TYPE,
    T::PRIVACY_INDICATOR,
    T::QOS_TIME_TO_LIVE,
    T::SAR_MSG_REF_NUM,
    T::SAR_SEGMENT_SEQNUM,
    T::SAR_TOTAL_SEGMENTS,
    T::SET_DPF,
    T::SMS_SIGNAL,
    T::SOURCE_ADDR_SUBUNIT,
    T::SOURCE_BEARER_TYPE,
    T::SOURCE_NETWORK_ID,
    T::SOURCE_NETWORK_TYPE,
    T::SOURCE_NODE_ID,
    T::SOURCE_PORT,
    T::SOURCE_SUBADDRESS,
    T::SOURCE_TELEMATICS_ID,
    T::USER_MESSAGE_REFERENCE,
    T::USER_RESPONSE_CODE,
    T::USSD_SERVICE_OP,
];

/// 5.0 Message Submission Response TLVs (submit_sm_resp, submit_multi_resp,
/// data_sm_resp from the MC).
const V50_SUBMISSION_RESP: &[TlvTag] = &[
    T::ADDITIONAL_STATUS_INFO_TEXT,
    T::DELIVERY_FAILURE_REASON,
    T::DPF_RESULT,
    T::NETWORK_ERROR_CODE,
];

/// 5.0 Message Delivery Request TLVs (deliver_sm, data_sm from the MC).
const V50_DELIVERY: &[TlvTag] = &[
    T::CALLBACK_NUM,
    T::CALLBACK_NUM_ATAG,
    T::CALLBACK_NUM_PRES_IND,
    T::DEST_ADDR_NP_COUNTRY,
    T::DEST_ADDR_NP_INFORMATION,
    T::DEST_ADDR_NP_RESOLUTION,
    T::DEST_ADDR_SUBUNIT,
    T::DEST_NETWORK_ID,
    T::DEST_NODE_ID,
    T::DEST_SUBADDRESS,
    T::DESTINATION_PORT,
    T::DPF_RESULT,
    T::ITS_REPLY_TYPE,
    T::ITS_SESSION_INFO,
    T::LANGUAGE_INDICATOR,
    T::MESSAGE_PAYLOAD,
    T::MESSAGE_STATE,
    T::NETWORK_ERROR_CODE,
    T::PAYLOAD_TYPE,
    T::PRIVACY_INDICATOR,
    T::RECEIPTED_MESSAGE_ID,
    T::SAR_MSG_REF_NUM,
    T::SAR_SEGMENT_SEQNUM,
    T::SAR_TOTAL_SEGMENTS,
    T::SOURCE_ADDR_SUBUNIT,
    T::SOURCE_NETWORK_ID,
    T::SOURCE_NODE_ID,
    T::SOURCE_PORT,
    T::SOURCE_SUBADDRESS,
    T::USER_MESSAGE_REFERENCE,
    T::USER_RESPONSE_CODE,
    T::USSD_SERVICE_OP,
];

/// 5.0 Message Delivery Response TLVs (deliver_sm_resp, data_sm_resp from the ESME).
const V50_DELIVERY_RESP: &[TlvTag] = &[
    T::ADDITIONAL_STATUS_INFO_TEXT,
    T::DELIVERY_FAILURE_REASON,
    T::NETWORK_ERROR_CODE,
];

const V50_REPLACE_SM: &[TlvTag] = &[T::MESSAGE_PAYLOAD];

const V50_BROADCAST_SM: &[TlvTag] = &[
    // Mandatory TLVs.
    T::BROADCAST_AREA_IDENTIFIER,
    T::BROADCAST_CONTENT_TYPE,
    T::BROADCAST_REP_NUM,
    T::BROADCAST_FREQUENCY_INTERVAL,
    // Optional.
    T::ALERT_ON_MESSAGE_DELIVERY,
    T::BROADCAST_CHANNEL_INDICATOR,
    T::BROADCAST_CONTENT_TYPE_INFO,
    T::BROADCAST_MESSAGE_CLASS,
    T::BROADCAST_SERVICE_GROUP,
    T::CALLBACK_NUM,
    T::CALLBACK_NUM_ATAG,
    T::CALLBACK_NUM_PRES_IND,
    T::DEST_ADDR_SUBUNIT,
    T::DEST_SUBADDRESS,
    T::DESTINATION_PORT,
    T::DISPLAY_TIME,
    T::LANGUAGE_INDICATOR,
    T::MESSAGE_PAYLOAD,
    T::MS_VALIDITY,
    T::PAYLOAD_TYPE,
    T::PRIVACY_INDICATOR,
    T::SMS_SIGNAL,
    T::SOURCE_ADDR_SUBUNIT,
    T::SOURCE_PORT,
    T::SOURCE_SUBADDRESS,
    T::USER_MESSAGE_REFERENCE,
];

/// broadcast_error_status and failed_broadcast_area_identifier (tag 0x0606).
const V50_BROADCAST_SM_RESP: &[TlvTag] = &[T::BROADCAST_ERROR_STATUS, T::BROADCAST_AREA_IDENTIFIER];
const V50_QUERY_BROADCAST_SM: &[TlvTag] = &[T::USER_MESSAGE_REFERENCE];
const V50_QUERY_BROADCAST_SM_RESP: &[TlvTag] = &[
    T::MESSAGE_STATE,
    T::BROADCAST_AREA_IDENTIFIER,
    T::BROADCAST_AREA_SUCCESS,
    T::BROADCAST_END_TIME,
    T::USER_MESSAGE_REFERENCE,
];
const V50_CANCEL_BROADCAST_SM: &[TlvTag] = &[T::BROADCAST_CONTENT_TYPE, T::USER_MESSAGE_REFERENCE];

/// The TLVs `command`, sent by `sender` in a session speaking `version`
/// (`interface_version` encoding), may carry; besides these, a 5.0
/// response may carry `congestion_state` ([`allows`] says so).
pub fn allowed_tlvs(command: CommandId, version: u8, sender: Sender) -> &'static [TlvTag] {
    use CommandId as C;
    if version < 0x34 {
        return &[];
    }
    let bind_resp = matches!(
        command,
        C::BIND_RECEIVER_RESP | C::BIND_TRANSMITTER_RESP | C::BIND_TRANSCEIVER_RESP
    );
    if bind_resp {
        return BIND_RESP;
    }
    if command == C::ALERT_NOTIFICATION {
        return ALERT;
    }
    if version < 0x50 {
        return match command {
            C::SUBMIT_SM => V34_SUBMIT_SM,
            C::SUBMIT_MULTI => V34_SUBMIT_MULTI,
            C::DELIVER_SM => V34_DELIVER_SM,
            C::DATA_SM => V34_DATA_SM,
            C::DATA_SM_RESP => V34_DATA_SM_RESP,
            _ => &[],
        };
    }
    match (command, sender) {
        (C::SUBMIT_SM | C::SUBMIT_MULTI, _) | (C::DATA_SM, Sender::Esme) => V50_SUBMISSION,
        (C::SUBMIT_SM_RESP | C::SUBMIT_MULTI_RESP, _) | (C::DATA_SM_RESP, Sender::Mc) => {
            V50_SUBMISSION_RESP
        }
        (C::DELIVER_SM, _) | (C::DATA_SM, Sender::Mc) => V50_DELIVERY,
        (C::DELIVER_SM_RESP, _) | (C::DATA_SM_RESP, Sender::Esme) => V50_DELIVERY_RESP,
        (C::REPLACE_SM, _) => V50_REPLACE_SM,
        (C::BROADCAST_SM, _) => V50_BROADCAST_SM,
        (C::BROADCAST_SM_RESP, _) => V50_BROADCAST_SM_RESP,
        (C::QUERY_BROADCAST_SM, _) => V50_QUERY_BROADCAST_SM,
        (C::QUERY_BROADCAST_SM_RESP, _) => V50_QUERY_BROADCAST_SM_RESP,
        (C::CANCEL_BROADCAST_SM, _) => V50_CANCEL_BROADCAST_SM,
        _ => &[],
    }
}

/// Whether `command`, sent by `sender` in a session speaking `version`,
/// may carry `tag`.
pub fn allows(command: CommandId, version: u8, sender: Sender, tag: TlvTag) -> bool {
    if command == CommandId::SUBMIT_MULTI && version >= 0x50 && tag == TlvTag::DEST_SUBADDRESS {
        return false; // the one submission TLV submit_multi does not take
    }
    (version >= 0x50 && command.is_response() && tag == TlvTag::CONGESTION_STATE)
        || allowed_tlvs(command, version, sender).contains(&tag)
}

/// The first TLV of `pdu` that the table does not allow (see [`allows`]).
pub fn first_disallowed(pdu: &Pdu, version: u8, sender: Sender) -> Option<TlvTag> {
    let command = pdu.command_id();
    if matches!(pdu.body, Body::Unknown(_)) {
        return None;
    }
    let mut found = None;
    pdu.body.for_each_field(|field| {
        if let (None, FieldValue::Tlvs(tlvs)) = (found, field.value) {
            found = tlvs
                .iter()
                .map(|tlv| tlv.tag)
                .find(|&tag| !allows(command, version, sender, tag));
        }
    });
    found
}

/// Whether a TLV with `tag` may be sent to a peer speaking `version`
/// (`interface_version` encoding) at all, whatever the operation: nothing
/// to a 3.3 peer (below 0x34; 3.4 §5.3.2.25, 5.0 §2.11.2), nothing SMPP 5.0
/// introduced to a 3.4 peer (the `since` column of [`TlvTag::ALL`]:
/// `congestion_state`, `billing_identification`, the `broadcast_*` and
/// network/node id TLVs...), everything to a 5.0 peer. Tags no version
/// defines (vendor TLVs) go to 3.4 and 5.0 peers: they are the operator's
/// business, and receivers skip what they do not know.
pub fn fits_version(tag: TlvTag, version: u8) -> bool {
    if version < 0x34 {
        return false;
    }
    version >= 0x50 || tag.info().is_none_or(|info| info.since <= version)
}

/// How many TLVs of `tlvs` a peer speaking `version` cannot take
/// ([`fits_version`]).
pub fn count_unfit(tlvs: &super::Tlvs, version: u8) -> usize {
    if version >= 0x50 || tlvs.is_empty() {
        return 0;
    }
    tlvs.iter()
        .filter(|t| !fits_version(t.tag, version))
        .count()
}

/// Removes from `tlvs` every TLV a peer speaking `version` cannot take
/// ([`fits_version`]), keeping the others in order; returns how many went.
pub fn strip_unfit(tlvs: &mut super::Tlvs, version: u8) -> usize {
    let unfit = count_unfit(tlvs, version);
    if unfit == 0 {
        return 0;
    }
    let mut kept = Vec::with_capacity(tlvs.wire_len());
    for t in tlvs.iter().filter(|t| fits_version(t.tag, version)) {
        // Each value came out of a valid section: its length fits 16 bits.
        kept.extend_from_slice(&t.tag.0.to_be_bytes());
        kept.extend_from_slice(&(t.value.len() as u16).to_be_bytes());
        kept.extend_from_slice(t.value);
    }
    *tlvs = super::Tlvs::from_checked(bytes::Bytes::from(kept));
    unfit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::SubmitSm;

    #[test]
    fn three_three_allows_nothing() {
        assert!(!allows(
            CommandId::SUBMIT_SM,
            0x33,
            Sender::Esme,
            T::MESSAGE_PAYLOAD
        ));
        assert!(!allows(
            CommandId::BIND_TRANSMITTER_RESP,
            0x00,
            Sender::Mc,
            T::SC_INTERFACE_VERSION
        ));
    }

    #[test]
    fn version_specific_tlvs() {
        // billing_identification came with 5.0.
        assert!(!allows(
            CommandId::SUBMIT_SM,
            0x34,
            Sender::Esme,
            T::BILLING_IDENTIFICATION
        ));
        assert!(allows(
            CommandId::SUBMIT_SM,
            0x50,
            Sender::Esme,
            T::BILLING_IDENTIFICATION
        ));
        // congestion_state: any 5.0 response, no 3.4 one, no request.
        assert!(allows(
            CommandId::SUBMIT_SM_RESP,
            0x50,
            Sender::Mc,
            T::CONGESTION_STATE
        ));
        assert!(allows(
            CommandId::ENQUIRE_LINK_RESP,
            0x50,
            Sender::Esme,
            T::CONGESTION_STATE
        ));
        assert!(!allows(
            CommandId::SUBMIT_SM_RESP,
            0x34,
            Sender::Mc,
            T::CONGESTION_STATE
        ));
        assert!(!allows(
            CommandId::SUBMIT_SM,
            0x50,
            Sender::Esme,
            T::CONGESTION_STATE
        ));
        // replace_sm's message_payload is 5.0 only.
        assert!(!allows(
            CommandId::REPLACE_SM,
            0x34,
            Sender::Esme,
            T::MESSAGE_PAYLOAD
        ));
        assert!(allows(
            CommandId::REPLACE_SM,
            0x50,
            Sender::Esme,
            T::MESSAGE_PAYLOAD
        ));
        // submit_multi takes every submission TLV but dest_subaddress in 5.0.
        assert!(!allows(
            CommandId::SUBMIT_MULTI,
            0x50,
            Sender::Esme,
            T::DEST_SUBADDRESS
        ));
        assert!(allows(
            CommandId::SUBMIT_MULTI,
            0x34,
            Sender::Esme,
            T::DEST_SUBADDRESS
        ));
        assert!(allows(
            CommandId::SUBMIT_SM,
            0x50,
            Sender::Esme,
            T::DEST_SUBADDRESS
        ));
    }

    #[test]
    fn data_sm_lists_follow_the_sender_in_five_oh() {
        // receipted_message_id: a delivery TLV, so only from the MC in 5.0.
        assert!(allows(
            CommandId::DATA_SM,
            0x50,
            Sender::Mc,
            T::RECEIPTED_MESSAGE_ID
        ));
        assert!(!allows(
            CommandId::DATA_SM,
            0x50,
            Sender::Esme,
            T::RECEIPTED_MESSAGE_ID
        ));
        // 3.4 has one list for both directions.
        assert!(allows(
            CommandId::DATA_SM,
            0x34,
            Sender::Esme,
            T::RECEIPTED_MESSAGE_ID
        ));
        assert!(!allows(
            CommandId::DATA_SM_RESP,
            0x50,
            Sender::Esme,
            T::DPF_RESULT
        ));
        assert!(allows(
            CommandId::DATA_SM_RESP,
            0x50,
            Sender::Mc,
            T::DPF_RESULT
        ));
    }

    #[test]
    fn operations_without_tlvs() {
        for id in [
            CommandId::QUERY_SM,
            CommandId::CANCEL_SM,
            CommandId::ENQUIRE_LINK,
            CommandId::UNBIND,
        ] {
            for version in [0x34, 0x50] {
                assert!(allowed_tlvs(id, version, Sender::Esme).is_empty(), "{id}");
            }
        }
    }

    #[test]
    fn the_first_tlv_out_of_place_is_named() {
        let mut sm = SubmitSm::default();
        sm.tlvs.set_u16(T::USER_MESSAGE_REFERENCE, 7);
        let pdu = Pdu::request(
            crate::pdu::SequenceNumber::new(1),
            Body::SubmitSm(Box::new(sm.clone())),
        );
        assert_eq!(first_disallowed(&pdu, 0x34, Sender::Esme), None);
        assert_eq!(
            first_disallowed(&pdu, 0x33, Sender::Esme),
            Some(T::USER_MESSAGE_REFERENCE)
        );
        sm.tlvs.set_u8(T::RECEIPTED_MESSAGE_ID, 1);
        let pdu = Pdu::request(
            crate::pdu::SequenceNumber::new(1),
            Body::SubmitSm(Box::new(sm)),
        );
        assert_eq!(
            first_disallowed(&pdu, 0x34, Sender::Esme),
            Some(T::RECEIPTED_MESSAGE_ID)
        );
        let data = Pdu::request(
            crate::pdu::SequenceNumber::new(2),
            Body::DataSm(Box::default()),
        );
        assert_eq!(first_disallowed(&data, 0x50, Sender::Esme), None);
    }
}
