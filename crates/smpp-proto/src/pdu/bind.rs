//! Session management bodies: binds, outbind.

use super::body::pdu_body;

pdu_body! {
    manual_default;
    /// `bind_transmitter`, `bind_receiver` and `bind_transceiver` (identical bodies).
    ///
    /// `Bind::default()` offers SMPP 3.4 (`interface_version` 0x34), as
    /// ESME libraries do: a bind that offers 0x33 or less is taken as 3.3
    /// and is sent no TLVs at all (not even a receipt's), so that is only
    /// ever asked for explicitly.
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

impl Default for Bind {
    fn default() -> Self {
        Bind {
            system_id: Default::default(),
            password: Default::default(),
            system_type: Default::default(),
            interface_version: 0x34,
            addr_ton: 0,
            addr_npi: 0,
            address_range: Default::default(),
            tlvs: Default::default(),
        }
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
