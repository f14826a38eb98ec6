//! Bodies of the fuzz targets in `fuzz/`, kept here so that they build and
//! run with the crate's own tests too. Not a public API.

use bytes::BytesMut;

use crate::pdu::{self, DecodeConfig, Decoded, Pdu};

/// Feeds `data` as a byte stream to the decoder, in both strict and lenient
/// mode, checking the decoder's promises: progress on every call, frames
/// consumed whole, answers that encode, and decoded PDUs that encode.
pub fn decode_stream(data: &[u8]) {
    for config in [
        DecodeConfig::strict().with_max_pdu_len(4096),
        DecodeConfig::lenient(),
    ] {
        let mut buf = BytesMut::from(data);
        loop {
            let before = buf.len();
            match pdu::decode(&mut buf, &config) {
                Ok(Decoded::Pdu(p)) => {
                    assert!(buf.len() < before, "a decoded PDU consumes its frame");
                    if let Ok(wire) = p.to_vec() {
                        // What we encode, we decode again to the same PDU.
                        let again = pdu::decode_frame(wire.into(), &config);
                        assert_eq!(again.as_ref().ok(), Some(&p));
                    }
                }
                Ok(Decoded::Partial { needed }) => {
                    assert!(needed > 0);
                    break;
                }
                Err(e) => {
                    if let Some(answer) = e.response() {
                        answer.to_vec().expect("answers always encode");
                    }
                    if e.is_fatal() {
                        assert_eq!(buf.len(), before, "fatal errors consume nothing");
                        break;
                    }
                    assert!(buf.len() < before, "a bad frame is consumed");
                }
            }
        }
    }
}

/// A PDU that encodes decodes back to itself, and re-encodes to the same bytes.
pub fn roundtrip(pdu: &Pdu) {
    let Ok(wire) = pdu.to_vec() else { return };
    assert_eq!(Ok(wire.len()), pdu.encoded_len());
    let back = pdu::decode_frame(wire.clone().into(), &DecodeConfig::strict())
        .expect("our own encoding decodes");
    assert_eq!(&back, pdu);
    assert_eq!(back.to_vec().expect("re-encodes"), wire);
}

/// An ESME session, bound (or not, as the input decides), driven by the
/// input as a script of peer bytes, application commands and time.
pub fn session_esme(data: &[u8]) {
    session::Driver::run(crate::session::Role::Esme, data);
}

/// An MC session, bound (or not, as the input decides), driven by the input
/// as a script of peer bytes, application commands and time.
pub fn session_mc(data: &[u8]) {
    session::Driver::run(crate::session::Role::Mc, data);
}

/// An ESME and an MC endpoint (the request layer the adapters run) joined
/// by a pipe, driven by the input as a script of requests, answers, cut and
/// corrupted octets, time and failures: every reply token comes back once.
pub fn endpoint(data: &[u8]) {
    let _ = endpoint::run(data);
}

/// A PROXY protocol header (v1 or v2) parser's promises on any octets: no
/// panic; a header never claims more octets than it was given; a parse of
/// any prefix of a header's octets waits for more or fails, never yields a
/// different header; and what follows the header does not change it.
pub fn proxy_header(data: &[u8]) {
    use crate::proxy::{parse, Parsed};
    let Ok(Parsed::Header(header, used)) = parse(data) else {
        return;
    };
    assert!(used <= data.len() && used > 0);
    let _ = header.tlvs.iter().count();
    let _ = header.client();
    match parse(&data[..used]) {
        Ok(Parsed::Header(again, n)) => assert_eq!((again, n), (header.clone(), used)),
        other => panic!("the header alone parsed as {other:?}"),
    }
    // One octet short (v1 without its LF, v2 without its last one): never a header.
    assert!(!matches!(parse(&data[..used - 1]), Ok(Parsed::Header(..))));
}

mod endpoint;
mod session;
