//! Message submission and delivery bodies.

use bytes::{BufMut, Bytes};

use super::body::{pdu_body, BodyCodec};
use super::codec::{check_cstr, check_sm, put_cstr, put_sm, FieldError, FieldResult, Reader};
use super::{COctetString, CommandStatus, DecodeErrorKind, EncodeError, Field, Tlvs};

pdu_body! {
    /// `submit_sm`, and `deliver_sm` which has the same layout ([`DeliverSm`]).
    pub struct SubmitSm {
        /// Application service ("" default, "CMT", "WAP", "USSD"...), at most 5 characters.
        service_type: cstr(6, INVALID_SERVICE_TYPE),
        /// Originator TON.
        source_addr_ton: u8,
        /// Originator NPI.
        source_addr_npi: u8,
        /// Originator address, at most 20 characters (for receipts: the original recipient).
        source_addr: cstr(21, INVALID_SOURCE_ADDRESS),
        /// Recipient TON.
        dest_addr_ton: u8,
        /// Recipient NPI.
        dest_addr_npi: u8,
        /// Recipient address, at most 20 characters (for receipts: the original sender).
        destination_addr: cstr(21, INVALID_DESTINATION_ADDRESS),
        /// Messaging mode, message type and GSM features (UDHI 0x40).
        esm_class: u8,
        /// GSM TP-PID.
        protocol_id: u8,
        /// Priority.
        priority_flag: u8,
        /// When to deliver: empty for now, or a 16-character absolute/relative time.
        schedule_delivery_time: time(INVALID_SCHEDULED_DELIVERY_TIME),
        /// Expiry: empty for the MC default, or a 16-character time.
        validity_period: time(INVALID_EXPIRY_TIME),
        /// Receipt and acknowledgement requests.
        registered_delivery: u8,
        /// Replace an earlier message with the same addresses and service type.
        replace_if_present_flag: u8,
        /// Coding of the user data.
        data_coding: u8,
        /// Canned message index, 0 if unused.
        sm_default_msg_id: u8,
        /// User data, at most 255 octets (254 in 3.4); empty when `message_payload` is used.
        short_message: sm,
        /// TLVs.
        tlvs: tlvs,
    }
}

/// `deliver_sm` has the same body as `submit_sm`.
pub type DeliverSm = SubmitSm;

impl SubmitSm {
    /// esm_class message type is an MC delivery receipt (`esm_class & 0x3C == 0x04`).
    pub fn is_delivery_receipt(&self) -> bool {
        self.esm_class().is_delivery_receipt()
    }

    /// esm_class UDHI bit: the user data starts with a User Data Header.
    pub fn has_udh(&self) -> bool {
        self.esm_class().udhi()
    }

    /// The user data: `message_payload` when present (it supersedes
    /// short_message), otherwise `short_message`.
    pub fn payload(&self) -> &[u8] {
        self.tlvs.message_payload().unwrap_or(&self.short_message)
    }
}

pdu_body! {
    /// `submit_sm_resp`, and the bodies of the same layout: [`DeliverSmResp`],
    /// [`DataSmResp`], [`BroadcastSmResp`] and [`QueryBroadcastSmResp`].
    pub struct SubmitSmResp {
        /// The MC's id for the message (empty in deliver_sm_resp).
        message_id: cstr(65, INVALID_MESSAGE_ID),
        /// TLVs (5.0: delivery outcome in transaction mode, congestion_state).
        tlvs: tlvs,
    }
}

/// `deliver_sm_resp`: message_id is unused (empty).
pub type DeliverSmResp = SubmitSmResp;
/// `data_sm_resp`.
pub type DataSmResp = SubmitSmResp;
/// `broadcast_sm_resp`: TLVs carry per-area failures.
pub type BroadcastSmResp = SubmitSmResp;
/// `query_broadcast_sm_resp`: TLVs carry message_state and per-area results.
pub type QueryBroadcastSmResp = SubmitSmResp;

pdu_body! {
    /// `data_sm`: submission or delivery with the user data in `message_payload`.
    pub struct DataSm {
        /// Application service.
        service_type: cstr(6, INVALID_SERVICE_TYPE),
        /// Originator TON.
        source_addr_ton: u8,
        /// Originator NPI.
        source_addr_npi: u8,
        /// Originator address, at most 64 characters.
        source_addr: cstr(65, INVALID_SOURCE_ADDRESS),
        /// Recipient TON.
        dest_addr_ton: u8,
        /// Recipient NPI.
        dest_addr_npi: u8,
        /// Recipient address, at most 64 characters.
        destination_addr: cstr(65, INVALID_DESTINATION_ADDRESS),
        /// Messaging mode, message type, GSM features.
        esm_class: u8,
        /// Receipt and acknowledgement requests.
        registered_delivery: u8,
        /// Coding of the user data.
        data_coding: u8,
        /// TLVs (the user data is `message_payload`).
        tlvs: tlvs,
    }
}

pdu_body! {
    /// `alert_notification`: a subscriber became reachable (no response exists).
    pub struct AlertNotification {
        /// TON of the MS that became available.
        source_addr_ton: u8,
        /// NPI of the MS.
        source_addr_npi: u8,
        /// MS address, at most 64 characters.
        source_addr: cstr(65, INVALID_SOURCE_ADDRESS),
        /// TON of the ESME address that asked for the alert.
        esme_addr_ton: u8,
        /// NPI of the ESME address.
        esme_addr_npi: u8,
        /// ESME address, at most 64 characters.
        esme_addr: cstr(65, INVALID_DESTINATION_ADDRESS),
        /// TLVs: `ms_availability_status`.
        tlvs: tlvs,
    }
}

/// One destination of a `submit_multi`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum DestAddress {
    /// `dest_flag` 1: an SME address.
    Sme {
        /// TON.
        ton: u8,
        /// NPI.
        npi: u8,
        /// Address, at most 20 characters.
        addr: COctetString,
    },
    /// `dest_flag` 2: a distribution list name, at most 20 characters.
    DistributionList(COctetString),
}

/// A destination a `submit_multi` could not be accepted for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct UnsuccessSme {
    /// TON.
    pub ton: u8,
    /// NPI.
    pub npi: u8,
    /// Address, at most 20 characters.
    pub addr: COctetString,
    /// Why it failed.
    pub error_status: CommandStatus,
}

/// `submit_multi`: one message to up to 255 destinations (254 in 3.4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SubmitMulti {
    /// Application service.
    #[cfg_attr(feature = "arbitrary", arbitrary(with = super::arb::cstr))]
    pub service_type: COctetString,
    /// Originator TON.
    pub source_addr_ton: u8,
    /// Originator NPI.
    pub source_addr_npi: u8,
    /// Originator address.
    #[cfg_attr(feature = "arbitrary", arbitrary(with = super::arb::cstr))]
    pub source_addr: COctetString,
    /// Destinations (`number_of_dests` on the wire).
    pub dest_addresses: Vec<DestAddress>,
    /// esm_class.
    pub esm_class: u8,
    /// protocol_id.
    pub protocol_id: u8,
    /// priority_flag.
    pub priority_flag: u8,
    /// schedule_delivery_time.
    #[cfg_attr(feature = "arbitrary", arbitrary(with = super::arb::time))]
    pub schedule_delivery_time: COctetString,
    /// validity_period.
    #[cfg_attr(feature = "arbitrary", arbitrary(with = super::arb::time))]
    pub validity_period: COctetString,
    /// registered_delivery.
    pub registered_delivery: u8,
    /// replace_if_present_flag.
    pub replace_if_present_flag: u8,
    /// data_coding.
    pub data_coding: u8,
    /// sm_default_msg_id.
    pub sm_default_msg_id: u8,
    /// User data.
    #[cfg_attr(feature = "arbitrary", arbitrary(with = super::arb::sm))]
    pub short_message: Bytes,
    /// TLVs.
    #[cfg_attr(feature = "arbitrary", arbitrary(with = super::arb::tlvs))]
    pub tlvs: Tlvs,
}

impl SubmitSm {
    /// The submit_sm that says what `sm` says: its addresses, esm_class,
    /// registered_delivery, data_coding and TLVs (the user data stays in
    /// `message_payload`); the fields data_sm lacks keep their defaults.
    pub fn from_data_sm(sm: DataSm) -> SubmitSm {
        SubmitSm {
            service_type: sm.service_type,
            source_addr_ton: sm.source_addr_ton,
            source_addr_npi: sm.source_addr_npi,
            source_addr: sm.source_addr,
            dest_addr_ton: sm.dest_addr_ton,
            dest_addr_npi: sm.dest_addr_npi,
            destination_addr: sm.destination_addr,
            esm_class: sm.esm_class,
            registered_delivery: sm.registered_delivery,
            data_coding: sm.data_coding,
            tlvs: sm.tlvs,
            ..Default::default()
        }
    }
}

impl DataSm {
    /// The data_sm of `sm`'s message: its addresses, esm_class,
    /// registered_delivery, data_coding and TLVs; a `short_message` (empty
    /// when the user data is already in `message_payload`) moves into
    /// `message_payload`. The fields data_sm does not have (protocol_id,
    /// priority, schedule, validity...) are dropped.
    pub fn from_submit_sm(sm: SubmitSm) -> Result<DataSm, EncodeError> {
        let mut tlvs = sm.tlvs;
        if !sm.short_message.is_empty() {
            tlvs.set(super::TlvTag::MESSAGE_PAYLOAD, &sm.short_message)?;
        }
        Ok(DataSm {
            service_type: sm.service_type,
            source_addr_ton: sm.source_addr_ton,
            source_addr_npi: sm.source_addr_npi,
            source_addr: sm.source_addr,
            dest_addr_ton: sm.dest_addr_ton,
            dest_addr_npi: sm.dest_addr_npi,
            destination_addr: sm.destination_addr,
            esm_class: sm.esm_class,
            registered_delivery: sm.registered_delivery,
            data_coding: sm.data_coding,
            tlvs,
        })
    }
}

impl SubmitMulti {
    /// The submit_sm of this message to one SME address (every field but
    /// the destinations kept, TLVs included): how an MC that fans a
    /// submit_multi out handles each destination.
    pub fn to_submit_sm(&self, ton: u8, npi: u8, addr: COctetString) -> SubmitSm {
        SubmitSm {
            service_type: self.service_type.clone(),
            source_addr_ton: self.source_addr_ton,
            source_addr_npi: self.source_addr_npi,
            source_addr: self.source_addr.clone(),
            dest_addr_ton: ton,
            dest_addr_npi: npi,
            destination_addr: addr,
            esm_class: self.esm_class,
            protocol_id: self.protocol_id,
            priority_flag: self.priority_flag,
            schedule_delivery_time: self.schedule_delivery_time.clone(),
            validity_period: self.validity_period.clone(),
            registered_delivery: self.registered_delivery,
            replace_if_present_flag: self.replace_if_present_flag,
            data_coding: self.data_coding,
            sm_default_msg_id: self.sm_default_msg_id,
            short_message: self.short_message.clone(),
            tlvs: self.tlvs.clone(),
        }
    }

    /// The submit_multi of `sm`'s message to `dests` (every field but the
    /// destination kept, TLVs included).
    pub fn from_submit_sm(sm: SubmitSm, dests: Vec<DestAddress>) -> SubmitMulti {
        SubmitMulti {
            service_type: sm.service_type,
            source_addr_ton: sm.source_addr_ton,
            source_addr_npi: sm.source_addr_npi,
            source_addr: sm.source_addr,
            dest_addresses: dests,
            esm_class: sm.esm_class,
            protocol_id: sm.protocol_id,
            priority_flag: sm.priority_flag,
            schedule_delivery_time: sm.schedule_delivery_time,
            validity_period: sm.validity_period,
            registered_delivery: sm.registered_delivery,
            replace_if_present_flag: sm.replace_if_present_flag,
            data_coding: sm.data_coding,
            sm_default_msg_id: sm.sm_default_msg_id,
            short_message: sm.short_message,
            tlvs: sm.tlvs,
        }
    }
}

fn count(n: usize, field: &'static str) -> Result<usize, EncodeError> {
    if n > 255 {
        return Err(EncodeError::TooManyEntries { field, count: n });
    }
    Ok(1)
}

impl BodyCodec for SubmitMulti {
    fn visit<'a>(&'a self, f: &mut dyn FnMut(Field<'a>)) {
        f(Field::text("service_type", &self.service_type));
        f(Field::int("source_addr_ton", self.source_addr_ton));
        f(Field::int("source_addr_npi", self.source_addr_npi));
        f(Field::text("source_addr", &self.source_addr));
        f(Field::int(
            "number_of_dests",
            self.dest_addresses.len() as u32,
        ));
        for d in &self.dest_addresses {
            match d {
                DestAddress::Sme { ton, npi, addr } => {
                    f(Field::int("dest_flag", 1u8));
                    f(Field::int("dest_addr_ton", *ton));
                    f(Field::int("dest_addr_npi", *npi));
                    f(Field::text("destination_addr", addr));
                }
                DestAddress::DistributionList(name) => {
                    f(Field::int("dest_flag", 2u8));
                    f(Field::text("dl_name", name));
                }
            }
        }
        f(Field::int("esm_class", self.esm_class));
        f(Field::int("protocol_id", self.protocol_id));
        f(Field::int("priority_flag", self.priority_flag));
        f(Field::time(
            "schedule_delivery_time",
            &self.schedule_delivery_time,
        ));
        f(Field::time("validity_period", &self.validity_period));
        f(Field::int("registered_delivery", self.registered_delivery));
        f(Field::int(
            "replace_if_present_flag",
            self.replace_if_present_flag,
        ));
        f(Field::int("data_coding", self.data_coding));
        f(Field::int("sm_default_msg_id", self.sm_default_msg_id));
        f(Field::int("sm_length", self.short_message.len() as u32));
        f(Field::octets("short_message", &self.short_message));
        f(Field::tlvs(&self.tlvs));
    }

    fn decode(r: &mut Reader<'_>) -> FieldResult<Self> {
        let service_type = r.cstr(6, "service_type", CommandStatus::INVALID_SERVICE_TYPE)?;
        let source_addr_ton = r.u8("source_addr_ton")?;
        let source_addr_npi = r.u8("source_addr_npi")?;
        let source_addr = r.cstr(21, "source_addr", CommandStatus::INVALID_SOURCE_ADDRESS)?;
        let n = r.u8("number_of_dests")?;
        // Each entry takes at least 3 octets: the count is bounded by the frame.
        let mut dest_addresses = Vec::with_capacity(usize::from(n).min(r.remaining() / 3));
        for _ in 0..n {
            let at = r.pos();
            dest_addresses.push(match r.u8("dest_flag")? {
                1 => DestAddress::Sme {
                    ton: r.u8("dest_addr_ton")?,
                    npi: r.u8("dest_addr_npi")?,
                    addr: r.cstr(
                        21,
                        "destination_addr",
                        CommandStatus::INVALID_DESTINATION_ADDRESS,
                    )?,
                },
                2 => DestAddress::DistributionList(r.cstr(
                    21,
                    "dl_name",
                    CommandStatus::INVALID_DISTRIBUTION_LIST_NAME,
                )?),
                flag => {
                    return Err(FieldError {
                        kind: DecodeErrorKind::InvalidDestFlag { flag },
                        offset: at,
                        status: CommandStatus::INVALID_DESTINATION_FLAG,
                    })
                }
            });
        }
        Ok(SubmitMulti {
            service_type,
            source_addr_ton,
            source_addr_npi,
            source_addr,
            dest_addresses,
            esm_class: r.u8("esm_class")?,
            protocol_id: r.u8("protocol_id")?,
            priority_flag: r.u8("priority_flag")?,
            schedule_delivery_time: r.time(
                "schedule_delivery_time",
                CommandStatus::INVALID_SCHEDULED_DELIVERY_TIME,
            )?,
            validity_period: r.time("validity_period", CommandStatus::INVALID_EXPIRY_TIME)?,
            registered_delivery: r.u8("registered_delivery")?,
            replace_if_present_flag: r.u8("replace_if_present_flag")?,
            data_coding: r.u8("data_coding")?,
            sm_default_msg_id: r.u8("sm_default_msg_id")?,
            short_message: r.sm()?,
            tlvs: r.tlvs()?,
        })
    }

    fn checked_len(&self) -> Result<usize, EncodeError> {
        let mut n = check_cstr(&self.service_type, 6, "service_type")?
            + 2
            + check_cstr(&self.source_addr, 21, "source_addr")?
            + count(self.dest_addresses.len(), "dest_addresses")?;
        for d in &self.dest_addresses {
            n += match d {
                DestAddress::Sme { addr, .. } => 3 + check_cstr(addr, 21, "destination_addr")?,
                DestAddress::DistributionList(name) => 1 + check_cstr(name, 21, "dl_name")?,
            };
        }
        n += 3
            + super::codec::check_time(&self.schedule_delivery_time, "schedule_delivery_time")?
            + super::codec::check_time(&self.validity_period, "validity_period")?
            + 4
            + check_sm(&self.short_message)?
            + self.tlvs.wire_len();
        Ok(n)
    }

    fn write<B: BufMut>(&self, out: &mut B) {
        put_cstr(out, &self.service_type);
        out.put_u8(self.source_addr_ton);
        out.put_u8(self.source_addr_npi);
        put_cstr(out, &self.source_addr);
        out.put_u8(self.dest_addresses.len() as u8);
        for d in &self.dest_addresses {
            match d {
                DestAddress::Sme { ton, npi, addr } => {
                    out.put_u8(1);
                    out.put_u8(*ton);
                    out.put_u8(*npi);
                    put_cstr(out, addr);
                }
                DestAddress::DistributionList(name) => {
                    out.put_u8(2);
                    put_cstr(out, name);
                }
            }
        }
        out.put_u8(self.esm_class);
        out.put_u8(self.protocol_id);
        out.put_u8(self.priority_flag);
        put_cstr(out, &self.schedule_delivery_time);
        put_cstr(out, &self.validity_period);
        out.put_u8(self.registered_delivery);
        out.put_u8(self.replace_if_present_flag);
        out.put_u8(self.data_coding);
        out.put_u8(self.sm_default_msg_id);
        put_sm(out, &self.short_message);
        out.put_slice(self.tlvs.as_bytes());
    }
}

/// `submit_multi_resp`: the message id and the destinations that failed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SubmitMultiResp {
    /// The MC's id for the message.
    #[cfg_attr(feature = "arbitrary", arbitrary(with = super::arb::cstr))]
    pub message_id: COctetString,
    /// Destinations not accepted (`no_unsuccess` on the wire).
    pub unsuccess_smes: Vec<UnsuccessSme>,
    /// TLVs.
    #[cfg_attr(feature = "arbitrary", arbitrary(with = super::arb::tlvs))]
    pub tlvs: Tlvs,
}

impl BodyCodec for SubmitMultiResp {
    fn visit<'a>(&'a self, f: &mut dyn FnMut(Field<'a>)) {
        f(Field::text("message_id", &self.message_id));
        f(Field::int("no_unsuccess", self.unsuccess_smes.len() as u32));
        for u in &self.unsuccess_smes {
            f(Field::int("dest_addr_ton", u.ton));
            f(Field::int("dest_addr_npi", u.npi));
            f(Field::text("destination_addr", &u.addr));
            f(Field::int("error_status_code", u.error_status.0));
        }
        f(Field::tlvs(&self.tlvs));
    }

    fn decode(r: &mut Reader<'_>) -> FieldResult<Self> {
        let message_id = r.cstr(65, "message_id", CommandStatus::INVALID_MESSAGE_ID)?;
        let n = r.u8("no_unsuccess")?;
        let mut unsuccess_smes = Vec::with_capacity(usize::from(n).min(r.remaining() / 7));
        for _ in 0..n {
            unsuccess_smes.push(UnsuccessSme {
                ton: r.u8("dest_addr_ton")?,
                npi: r.u8("dest_addr_npi")?,
                addr: r.cstr(
                    21,
                    "destination_addr",
                    CommandStatus::INVALID_DESTINATION_ADDRESS,
                )?,
                error_status: CommandStatus(r.u32("error_status_code")?),
            });
        }
        Ok(SubmitMultiResp {
            message_id,
            unsuccess_smes,
            tlvs: r.tlvs()?,
        })
    }

    fn checked_len(&self) -> Result<usize, EncodeError> {
        let mut n = check_cstr(&self.message_id, 65, "message_id")?
            + count(self.unsuccess_smes.len(), "unsuccess_smes")?;
        for u in &self.unsuccess_smes {
            n += 6 + check_cstr(&u.addr, 21, "destination_addr")?;
        }
        Ok(n + self.tlvs.wire_len())
    }

    fn write<B: BufMut>(&self, out: &mut B) {
        put_cstr(out, &self.message_id);
        out.put_u8(self.unsuccess_smes.len() as u8);
        for u in &self.unsuccess_smes {
            out.put_u8(u.ton);
            out.put_u8(u.npi);
            put_cstr(out, &u.addr);
            out.put_u32(u.error_status.0);
        }
        out.put_slice(self.tlvs.as_bytes());
    }
}

#[cfg(test)]
mod fan_out_tests {
    use super::*;

    #[test]
    fn a_submit_multi_fans_out_to_the_submit_sm_it_came_from() {
        let mut sm = SubmitSm {
            source_addr: "Acme".into(),
            dest_addr_ton: 1,
            dest_addr_npi: 1,
            destination_addr: "447700900123".into(),
            registered_delivery: 1,
            data_coding: 8,
            short_message: bytes::Bytes::from_static(b"\x00h\x00i"),
            ..Default::default()
        };
        sm.tlvs
            .set(crate::pdu::TlvTag::USER_MESSAGE_REFERENCE, &[0, 7])
            .unwrap();
        let dests = vec![DestAddress::Sme {
            ton: 1,
            npi: 1,
            addr: "447700900123".into(),
        }];
        let multi = SubmitMulti::from_submit_sm(sm.clone(), dests);
        assert_eq!(multi.to_submit_sm(1, 1, "447700900123".into()), sm);
    }
}
