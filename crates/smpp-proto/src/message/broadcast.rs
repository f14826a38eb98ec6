//! SMPP 5.0 cell broadcast and billing helpers: typed values for the
//! broadcast TLVs, a `broadcast_sm` builder that always carries the four
//! mandatory TLVs, and `billing_identification`.

use bytes::Bytes;

use super::coding::DataCoding;
use crate::pdu::{
    BroadcastContentType, BroadcastFrequencyInterval, BroadcastSm, COctetString, EncodeError,
    TlvTag, Tlvs,
};

/// `broadcast_area_identifier` (0x0606): where to broadcast.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BroadcastArea {
    /// 0 alias/name, 1 ellipsoid arc, 2 polygon (3GPP TS 23.032).
    pub format: u8,
    /// The area data (at most 100 octets).
    pub data: Bytes,
}

impl BroadcastArea {
    /// An area given by its alias or name (format 0).
    pub fn name(name: &str) -> Self {
        BroadcastArea {
            format: 0,
            data: Bytes::copy_from_slice(name.as_bytes()),
        }
    }

    /// Parses the TLV value.
    pub fn from_bytes(v: &[u8]) -> Option<Self> {
        let (&format, data) = v.split_first()?;
        Some(BroadcastArea {
            format,
            data: Bytes::copy_from_slice(data),
        })
    }

    /// The TLV value.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(1 + self.data.len());
        v.push(self.format);
        v.extend_from_slice(&self.data);
        v
    }
}

/// Units of `broadcast_frequency_interval`.
pub mod frequency_unit {
    /// As frequently as possible.
    pub const AS_OFTEN_AS_POSSIBLE: u8 = 0x00;
    /// Seconds.
    pub const SECONDS: u8 = 0x08;
    /// Minutes.
    pub const MINUTES: u8 = 0x09;
    /// Hours.
    pub const HOURS: u8 = 0x0A;
    /// Days.
    pub const DAYS: u8 = 0x0B;
    /// Weeks.
    pub const WEEKS: u8 = 0x0C;
    /// Months.
    pub const MONTHS: u8 = 0x0D;
    /// Years.
    pub const YEARS: u8 = 0x0E;
}

/// The `broadcast_area_identifier` values of a PDU's TLVs, in order (also the
/// `failed_broadcast_area_identifier`s of a broadcast_sm_resp).
pub fn broadcast_areas(tlvs: &Tlvs) -> Vec<BroadcastArea> {
    tlvs.get_all(TlvTag::BROADCAST_AREA_IDENTIFIER)
        .filter_map(BroadcastArea::from_bytes)
        .collect()
}

/// `billing_identification` (0x060B, v5.0): a format tag and opaque billing data.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BillingIdentification {
    /// Format tag: 0x00–0x7F reserved, 0x80–0xFF vendor-specific.
    pub format: u8,
    /// Billing data (at most 1023 octets).
    pub data: Bytes,
}

impl BillingIdentification {
    /// Reads it from a PDU's TLVs.
    pub fn from_tlvs(tlvs: &Tlvs) -> Option<Self> {
        let (&format, data) = tlvs.billing_identification()?.split_first()?;
        Some(BillingIdentification {
            format,
            data: Bytes::copy_from_slice(data),
        })
    }

    /// Writes it into a PDU's TLVs (replacing any earlier one).
    pub fn set_in(&self, tlvs: &mut Tlvs) -> Result<(), EncodeError> {
        let mut v = Vec::with_capacity(1 + self.data.len());
        v.push(self.format);
        v.extend_from_slice(&self.data);
        tlvs.set(TlvTag::BILLING_IDENTIFICATION, &v)
    }
}

/// Builds a `broadcast_sm` with its mandatory TLVs.
///
/// ```
/// use smpp_proto::message::broadcast::{frequency_unit, BroadcastArea, BroadcastBuilder};
/// use smpp_proto::pdu::BroadcastContentType;
///
/// let b = BroadcastBuilder::new(
///     vec![BroadcastArea::name("Area1")],
///     BroadcastContentType { network_type: 1, content_type: 0x0001 },
///     3,
///     frequency_unit::MINUTES,
///     30,
/// )
/// .payload(b"Storm warning".to_vec(), 0x00.into())
/// .build()
/// .unwrap();
/// assert_eq!(b.tlvs.broadcast_rep_num(), Some(3));
/// assert_eq!(b.tlvs.message_payload(), Some(&b"Storm warning"[..]));
/// ```
#[derive(Clone, Debug)]
pub struct BroadcastBuilder {
    areas: Vec<BroadcastArea>,
    content_type: BroadcastContentType,
    repetitions: u16,
    frequency: BroadcastFrequencyInterval,
    body: BroadcastSm,
    payload: Option<Bytes>,
}

impl BroadcastBuilder {
    /// The four mandatory parts: areas (one or more), content type, number of
    /// repetitions (0 = implicit) and the interval between them.
    pub fn new(
        areas: Vec<BroadcastArea>,
        content_type: BroadcastContentType,
        repetitions: u16,
        frequency_unit: u8,
        frequency_count: u16,
    ) -> Self {
        BroadcastBuilder {
            areas,
            content_type,
            repetitions,
            frequency: BroadcastFrequencyInterval {
                unit: frequency_unit,
                count: frequency_count,
            },
            body: BroadcastSm {
                service_type: COctetString::from_static("CBS"),
                ..Default::default()
            },
            payload: None,
        }
    }

    /// The message content (in `message_payload`) and its data_coding.
    #[must_use]
    pub fn payload(mut self, data: impl Into<Bytes>, data_coding: DataCoding) -> Self {
        self.payload = Some(data.into());
        self.body.data_coding = data_coding.0;
        self
    }

    /// The originator.
    #[must_use]
    pub fn source(mut self, ton: u8, npi: u8, addr: &str) -> Self {
        self.body.source_addr_ton = ton;
        self.body.source_addr_npi = npi;
        self.body.source_addr = COctetString::copy_from_str(addr);
        self
    }

    /// CBS priority: 0 normal, 1 immediate, 2 high, 4 background.
    #[must_use]
    pub fn priority(mut self, priority: u8) -> Self {
        self.body.priority_flag = priority;
        self
    }

    /// The v5.0 `billing_identification` TLV: what the MC bills the broadcast to.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use smpp_proto::message::broadcast::{frequency_unit, BillingIdentification, BroadcastArea, BroadcastBuilder};
    /// use smpp_proto::pdu::BroadcastContentType;
    ///
    /// let billing = BillingIdentification { format: 0x80, data: Bytes::from_static(b"acct-7") };
    /// let b = BroadcastBuilder::new(
    ///     vec![BroadcastArea::name("Area1")],
    ///     BroadcastContentType { network_type: 1, content_type: 0x0001 },
    ///     1,
    ///     frequency_unit::MINUTES,
    ///     5,
    /// )
    /// .billing(&billing)
    /// .unwrap()
    /// .build()
    /// .unwrap();
    /// assert_eq!(BillingIdentification::from_tlvs(&b.tlvs), Some(billing));
    /// ```
    pub fn billing(mut self, billing: &BillingIdentification) -> Result<Self, EncodeError> {
        billing.set_in(&mut self.body.tlvs)?;
        Ok(self)
    }

    /// Replaces an earlier broadcast (by its message id).
    #[must_use]
    pub fn replacing(mut self, message_id: &str) -> Self {
        self.body.message_id = COctetString::copy_from_str(message_id);
        self.body.replace_if_present_flag = 1;
        self
    }

    /// The `broadcast_sm` body.
    pub fn build(mut self) -> Result<BroadcastSm, EncodeError> {
        let mut tlvs = std::mem::take(&mut self.body.tlvs);
        for area in &self.areas {
            tlvs.push(TlvTag::BROADCAST_AREA_IDENTIFIER, &area.to_bytes())?;
        }
        tlvs.set_broadcast_content_type(self.content_type);
        tlvs.set_u16(TlvTag::BROADCAST_REP_NUM, self.repetitions);
        tlvs.set_broadcast_frequency_interval(self.frequency);
        if let Some(p) = &self.payload {
            tlvs.set(TlvTag::MESSAGE_PAYLOAD, p)?;
        }
        self.body.tlvs = tlvs;
        Ok(self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_and_areas_round_trip() {
        let mut t = Tlvs::new();
        let b = BillingIdentification {
            format: 0x80,
            data: Bytes::from_static(b"acct-7"),
        };
        b.set_in(&mut t).unwrap();
        assert_eq!(BillingIdentification::from_tlvs(&t), Some(b));
        t.push(
            TlvTag::BROADCAST_AREA_IDENTIFIER,
            &BroadcastArea::name("A").to_bytes(),
        )
        .unwrap();
        t.push(TlvTag::BROADCAST_AREA_IDENTIFIER, &[1, 9, 9])
            .unwrap();
        let areas = broadcast_areas(&t);
        assert_eq!(areas.len(), 2);
        assert_eq!(
            areas[1],
            BroadcastArea {
                format: 1,
                data: Bytes::from_static(&[9, 9])
            }
        );
    }
}
