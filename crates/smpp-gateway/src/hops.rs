//! The loop guard: a message must not go round between gateways (or back
//! into this one) for ever.
//!
//! - At start (and for each connector the admin API adds), a connector
//!   that points at this gateway itself is refused: its address is our
//!   customers' listener (the same port on the same address, on a
//!   loopback address, or on a wildcard listener; addresses given as IPs
//!   or `localhost`) and its `system_id` is one of our accounts.
//! - At run time every message forwarded upstream carries a hop count: a
//!   private TLV ([`HOP_COUNT`], tag `0x1450`, one octet), one more than
//!   the count the message arrived with (none: 0). A gateway that finds a
//!   count of [`crate::GatewayConfig::max_hops`] or more on a submission
//!   refuses it with `ESME_RINVDSTADR`, a permanent error: the gateway
//!   (or SMSC) that sent it fails its message, with a failed receipt
//!   (`err:00B`) back along the way it came, and nothing is forwarded
//!   again. Like a TTL, it cuts every loop, however many gateways it
//!   passes, after a bounded number of hops; a count passes through any
//!   gateway that keeps unknown TLVs (SMPP 3.4 asks receivers to ignore
//!   those they do not know; an SMPP 3.3 upstream gets no TLVs at all).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use smpp_proto::pdu::{TlvTag, Tlvs};

use crate::config::UpstreamConfig;

/// The private TLV carrying the hop count (reserved range 0x1400-0x3FFF).
pub(crate) const HOP_COUNT: TlvTag = TlvTag(0x1450);

/// The hop count a message carries (0: none).
pub(crate) fn hops(tlvs: &Tlvs) -> u32 {
    tlvs.get_int(HOP_COUNT).unwrap_or(0)
}

/// Marks a message about to go upstream: one hop more.
pub(crate) fn mark(tlvs: &mut Tlvs) {
    let next = hops(tlvs).saturating_add(1).min(u32::from(u8::MAX));
    tlvs.set_u8(HOP_COUNT, u8::try_from(next).unwrap_or(u8::MAX));
}

/// The address `addr` (`HOST:PORT`) names, when its host is an IP or
/// `localhost` (no name lookup).
fn literal(addr: &str) -> Option<SocketAddr> {
    if let Ok(a) = addr.parse() {
        return Some(a);
    }
    let (host, port) = addr.rsplit_once(':')?;
    let port = port.parse().ok()?;
    host.eq_ignore_ascii_case("localhost")
        .then_some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
}

/// Whether `upstream` binds to this gateway itself: its address is one of
/// `ours` (listeners) and its `system_id` one of our accounts.
pub(crate) fn points_at_self(
    upstream: &UpstreamConfig,
    ours: &[SocketAddr],
    is_account: impl Fn(&str) -> bool,
) -> bool {
    let Some(to) = literal(&upstream.addr) else {
        return false;
    };
    let same = |own: &SocketAddr| {
        own.port() == to.port()
            && (own.ip() == to.ip()
                || own.ip().is_unspecified()
                || (own.ip().is_loopback() && to.ip().is_loopback()))
    };
    ours.iter().any(same) && is_account(&upstream.system_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_counts_its_hops() {
        let mut tlvs = Tlvs::new();
        assert_eq!(hops(&tlvs), 0);
        mark(&mut tlvs);
        mark(&mut tlvs);
        assert_eq!(hops(&tlvs), 2);
        tlvs.set_u8(HOP_COUNT, u8::MAX);
        mark(&mut tlvs);
        assert_eq!(hops(&tlvs), 255, "saturates");
    }

    #[test]
    fn a_connector_to_our_own_listener_with_one_of_our_accounts_is_seen() {
        let ours = ["0.0.0.0:2775".parse().unwrap()];
        let account = |id: &str| id == "esme";
        let at = |s: &str| s.parse::<UpstreamConfig>().unwrap();
        assert!(points_at_self(
            &at("x=esme:pw@127.0.0.1:2775"),
            &ours,
            account
        ));
        assert!(points_at_self(
            &at("x=esme:pw@localhost:2775"),
            &ours,
            account
        ));
        assert!(!points_at_self(
            &at("x=other:pw@127.0.0.1:2775"),
            &ours,
            account
        ));
        assert!(!points_at_self(
            &at("x=esme:pw@127.0.0.1:2776"),
            &ours,
            account
        ));
        let loopback = ["127.0.0.1:2775".parse().unwrap()];
        assert!(points_at_self(
            &at("x=esme:pw@127.0.0.2:2775"),
            &loopback,
            account
        ));
        assert!(!points_at_self(
            &at("x=esme:pw@10.0.0.1:2775"),
            &loopback,
            account
        ));
        assert!(!points_at_self(
            &at("x=esme:pw@smsc.example:2775"),
            &ours,
            account
        ));
    }
}
