//! The PROXY protocol header (HAProxy's, versions 1 and 2) that a load
//! balancer puts in front of a TCP stream to say who the client really is.
//!
//! Sans-IO and zero-copy, like the codec: [`parse`] looks at the first
//! octets of a connection and answers [`Parsed::Incomplete`] (read more),
//! [`Parsed::Header`] (the header and how many octets it took; SMPP starts
//! after them) or an [`Error`] (close the connection). Addresses are plain
//! data ([`SocketAddr`]); nothing here reads a socket.
//!
//! Only a connection from a trusted balancer may carry the header: a server
//! parses it from those peers alone, and treats the octets of anyone else as
//! SMPP (where a header is not a valid PDU and is rejected as one).
//!
//! ```
//! use smpp_proto::proxy::{parse, Addresses, Command, Parsed};
//!
//! let input = b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 2775\r\n\x00\x00\x00\x10";
//! let Ok(Parsed::Header(header, used)) = parse(input) else { panic!() };
//! assert_eq!(header.command, Command::Proxy);
//! let Addresses::Inet { source, .. } = header.addresses else { panic!() };
//! assert_eq!(source.to_string(), "192.0.2.7:40000");
//! assert_eq!(&input[used..], b"\x00\x00\x00\x10"); // the first SMPP octets
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The 12 octets that open a version 2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// What opens a version 1 header.
const V1_PREFIX: &[u8] = b"PROXY ";
/// The longest version 1 line, CRLF included (the specification's bound).
pub const V1_MAX_LEN: usize = 107;
/// The fixed part of a version 2 header; its address block and TLVs follow.
const V2_FIXED: usize = 16;

/// What [`parse`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// The octets so far are the start of a header: read more.
    Incomplete,
    /// A whole header, and the number of octets it took (the stream's own
    /// data starts after them).
    Header(Header<'a>, usize),
}

/// A PROXY protocol header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// 1 or 2.
    pub version: u8,
    /// Whether the addresses stand for a client ([`Command::Proxy`]) or the
    /// balancer speaks for itself ([`Command::Local`], a health check).
    pub command: Command,
    /// The client's and the balancer's addresses, when given.
    pub addresses: Addresses<'a>,
    /// Version 2's TLVs (type, length, value; checked to fit), raw.
    pub tlvs: Tlvs<'a>,
}

impl Header<'_> {
    /// The client's address the connection stands for: the source of a
    /// `PROXY` command over IPv4 or IPv6; `None` for `LOCAL`, `UNKNOWN`,
    /// an unspecified family or a Unix socket (use the connection's own
    /// peer address then).
    pub fn client(&self) -> Option<SocketAddr> {
        match (self.command, &self.addresses) {
            (Command::Proxy, Addresses::Inet { source, .. }) => Some(*source),
            _ => None,
        }
    }
}

/// The header's command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// The connection was opened by the balancer itself (version 2 `LOCAL`):
    /// its addresses, if any, are to be ignored.
    Local,
    /// The connection stands for the client named in the addresses.
    Proxy,
}

/// The transport of the proxied connection (version 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Not said (version 2 `UNSPEC`).
    Unspecified,
    /// A stream (TCP); always so in version 1.
    Stream,
    /// Datagrams (UDP).
    Datagram,
}

/// The addresses a header carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Addresses<'a> {
    /// None given (version 1 `UNKNOWN`, version 2 `AF_UNSPEC` or `LOCAL`
    /// without addresses).
    #[default]
    Unspecified,
    /// IPv4 or IPv6: the client (source) and the balancer's listening
    /// address it connected to (destination).
    Inet {
        /// The client.
        source: SocketAddr,
        /// Where the client connected to.
        destination: SocketAddr,
        /// Over what.
        transport: Transport,
    },
    /// Unix socket paths (108 octets each, NUL-padded), raw.
    Unix {
        /// The client's path.
        source: &'a [u8],
        /// The listening path.
        destination: &'a [u8],
        /// Over what.
        transport: Transport,
    },
}

/// Version 2's TLVs, checked to fit their block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tlvs<'a>(&'a [u8]);

impl<'a> Tlvs<'a> {
    /// Each TLV's type and value, in order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        let mut rest = self.0;
        std::iter::from_fn(move || {
            let (&kind, after) = rest.split_first()?;
            let len = usize::from(u16::from_be_bytes([after[0], after[1]]));
            let value = &after[2..2 + len];
            rest = &after[2 + len..];
            Some((kind, value))
        })
    }

    /// The value of the first TLV of type `kind` (e.g. 0x04, `PP2_TYPE_NOOP`;
    /// 0x05, `PP2_TYPE_UNIQUE_ID`).
    pub fn get(&self, kind: u8) -> Option<&'a [u8]> {
        self.iter().find(|(k, _)| *k == kind).map(|(_, v)| v)
    }

    fn check(block: &'a [u8]) -> Result<Tlvs<'a>, Error> {
        let mut rest = block;
        while !rest.is_empty() {
            if rest.len() < 3 {
                return Err(Error::BadTlv);
            }
            let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
            rest = rest.get(3 + len..).ok_or(Error::BadTlv)?;
        }
        Ok(Tlvs(block))
    }
}

/// Why a header is refused: the connection should be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The stream does not start with a PROXY header.
    #[error("no PROXY protocol header")]
    Missing,
    /// A version 1 line longer than 107 octets, or without its CRLF.
    #[error("PROXY v1 line too long or not terminated")]
    LineTooLong,
    /// A version 1 line that does not follow the grammar (protocol word,
    /// single spaces, four fields).
    #[error("malformed PROXY v1 line")]
    BadLine,
    /// An address that does not parse, or of the wrong family.
    #[error("malformed address in PROXY header")]
    BadAddress,
    /// A port that is not a decimal 0..=65535 without leading zeros.
    #[error("malformed port in PROXY header")]
    BadPort,
    /// A version 2 header whose version nibble is not 2.
    #[error("unsupported PROXY protocol version")]
    BadVersion,
    /// A version 2 command other than `LOCAL` and `PROXY`.
    #[error("unknown PROXY v2 command")]
    BadCommand,
    /// A version 2 address family or transport that does not exist.
    #[error("unknown PROXY v2 address family or transport")]
    BadFamily,
    /// A version 2 length too short for the family's addresses.
    #[error("PROXY v2 address block too short")]
    ShortAddresses,
    /// A version 2 TLV that overruns its block.
    #[error("malformed PROXY v2 TLV")]
    BadTlv,
}

/// Looks for a PROXY header (version 1 or 2) at the start of `input`, the
/// first octets read from a connection.
pub fn parse(input: &[u8]) -> Result<Parsed<'_>, Error> {
    if starts_as(input, &V2_SIGNATURE) {
        if input.len() < V2_SIGNATURE.len() {
            return Ok(Parsed::Incomplete);
        }
        parse_v2(input)
    } else if starts_as(input, V1_PREFIX) {
        if input.len() < V1_PREFIX.len() {
            return Ok(Parsed::Incomplete);
        }
        parse_v1(input)
    } else {
        Err(Error::Missing)
    }
}

/// `input` is `prefix`, or a start of it.
fn starts_as(input: &[u8], prefix: &[u8]) -> bool {
    let n = input.len().min(prefix.len());
    input[..n] == prefix[..n]
}

fn parse_v1(input: &[u8]) -> Result<Parsed<'_>, Error> {
    // The CR may be at most at 105: the line is 107 octets with its CRLF.
    let window = &input[..input.len().min(V1_MAX_LEN - 1)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        return if input.len() >= V1_MAX_LEN - 1 {
            Err(Error::LineTooLong)
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    match input.get(cr + 1) {
        None => return Ok(Parsed::Incomplete),
        Some(b'\n') => {}
        Some(_) => return Err(Error::BadLine),
    }
    let line = &input[V1_PREFIX.len()..cr];
    let used = cr + 2;
    let header = |addresses| Header {
        version: 1,
        command: Command::Proxy,
        addresses,
        tlvs: Tlvs::default(),
    };
    if line == b"UNKNOWN" || line.starts_with(b"UNKNOWN ") {
        // The rest of the line is to be ignored (the balancer could not tell).
        return Ok(Parsed::Header(header(Addresses::Unspecified), used));
    }
    let mut fields = line.split(|&b| b == b' ');
    let (Some(proto), Some(src), Some(dst), Some(sport), Some(dport), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(Error::BadLine);
    };
    if [src, dst, sport, dport]
        .iter()
        .any(|field| field.is_empty())
    {
        return Err(Error::BadLine); // two spaces in a row
    }
    let (source, destination): (IpAddr, IpAddr) = match proto {
        b"TCP4" => (ip::<Ipv4Addr>(src)?.into(), ip::<Ipv4Addr>(dst)?.into()),
        b"TCP6" => (ip::<Ipv6Addr>(src)?.into(), ip::<Ipv6Addr>(dst)?.into()),
        _ => return Err(Error::BadLine),
    };
    let addresses = Addresses::Inet {
        source: SocketAddr::new(source, port(sport)?),
        destination: SocketAddr::new(destination, port(dport)?),
        transport: Transport::Stream,
    };
    Ok(Parsed::Header(header(addresses), used))
}

/// A version 1 address of the family the protocol word named.
fn ip<T: std::str::FromStr>(field: &[u8]) -> Result<T, Error> {
    std::str::from_utf8(field)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(Error::BadAddress)
}

/// A version 1 port: decimal, 0..=65535, no sign and no leading zero.
fn port(field: &[u8]) -> Result<u16, Error> {
    let digits = !field.is_empty() && field.len() <= 5 && field.iter().all(u8::is_ascii_digit);
    if !digits || (field.len() > 1 && field[0] == b'0') {
        return Err(Error::BadPort);
    }
    let value = field.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    u16::try_from(value).map_err(|_| Error::BadPort)
}

fn parse_v2(input: &[u8]) -> Result<Parsed<'_>, Error> {
    if input.len() < V2_FIXED {
        // Check what is there already: a wrong version fails at once.
        if let Some(&ver_cmd) = input.get(12) {
            check_version(ver_cmd)?;
        }
        return Ok(Parsed::Incomplete);
    }
    let command = check_version(input[12])?;
    let family = input[13];
    let len = usize::from(u16::from_be_bytes([input[14], input[15]]));
    if command == Command::Proxy {
        // Refuse a bad family before waiting for its block.
        address_len(family)?;
    }
    let Some(block) = input.get(V2_FIXED..V2_FIXED + len) else {
        return Ok(Parsed::Incomplete);
    };
    let (addresses, tlvs) = match command {
        // The balancer speaks for itself (a health check): whatever
        // follows is to be ignored, so nothing in it can refuse the
        // connection; what parses is reported.
        Command::Local => v2_block(family, block).unwrap_or_default(),
        Command::Proxy => v2_block(family, block)?,
    };
    let header = Header {
        version: 2,
        command,
        addresses,
        tlvs,
    };
    Ok(Parsed::Header(header, V2_FIXED + len))
}

/// The length of the address block of a v2 family octet (and its
/// transport nibble checked).
fn address_len(family: u8) -> Result<usize, Error> {
    if family & 0x0F > 0x2 {
        return Err(Error::BadFamily);
    }
    match family >> 4 {
        0x0 => Ok(0),
        0x1 => Ok(12),
        0x2 => Ok(36),
        0x3 => Ok(216),
        _ => Err(Error::BadFamily),
    }
}

/// A v2 address block and the TLVs after it.
fn v2_block(family: u8, block: &[u8]) -> Result<(Addresses<'_>, Tlvs<'_>), Error> {
    let needed = address_len(family)?;
    if block.len() < needed {
        return Err(Error::ShortAddresses);
    }
    let transport = match family & 0x0F {
        0x1 => Transport::Stream,
        0x2 => Transport::Datagram,
        _ => Transport::Unspecified,
    };
    let (addrs, tlvs) = block.split_at(needed);
    let addresses = match family >> 4 {
        0x1 => {
            let ip = |at: usize| {
                Ipv4Addr::from([addrs[at], addrs[at + 1], addrs[at + 2], addrs[at + 3]])
            };
            let port = |at: usize| u16::from_be_bytes([addrs[at], addrs[at + 1]]);
            Addresses::Inet {
                source: SocketAddr::new(ip(0).into(), port(8)),
                destination: SocketAddr::new(ip(4).into(), port(10)),
                transport,
            }
        }
        0x2 => {
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&addrs[at..at + 16]);
                Ipv6Addr::from(octets)
            };
            let port = |at: usize| u16::from_be_bytes([addrs[at], addrs[at + 1]]);
            Addresses::Inet {
                source: SocketAddr::new(ip(0).into(), port(32)),
                destination: SocketAddr::new(ip(16).into(), port(34)),
                transport,
            }
        }
        0x3 => Addresses::Unix {
            source: &addrs[..108],
            destination: &addrs[108..216],
            transport,
        },
        // AF_UNSPEC: the receiver ignores the block; TLVs that do not
        // parse are ignored with it.
        _ => {
            return Ok((
                Addresses::Unspecified,
                Tlvs::check(tlvs).unwrap_or_default(),
            ))
        }
    };
    Ok((addresses, Tlvs::check(tlvs)?))
}

fn check_version(ver_cmd: u8) -> Result<Command, Error> {
    if ver_cmd >> 4 != 2 {
        return Err(Error::BadVersion);
    }
    match ver_cmd & 0x0F {
        0x0 => Ok(Command::Local),
        0x1 => Ok(Command::Proxy),
        _ => Err(Error::BadCommand),
    }
}

#[cfg(test)]
mod tests;
