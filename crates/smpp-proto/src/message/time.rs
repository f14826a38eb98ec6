//! The SMPP time formats, from and to milliseconds since the Unix epoch
//! (UTC), without a calendar dependency: absolute times (`final_date`,
//! `schedule_delivery_time`, `validity_period`), relative times, and receipt
//! dates.
//!
//! ```
//! use smpp_proto::message::time;
//! use std::time::Duration;
//!
//! // 2026-01-17 10:30:05.700 UTC
//! assert_eq!(time::absolute(1_768_645_805_700), "260117103005700+");
//! assert_eq!(time::relative(Duration::from_secs(90 * 60)).as_deref(), Some("000000013000000R"));
//! assert_eq!(time::parse("000000013000000R", 1_000), Some(1_000 + 5_400_000));
//! ```

use std::time::Duration;

use super::receipt::ReceiptDate;

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

/// A receipt date (`YYMMDDhhmm`) for `ms`, UTC.
pub fn receipt_date(ms: u64) -> ReceiptDate {
    // `YYMMDDhhmm`, as SMPP 3.4 Appendix B writes them: some receivers
    // (aiosmpplib) refuse the 12-digit form with seconds.
    let (year, month, day, hour, minute, _second) = civil(ms);
    ReceiptDate {
        year: u16::try_from(year).unwrap_or(2000),
        month,
        day,
        hour,
        minute,
        second: None,
    }
}

/// The SMPP absolute time format `YYMMDDhhmmsstnnp` (UTC: `nn` = 00, `p` = `+`).
pub fn absolute(ms: u64) -> String {
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
        assert_eq!(absolute(ms), "260117103005700+");
        assert_eq!(receipt_date(ms).to_receipt_string(), "2601171030");
        assert_eq!(absolute(0), "700101000000000+");
        // Leap day.
        assert_eq!(&absolute(951_782_400_000)[..6], "000229");
        assert_eq!(parse(&absolute(ms), 0), Some(ms));
    }

    #[test]
    fn relative_times_round_trip() {
        for secs in [
            0,
            1,
            59,
            3_599,
            86_399,
            86_400 * 99 + 1,
            86_400 * 400 + 3_723,
        ] {
            let text = relative(Duration::from_secs(secs)).unwrap();
            assert_eq!(text.len(), 16, "{text}");
            assert_eq!(parse(&text, 7), Some(7 + secs * 1000), "{text}");
        }
        assert_eq!(
            relative(Duration::from_secs(86_400 + 2 * 3600 + 3 * 60 + 4)).unwrap(),
            "000001020304000R"
        );
        assert_eq!(relative(Duration::from_secs(86_400 * 365 * 100)), None);
    }
}

/// Days since the Unix epoch of a civil date (Howard Hinnant's days-from-civil).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The SMPP relative time format `YYMMDDhhmmss000R` for `d`, in days, hours,
/// minutes and seconds (whole seconds; the year and month fields stay 00,
/// since their length is not fixed), or whole years and 30-day months past 99
/// days. `None` beyond 99 years.
pub fn relative(d: Duration) -> Option<String> {
    let secs = d.as_secs();
    let (mut days, hh, mi, ss) = (
        secs / 86_400,
        (secs % 86_400) / 3600,
        (secs % 3600) / 60,
        secs % 60,
    );
    let (mut yy, mut mo) = (0, 0);
    if days > 99 {
        yy = days / 365;
        days %= 365;
        mo = days / 30;
        days %= 30;
    }
    (yy <= 99).then(|| format!("{yy:02}{mo:02}{days:02}{hh:02}{mi:02}{ss:02}000R"))
}

/// Reads an SMPP time (`schedule_delivery_time`, `validity_period`) as ms
/// since the epoch: absolute `YYMMDDhhmmsstnn±` or relative `YYMMDDhhmmss000R`
/// (from `now_ms`; months count 30 days, years 365). `None` for an empty or
/// malformed value.
pub fn parse(s: &str, now_ms: u64) -> Option<u64> {
    parse_octets(s.as_bytes(), now_ms)
}

/// [`parse`] of the field's octets as they came (a `COctetString`'s
/// `as_bytes`): a valid time is ASCII, so nothing is lost by not checking
/// the field as UTF-8 first.
#[inline]
pub fn parse_octets(b: &[u8], now_ms: u64) -> Option<u64> {
    // Most fields are empty: answered here, without a call.
    match <&[u8; 16]>::try_from(b) {
        Ok(b) => parse_16(b, now_ms),
        Err(_) => None,
    }
}

fn parse_16(b: &[u8; 16], now_ms: u64) -> Option<u64> {
    if !b[..15].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |i: usize| -> i64 { i64::from(b[i] - b'0') * 10 + i64::from(b[i + 1] - b'0') };
    let (yy, mo, dd, hh, mi, ss) = (n(0), n(2), n(4), n(6), n(8), n(10));
    match b[15] {
        b'R' => {
            // Relative: `tnn` is 000; months count 30 days, years 365.
            if &b[12..15] != b"000" {
                return None;
            }
            let days = yy * 365 + mo * 30 + dd;
            let secs = ((days * 24 + hh) * 60 + mi) * 60 + ss;
            Some(now_ms.saturating_add(u64::try_from(secs).ok()?.saturating_mul(1000)))
        }
        sign @ (b'+' | b'-') => {
            if !(1..=12).contains(&mo) || !(1..=31).contains(&dd) || hh > 23 || mi > 59 || ss > 59 {
                return None;
            }
            let tenths = i64::from(b[12] - b'0');
            let quarters = n(13);
            if quarters > 48 {
                return None;
            }
            let days = days_from_civil(2000 + yy, mo, dd);
            let local = ((days * 24 + hh) * 60 + mi) * 60 + ss;
            // The time is local, `quarters` quarter-hours ahead of (+) or behind (-) UTC.
            let offset = quarters * 15 * 60;
            let utc = if sign == b'+' {
                local - offset
            } else {
                local + offset
            };
            u64::try_from(utc * 1000 + tenths * 100).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod smpp_time_tests {
    use super::*;

    #[test]
    fn reads_absolute_and_relative_times() {
        let ms = 1_768_645_805_700;
        assert_eq!(parse(&absolute(ms), 0), Some(ms));
        // 10:30:05 at UTC+1 (4 quarter hours) is 09:30:05 UTC.
        assert_eq!(parse("260117113005704+", 0), Some(ms));
        assert_eq!(parse("000000000130000R", 1000), Some(91_000));
        assert_eq!(parse("", 0), None);
        assert_eq!(parse_octets(b"", 0), None);
        assert_eq!(parse_octets(b"26011711300570\xff+", 0), None);
        assert_eq!(parse_octets(b"260117113005704+", 0), Some(ms));
        assert_eq!(parse("261317103005700+", 0), None);
        assert_eq!(parse("26011710300570x+", 0), None);
        assert_eq!(
            parse("260117103005749+", 0),
            None,
            "at most 48 quarter hours"
        );
        assert_eq!(parse("000000013000100R", 0), None, "relative: tnn is 000");
    }
}
