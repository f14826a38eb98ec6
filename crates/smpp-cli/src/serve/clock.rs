//! Wall-clock helpers: milliseconds since the Unix epoch and the SMPP time
//! formats (UTC), without a calendar dependency.

use std::time::{SystemTime, UNIX_EPOCH};

use smpp_proto::message::receipt::ReceiptDate;

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Microseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// (year, month, day, hour, minute, second) in UTC.
fn civil(ms: u64) -> (i64, u8, u8, u8, u8, u8) {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (rem / 3600) as u8,
        ((rem % 3600) / 60) as u8,
        (rem % 60) as u8,
    )
}

/// A receipt date (with seconds) for `ms`, UTC.
pub(crate) fn receipt_date(ms: u64) -> ReceiptDate {
    let (year, month, day, hour, minute, second) = civil(ms);
    ReceiptDate {
        year: u16::try_from(year).unwrap_or(2000),
        month,
        day,
        hour,
        minute,
        second: Some(second),
    }
}

/// The SMPP absolute time format `YYMMDDhhmmsstnnp` (UTC: `nn` = 00, `p` = `+`).
pub(crate) fn smpp_time(ms: u64) -> String {
    let (year, month, day, hour, minute, second) = civil(ms);
    let tenths = (ms % 1000) / 100;
    format!(
        "{:02}{month:02}{day:02}{hour:02}{minute:02}{second:02}{tenths}00+",
        year.rem_euclid(100)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        // 2026-01-17 10:30:05.700 UTC
        let ms = 1_768_645_805_700;
        assert_eq!(smpp_time(ms), "260117103005700+");
        assert_eq!(receipt_date(ms).to_receipt_string(), "260117103005");
        assert_eq!(smpp_time(0), "700101000000000+");
        // Leap day.
        assert_eq!(&smpp_time(951_782_400_000)[..6], "000229");
    }
}
