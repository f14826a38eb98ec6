//! Query, cancel and replace of submitted messages.

use super::body::pdu_body;

pdu_body! {
    /// `query_sm`: the state of a submitted message.
    pub struct QuerySm {
        /// Id from submit_sm_resp / submit_multi_resp / data_sm_resp.
        message_id: cstr(65, INVALID_MESSAGE_ID),
        /// Originator TON of the original submission.
        source_addr_ton: u8,
        /// Originator NPI of the original submission.
        source_addr_npi: u8,
        /// Originator address of the original submission.
        source_addr: cstr(21, INVALID_SOURCE_ADDRESS),
        /// TLVs (none defined).
        tlvs: tlvs,
    }
}

pdu_body! {
    /// `query_sm_resp`.
    pub struct QuerySmResp {
        /// The message's id.
        message_id: cstr(65, INVALID_MESSAGE_ID),
        /// When the message reached a final state (absolute time), or empty.
        final_date: time(INVALID_EXPIRY_TIME),
        /// Message state (1 ENROUTE, 2 DELIVERED, ... see `message::MessageState`).
        message_state: u8,
        /// Network-specific error code.
        error_code: u8,
        /// TLVs (none defined).
        tlvs: tlvs,
    }
}

pdu_body! {
    /// `cancel_sm`: cancel one message, or all messages of a source/destination pair.
    pub struct CancelSm {
        /// Cancel all messages of this service (with an empty message_id).
        service_type: cstr(6, INVALID_SERVICE_TYPE),
        /// The message to cancel, or empty for "all matching".
        message_id: cstr(65, INVALID_MESSAGE_ID),
        /// Originator TON; must match the original.
        source_addr_ton: u8,
        /// Originator NPI.
        source_addr_npi: u8,
        /// Originator address.
        source_addr: cstr(21, INVALID_SOURCE_ADDRESS),
        /// Recipient TON.
        dest_addr_ton: u8,
        /// Recipient NPI.
        dest_addr_npi: u8,
        /// Recipient address.
        destination_addr: cstr(21, INVALID_DESTINATION_ADDRESS),
        /// TLVs (none defined).
        tlvs: tlvs,
    }
}

pdu_body! {
    /// `replace_sm`: replace a message that is still pending.
    pub struct ReplaceSm {
        /// The message to replace.
        message_id: cstr(65, INVALID_MESSAGE_ID),
        /// Originator TON of the original.
        source_addr_ton: u8,
        /// Originator NPI of the original.
        source_addr_npi: u8,
        /// Originator address of the original.
        source_addr: cstr(21, INVALID_SOURCE_ADDRESS),
        /// New schedule, or empty to keep the original.
        schedule_delivery_time: time(INVALID_SCHEDULED_DELIVERY_TIME),
        /// New validity, or empty to keep the original.
        validity_period: time(INVALID_EXPIRY_TIME),
        /// registered_delivery.
        registered_delivery: u8,
        /// sm_default_msg_id.
        sm_default_msg_id: u8,
        /// New user data.
        short_message: sm,
        /// TLVs (5.0: message_payload).
        tlvs: tlvs,
    }
}
