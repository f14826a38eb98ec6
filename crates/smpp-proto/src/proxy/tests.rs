use std::net::{IpAddr, SocketAddr};

use proptest::prelude::*;

use super::*;

fn header(input: &[u8]) -> (Header<'_>, usize) {
    match parse(input) {
        Ok(Parsed::Header(h, used)) => (h, used),
        other => panic!("expected a header, got {other:?}"),
    }
}

/// A version 2 header: command, family octet, address block, TLVs.
fn v2(ver_cmd: u8, family: u8, addrs: &[u8], tlvs: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(ver_cmd);
    out.push(family);
    out.extend_from_slice(&((addrs.len() + tlvs.len()) as u16).to_be_bytes());
    out.extend_from_slice(addrs);
    out.extend_from_slice(tlvs);
    out
}

fn inet4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut a = src.to_vec();
    a.extend_from_slice(&dst);
    a.extend_from_slice(&sport.to_be_bytes());
    a.extend_from_slice(&dport.to_be_bytes());
    a
}

#[test]
fn v1_tcp4_and_the_smpp_after_it() {
    let input = b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 2775\r\nSMPP";
    let (h, used) = header(input);
    assert_eq!(h.version, 1);
    assert_eq!(h.command, Command::Proxy);
    assert_eq!(h.client(), Some("192.0.2.7:40000".parse().unwrap()));
    assert_eq!(
        h.addresses,
        Addresses::Inet {
            source: "192.0.2.7:40000".parse().unwrap(),
            destination: "198.51.100.1:2775".parse().unwrap(),
            transport: Transport::Stream,
        }
    );
    assert_eq!(&input[used..], b"SMPP");
}

#[test]
fn v1_tcp6() {
    let (h, _) = header(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n");
    assert_eq!(h.client(), Some("[2001:db8::1]:1".parse().unwrap()));
}

#[test]
fn v1_unknown_ignores_the_rest_of_its_line() {
    for input in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
    ] {
        let (h, used) = header(input);
        assert_eq!(h.addresses, Addresses::Unspecified);
        assert_eq!(h.client(), None);
        assert_eq!(used, input.len());
    }
}

#[test]
fn v1_malformed_lines_are_refused() {
    let cases: &[(&[u8], Error)] = &[
        (
            b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 2775\rX",
            Error::BadLine,
        ),
        (
            b"PROXY TCP4  192.0.2.7 198.51.100.1 40000 2775\r\n",
            Error::BadLine,
        ),
        (
            b"PROXY TCP4 192.0.2.7 198.51.100.1 40000\r\n",
            Error::BadLine,
        ),
        (
            b"PROXY TCP4 192.0.2.7 198.51.100.1 1 2 3\r\n",
            Error::BadLine,
        ),
        (b"PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n", Error::BadLine),
        (
            b"PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n",
            Error::BadAddress,
        ),
        (
            b"PROXY TCP6 192.0.2.7 2001:db8::1 1 2\r\n",
            Error::BadAddress,
        ),
        (
            b"PROXY TCP4 192.0.2.256 198.51.100.1 1 2\r\n",
            Error::BadAddress,
        ),
        (
            b"PROXY TCP4 192.0.2.7 198.51.100.1 65536 2\r\n",
            Error::BadPort,
        ),
        (
            b"PROXY TCP4 192.0.2.7 198.51.100.1 080 2\r\n",
            Error::BadPort,
        ),
        (
            b"PROXY TCP4 192.0.2.7 198.51.100.1 +80 2\r\n",
            Error::BadPort,
        ),
        (b"PROXY TCP4 192.0.2.7 198.51.100.1  2\r\n", Error::BadLine),
    ];
    for (input, error) in cases {
        assert_eq!(
            parse(input),
            Err(*error),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn v1_line_bound_is_107_octets_with_its_crlf() {
    // "PROXY UNKNOWN " + padding + CRLF = exactly 107 octets: accepted.
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(V1_MAX_LEN - 2, b'x');
    line.extend_from_slice(b"\r\n");
    assert_eq!(line.len(), V1_MAX_LEN);
    assert_eq!(header(&line).1, V1_MAX_LEN);
    // One more octet before the CRLF: refused, and so is a line that has
    // reached the bound without a CR.
    let mut long = line.clone();
    long.insert(20, b'x');
    assert_eq!(parse(&long), Err(Error::LineTooLong));
    let mut open = b"PROXY UNKNOWN ".to_vec();
    open.resize(V1_MAX_LEN - 2, b'x');
    assert_eq!(parse(&open), Ok(Parsed::Incomplete));
    open.push(b'x');
    assert_eq!(parse(&open), Err(Error::LineTooLong));
}

#[test]
fn smpp_without_a_header_is_missing_at_the_first_wrong_octet() {
    // A bind_transmitter's first octets (command_length 0x00000027).
    assert_eq!(parse(b"\x00\x00\x00\x27"), Err(Error::Missing));
    assert_eq!(parse(b"PROXZ"), Err(Error::Missing));
    assert_eq!(parse(b"\r\n\r\n\0\r\nQUIX"), Err(Error::Missing));
    // A start of either signature: wait.
    assert_eq!(parse(b""), Ok(Parsed::Incomplete));
    assert_eq!(parse(b"PRO"), Ok(Parsed::Incomplete));
    assert_eq!(parse(b"\r\n\r\n\0"), Ok(Parsed::Incomplete));
}

#[test]
fn v2_proxy_tcp4_with_tlvs() {
    let tlvs = [0x05, 0x00, 0x03, b'a', b'b', b'c', 0x04, 0x00, 0x00];
    let mut input = v2(
        0x21,
        0x11,
        &inet4([192, 0, 2, 7], [198, 51, 100, 1], 40000, 2775),
        &tlvs,
    );
    input.extend_from_slice(b"SMPP");
    let (h, used) = header(&input);
    assert_eq!(h.version, 2);
    assert_eq!(h.command, Command::Proxy);
    assert_eq!(h.client(), Some("192.0.2.7:40000".parse().unwrap()));
    assert_eq!(&input[used..], b"SMPP");
    assert_eq!(h.tlvs.get(0x05), Some(&b"abc"[..]));
    assert_eq!(h.tlvs.get(0x04), Some(&b""[..]));
    assert_eq!(h.tlvs.iter().count(), 2);
}

#[test]
fn v2_tcp6_unix_unspec_and_local() {
    let mut addrs = [0u8; 36];
    addrs[15] = 1;
    addrs[31] = 2;
    addrs[32..34].copy_from_slice(&7u16.to_be_bytes());
    let input1 = v2(0x21, 0x21, &addrs, &[]);
    let (h, _) = header(&input1);
    assert_eq!(h.client(), Some("[::1]:7".parse().unwrap()));

    let unix = v2(0x21, 0x31, &[b'/'; 216], &[]);
    let (h, _) = header(&unix);
    assert!(matches!(h.addresses, Addresses::Unix { source, .. } if source.len() == 108));
    assert_eq!(h.client(), None);

    let input2 = v2(0x21, 0x00, &[], &[]);
    let (h, _) = header(&input2);
    assert_eq!(h.addresses, Addresses::Unspecified);

    // LOCAL: a health check of the balancer; its addresses do not count.
    let input3 = v2(0x20, 0x11, &inet4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), &[]);
    let (h, _) = header(&input3);
    assert_eq!(h.command, Command::Local);
    assert_eq!(h.client(), None);
    assert_eq!(
        h.addresses,
        Addresses::Inet {
            source: SocketAddr::new(IpAddr::from([1, 2, 3, 4]), 1),
            destination: SocketAddr::new(IpAddr::from([5, 6, 7, 8]), 2),
            transport: Transport::Stream,
        }
    );
}

#[test]
fn v2_local_is_accepted_whatever_its_block_says() {
    // A health check: the addresses are to be ignored, so a block that
    // does not parse cannot refuse the connection.
    for (family, block) in [
        (0x11, &[][..]),           // INET without its 12 octets
        (0x41, &[1, 2, 3][..]),    // an unknown family
        (0x13, &[][..]),           // an unknown transport
        (0x00, &[0x05, 0x00][..]), // a TLV that overruns
    ] {
        let input = v2(0x20, family, block, &[]);
        let (h, used) = header(&input);
        assert_eq!(
            (h.command, h.client(), used),
            (Command::Local, None, input.len())
        );
    }
    // UNSPEC under PROXY: the block is ignored too.
    let input = v2(0x21, 0x00, &[0x05, 0x00], &[]);
    let (h, _) = header(&input);
    assert_eq!(h.addresses, Addresses::Unspecified);
}

#[test]
fn v2_malformed_headers_are_refused() {
    let a4 = inet4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
    assert_eq!(parse(&v2(0x11, 0x11, &a4, &[])), Err(Error::BadVersion));
    assert_eq!(parse(&v2(0x22, 0x11, &a4, &[])), Err(Error::BadCommand));
    assert_eq!(parse(&v2(0x21, 0x41, &a4, &[])), Err(Error::BadFamily));
    assert_eq!(parse(&v2(0x21, 0x13, &a4, &[])), Err(Error::BadFamily));
    assert_eq!(parse(&v2(0x21, 0x21, &a4, &[])), Err(Error::ShortAddresses));
    assert_eq!(
        parse(&v2(0x21, 0x11, &a4, &[0x05, 0x00, 0x04, 1])),
        Err(Error::BadTlv)
    );
    assert_eq!(
        parse(&v2(0x21, 0x11, &a4, &[0x05, 0x00])),
        Err(Error::BadTlv)
    );
    // A wrong version is refused before the rest arrives.
    let mut early = V2_SIGNATURE.to_vec();
    early.push(0x31);
    assert_eq!(parse(&early), Err(Error::BadVersion));
}

fn any_v1() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u16>(),
            any::<u16>()
        )
            .prop_map(|(s, d, sp, dp)| {
                let (s, d) = (std::net::Ipv4Addr::from(s), std::net::Ipv4Addr::from(d));
                format!("PROXY TCP4 {s} {d} {sp} {dp}\r\n").into_bytes()
            }),
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u16>(),
            any::<u16>()
        )
            .prop_map(|(s, d, sp, dp)| {
                let (s, d) = (std::net::Ipv6Addr::from(s), std::net::Ipv6Addr::from(d));
                format!("PROXY TCP6 {s} {d} {sp} {dp}\r\n").into_bytes()
            }),
    ]
}

fn any_v2() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![0x20u8, 0x21]),
        prop::sample::select(vec![0x00u8, 0x11, 0x12, 0x21, 0x22, 0x31]),
        prop::collection::vec(
            (any::<u8>(), prop::collection::vec(any::<u8>(), 0..8)),
            0..4,
        ),
        any::<[u8; 32]>(),
    )
        .prop_map(|(cmd, fam, tlvs, seed)| {
            let len = match fam >> 4 {
                1 => 12,
                2 => 36,
                3 => 216,
                _ => 0,
            };
            let addrs: Vec<u8> = seed.iter().copied().cycle().take(len).collect();
            let mut t = Vec::new();
            for (kind, value) in tlvs {
                t.push(kind);
                t.extend_from_slice(&(value.len() as u16).to_be_bytes());
                t.extend_from_slice(&value);
            }
            v2(cmd, fam, &addrs, &t)
        })
}

proptest! {
    /// A whole header parses, takes exactly its own octets (whatever
    /// follows), and every proper prefix of it asks for more.
    #[test]
    fn headers_parse_whole_and_prefixes_wait(
        header in prop_oneof![any_v1(), any_v2()],
        tail in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut input = header.clone();
        input.extend_from_slice(&tail);
        crate::fuzzing::proxy_header(&input);
        match parse(&input) {
            Ok(Parsed::Header(_, used)) => prop_assert_eq!(used, header.len()),
            other => prop_assert!(false, "{:?}", other),
        }
        for cut in 0..header.len() {
            prop_assert_eq!(parse(&header[..cut]), Ok(Parsed::Incomplete));
        }
    }

    /// v1 addresses and ports come back as they were written.
    #[test]
    fn v1_addresses_round_trip(s in any::<[u8; 4]>(), d in any::<[u8; 16]>(), sp in any::<u16>()) {
        let (s, d) = (std::net::Ipv4Addr::from(s), std::net::Ipv6Addr::from(d));
        let line = format!("PROXY TCP4 {s} {s} {sp} 0\r\n");
        prop_assert_eq!(header(line.as_bytes()).0.client(), Some(SocketAddr::new(s.into(), sp)));
        let line = format!("PROXY TCP6 {d} {d} 0 {sp}\r\n");
        prop_assert_eq!(header(line.as_bytes()).0.client(), Some(SocketAddr::new(d.into(), 0)));
    }

    /// Any octets: the fuzz target's promises hold (it runs here too).
    #[test]
    fn any_input_is_answered(
        v2 in any::<bool>(),
        rest in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        // After a signature, so that the parsers themselves are exercised.
        let mut input = if v2 { V2_SIGNATURE.to_vec() } else { b"PROXY ".to_vec() };
        input.extend_from_slice(&rest);
        crate::fuzzing::proxy_header(&input);
    }
}
