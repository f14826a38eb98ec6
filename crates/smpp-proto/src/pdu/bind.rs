//! Session management bodies: binds, outbind.

use super::body::pdu_body;

pdu_body! {
    /// `bind_transmitter`, `bind_receiver` and `bind_transceiver` (identical bodies).
    pub struct Bind {
        /// ESME identity (login), at most 15 characters.
        system_id: cstr(16, INVALID_SYSTEM_ID),
        /// Password, at most 8 characters.
        password: cstr(9, INVALID_PASSWORD),
        /// ESME category ("VMS", "OTA", often empty), at most 12 characters.
        system_type: cstr(13, INVALID_SYSTEM_TYPE),
        /// SMPP version the ESME speaks: 0x34 (3.4), 0x50 (5.0), ≤ 0x33 older.
        interface_version: u8,
        /// TON of the address range.
        addr_ton: u8,
        /// NPI of the address range.
        addr_npi: u8,
        /// Addresses served (a single address or a regular expression), at most 40 characters.
        address_range: cstr(41, BIND_FAILED),
        /// TLVs (none are defined for binds; unknown ones are carried).
        tlvs: tlvs,
    }
}

pdu_body! {
    /// `bind_*_resp`.
    pub struct BindResp {
        /// MC identity. Often absent from error responses.
        system_id: cstr(16, INVALID_SYSTEM_ID),
        /// TLVs: `sc_interface_version` (absent ⇒ the MC must be treated as pre-3.4).
        tlvs: tlvs,
    }
}

pdu_body! {
    /// `outbind`: the MC connected to the ESME and asks it to bind.
    pub struct Outbind {
        /// MC identity.
        system_id: cstr(16, INVALID_SYSTEM_ID),
        /// Lets the ESME authenticate the MC.
        password: cstr(9, INVALID_PASSWORD),
        /// TLVs (none defined).
        tlvs: tlvs,
    }
}
