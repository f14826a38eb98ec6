//! The gateway's Jasmin-compatible parameter parser (query strings and
//! form bodies of /send, /balance, /rate) never panics, and what it
//! accepts keeps Jasmin's rules. The module has no dependency beyond
//! `form_urlencoded`, so it is compiled here from the gateway's source.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/smpp-gateway/src/jasmin.rs"]
#[allow(dead_code)]
mod jasmin;

fuzz_target!(|data: &[u8]| {
    let fields = jasmin::parse_fields(data);
    if let Ok(r) = jasmin::parse_send(&fields) {
        assert!(r.priority <= 3);
        assert!(matches!(r.coding, 0..=10 | 13 | 14));
        assert!(!r.to.is_empty() && r.to.len() <= 20);
        if let Some(d) = &r.dlr {
            assert!((1..=3).contains(&d.level));
            assert!(d.url.starts_with("http://") || d.url.starts_with("https://"));
        }
    }
    let _ = jasmin::parse_rate(&fields);
    let _ = jasmin::parse_balance(&fields);
    let _ = jasmin::parse_hex(&String::from_utf8_lossy(data));
});
