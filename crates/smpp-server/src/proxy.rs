//! The PROXY protocol (v1 and v2) on the SMPP listeners: from a trusted
//! balancer, the header is read before anything else (before a TLS
//! handshake too) with the sans-IO parser [`smpp_proto::proxy`], and the
//! client address it carries becomes the connection's peer address (what
//! allow-lists, the bind lockout, logs, metrics and CDRs see). A missing or
//! malformed header from a trusted source closes the connection; the octets
//! of any other source are SMPP (where a header is no valid PDU).

use std::io;
use std::net::SocketAddr;

use smpp_proto::proxy::{parse, Parsed, V2_SIGNATURE};
use tokio::io::{AsyncRead, AsyncReadExt as _};

use crate::config::Cidr;

/// The shortest header (`PROXY UNKNOWN\r\n`; a version 2 one has 16 octets).
const SHORTEST: usize = 15;

/// Whether connections from `peer` must start with a PROXY header.
pub(crate) fn trusted(networks: &[Cidr], peer: SocketAddr) -> bool {
    networks.iter().any(|n| n.contains(peer.ip()))
}

/// Reads a PROXY header from `stream`, octet-exact (nothing after it is
/// consumed), and returns the client it stands for: the carried source
/// address, or `peer` for a `LOCAL` or `UNKNOWN` header.
pub(crate) async fn read_client<S: AsyncRead + Unpin>(
    stream: &mut S,
    peer: SocketAddr,
) -> io::Result<SocketAddr> {
    let mut buf = vec![0u8; SHORTEST];
    stream.read_exact(&mut buf).await?;
    loop {
        match parse(&buf) {
            Ok(Parsed::Header(header, used)) => {
                debug_assert_eq!(used, buf.len(), "read octet-exact");
                return Ok(header.client().unwrap_or(peer));
            }
            Ok(Parsed::Incomplete) => {
                // Version 2 says its length; version 1 ends at CRLF, read
                // an octet at a time so as not to read past it.
                let want = if buf.starts_with(&V2_SIGNATURE) && buf.len() >= 16 {
                    16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]))
                } else {
                    buf.len() + 1
                };
                let at = buf.len();
                buf.resize(want.max(at + 1), 0);
                stream.read_exact(&mut buf[at..]).await?;
            }
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn client_of(input: &[u8]) -> (io::Result<SocketAddr>, usize) {
        let peer: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let mut stream = input;
        let result = read_client(&mut stream, peer).await;
        (result, stream.len())
    }

    #[tokio::test]
    async fn reads_v1_and_v2_exactly_and_nothing_more() {
        let v1 = b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 2775\r\nSMPP";
        let (client, left) = client_of(v1).await;
        assert_eq!(client.unwrap().to_string(), "192.0.2.7:40000");
        assert_eq!(left, 4, "the SMPP octets stay");

        let mut v2 = V2_SIGNATURE.to_vec();
        v2.extend([
            0x21, 0x11, 0, 12, 192, 0, 2, 9, 198, 51, 100, 1, 0x9c, 0x40, 0x0a, 0xcf,
        ]);
        v2.extend(b"SMPP");
        let (client, left) = client_of(&v2).await;
        assert_eq!(client.unwrap().to_string(), "192.0.2.9:40000");
        assert_eq!(left, 4);

        let (client, _) = client_of(b"PROXY UNKNOWN\r\n").await;
        assert_eq!(
            client.unwrap().to_string(),
            "10.0.0.1:1000",
            "the peer itself"
        );
    }

    #[tokio::test]
    async fn missing_truncated_or_bad_headers_fail() {
        for bad in [
            &b"\x00\x00\x00\x10\x00\x00\x00\x15\x00\x00\x00\x00\x00\x00\x00\x01"[..],
            b"PROXY TCP4 192.0.2.7",
            b"PROXY TCP4 nonsense nonsense 1 2\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
        ] {
            assert!(client_of(bad).await.0.is_err(), "{bad:?}");
        }
        let long = format!("PROXY TCP4 {}\r\n", "1".repeat(200));
        assert!(client_of(long.as_bytes()).await.0.is_err());
    }
}
