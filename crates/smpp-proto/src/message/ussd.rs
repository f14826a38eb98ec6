//! USSD: the `ussd_service_op` TLV (0x0501).

/// Values of the `ussd_service_op` TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UssdServiceOp {
    /// 0: PSSD indication.
    PssdIndication,
    /// 1: PSSR indication.
    PssrIndication,
    /// 2: USSR request.
    UssrRequest,
    /// 3: USSN request.
    UssnRequest,
    /// 16: PSSD response.
    PssdResponse,
    /// 17: PSSR response.
    PssrResponse,
    /// 18: USSR confirm.
    UssrConfirm,
    /// 19: USSN confirm.
    UssnConfirm,
    /// 4–15 and 20–31: reserved.
    Reserved(u8),
    /// 32–255: vendor specific.
    Vendor(u8),
}

impl UssdServiceOp {
    /// Maps the TLV octet (total: every value has a variant).
    pub const fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::PssdIndication,
            1 => Self::PssrIndication,
            2 => Self::UssrRequest,
            3 => Self::UssnRequest,
            16 => Self::PssdResponse,
            17 => Self::PssrResponse,
            18 => Self::UssrConfirm,
            19 => Self::UssnConfirm,
            32..=255 => Self::Vendor(v),
            _ => Self::Reserved(v),
        }
    }

    /// The TLV octet.
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::PssdIndication => 0,
            Self::PssrIndication => 1,
            Self::UssrRequest => 2,
            Self::UssnRequest => 3,
            Self::PssdResponse => 16,
            Self::PssrResponse => 17,
            Self::UssrConfirm => 18,
            Self::UssnConfirm => 19,
            Self::Reserved(v) | Self::Vendor(v) => v,
        }
    }

    /// Whether this is a network-initiated request/indication (0–3) rather than a
    /// response/confirmation (16–19).
    pub const fn is_request(self) -> bool {
        matches!(self.to_u8(), 0..=3)
    }
}

impl From<u8> for UssdServiceOp {
    fn from(v: u8) -> Self {
        Self::from_u8(v)
    }
}

impl From<UssdServiceOp> for u8 {
    fn from(v: UssdServiceOp) -> Self {
        v.to_u8()
    }
}
