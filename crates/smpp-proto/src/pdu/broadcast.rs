//! Cell broadcast bodies (SMPP 5.0).

use super::body::pdu_body;

pdu_body! {
    /// `broadcast_sm`. Its mandatory TLVs: `broadcast_area_identifier` (one or
    /// more), `broadcast_content_type`, `broadcast_rep_num`,
    /// `broadcast_frequency_interval`; the user data is `message_payload`.
    pub struct BroadcastSm {
        /// Application service ("CBS").
        service_type: cstr(6, INVALID_SERVICE_TYPE),
        /// Originator TON.
        source_addr_ton: u8,
        /// Originator NPI.
        source_addr_npi: u8,
        /// Originator address.
        source_addr: cstr(21, INVALID_SOURCE_ADDRESS),
        /// For "broadcast replace": the earlier broadcast's id; else empty.
        message_id: cstr(65, INVALID_MESSAGE_ID),
        /// CBS priority: 0 normal, 1 immediate, 2 high, 4 background.
        priority_flag: u8,
        /// schedule_delivery_time.
        schedule_delivery_time: time(INVALID_SCHEDULED_DELIVERY_TIME),
        /// validity_period.
        validity_period: time(INVALID_EXPIRY_TIME),
        /// 1: replace the broadcast named by message_id.
        replace_if_present_flag: u8,
        /// data_coding.
        data_coding: u8,
        /// sm_default_msg_id.
        sm_default_msg_id: u8,
        /// TLVs.
        tlvs: tlvs,
    }
}

pdu_body! {
    /// `query_broadcast_sm`.
    pub struct QueryBroadcastSm {
        /// The broadcast's id, or empty when querying by `user_message_reference`.
        message_id: cstr(65, INVALID_MESSAGE_ID),
        /// Originator TON.
        source_addr_ton: u8,
        /// Originator NPI.
        source_addr_npi: u8,
        /// Originator address.
        source_addr: cstr(21, INVALID_SOURCE_ADDRESS),
        /// TLVs: `user_message_reference`.
        tlvs: tlvs,
    }
}

pdu_body! {
    /// `cancel_broadcast_sm`.
    pub struct CancelBroadcastSm {
        /// Application service.
        service_type: cstr(6, INVALID_SERVICE_TYPE),
        /// The broadcast's id, or empty when cancelling by `user_message_reference`.
        message_id: cstr(65, INVALID_MESSAGE_ID),
        /// Originator TON.
        source_addr_ton: u8,
        /// Originator NPI.
        source_addr_npi: u8,
        /// Originator address.
        source_addr: cstr(21, INVALID_SOURCE_ADDRESS),
        /// TLVs: `broadcast_content_type`, `user_message_reference`.
        tlvs: tlvs,
    }
}
