//! Interop harness pieces shared by the programs in `src/bin`: run by
//! `cargo xtask interop` (see `xtask/src/interop.rs` for the whole picture).
//!
//! - `interop-smsc`: a stand-in for `smpp serve` built on `smpp_tokio::Server`.
//! - `rust-peers`: the `smpp34` and `rusmppc` clients against an SMSC.
//! - `smpp34-smsc`: an SMSC built on the `smpp34` crate's server, for our
//!   client and the `smpp send`/`smpp listen` commands.

use std::time::{SystemTime, UNIX_EPOCH};

use smpp_proto::message::receipt::ReceiptDate;

/// The current UTC time as a receipt date (`submit date:`/`done date:`), to
/// the minute: SMPP 3.4 Appendix B's `YYMMDDhhmm` (aiosmpplib parses exactly that).
pub fn receipt_date_now() -> ReceiptDate {
    ReceiptDate {
        second: None,
        ..utc_now()
    }
}

fn utc_now() -> ReceiptDate {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    ReceiptDate {
        year: u16::try_from(year).unwrap_or(0),
        month: month as u8,
        day: day as u8,
        hour: (rem / 3600) as u8,
        minute: (rem % 3600 / 60) as u8,
        second: Some((rem % 60) as u8),
    }
}

/// The current UTC time as an SMPP absolute time (`YYMMDDhhmmss000+`).
pub fn smsc_time() -> String {
    let t = utc_now();
    format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}000+",
        t.year % 100,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second.unwrap_or(0)
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A check's outcome line, in the format the xtask counts:
/// `PASS <peer>: <check>` or `FAIL <peer>: <check>: <why>`.
pub fn report(peer: &str, check: &str, result: &anyhow::Result<()>) -> bool {
    match result {
        Ok(()) => {
            println!("PASS {peer}: {check}");
            true
        }
        Err(e) => {
            println!("FAIL {peer}: {check}: {e:#}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_512), (2026, 2, 28));
    }
}

pub mod checks;
pub mod rusmppc_client;
pub mod smpp34_client;
pub mod smpp34_smsc;
pub mod tokio_client;

/// The account `smpp serve` accepts by default (and the other SMSCs here).
pub const SYSTEM_ID: &str = "smppclient1";
/// Its password.
pub const PASSWORD: &str = "password";
/// The originator of every test message.
pub const SOURCE: &str = "447700900123";
/// The recipient of every test message.
pub const DESTINATION: &str = "447700900456";
/// GSM 7-bit text, with characters of the default alphabet and its extension table.
pub const GSM7_TEXT: &str = "Hello @ interop £5 {ok}";
/// Text that needs UCS-2.
pub const UCS2_TEXT: &str = "Привет, 世界";
/// Text that needs 3 GSM 7-bit parts.
pub const LONG_TEXT: &str = "Long message part. Long message part. Long message part. \
    Long message part. Long message part. Long message part. Long message part. \
    Long message part. Long message part. Long message part. Long message part. \
    Long message part. Long message part. Long message part. Long message part. \
    Long message part. Long message part. Long message part. Long message part. Long message part.";

/// A bind kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// bind_transmitter.
    Transmitter,
    /// bind_receiver.
    Receiver,
    /// bind_transceiver.
    Transceiver,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 3] = [Kind::Transmitter, Kind::Receiver, Kind::Transceiver];

    /// `transmitter`, `receiver` or `transceiver`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Transmitter => "transmitter",
            Kind::Receiver => "receiver",
            Kind::Transceiver => "transceiver",
        }
    }
}

/// The receipted message id of a deliver_sm, when it is a receipt (esm_class
/// message type 0x04): from the receipt text, parsed by smpp-proto.
pub fn receipt_id(esm_class: u8, short_message: &str) -> Option<String> {
    if !smpp_proto::pdu::EsmClass::from(esm_class).is_delivery_receipt() {
        return None;
    }
    smpp_proto::message::DeliveryReceipt::parse(short_message)
        .ok()
        .map(|r| r.id)
}
