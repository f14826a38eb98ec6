//! Scripted raw peers over `std::net` (runtime-agnostic: run them on a
//! thread with [`Task::thread`](crate::adapter::Task::thread)).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use bytes::BytesMut;
use smpp_proto::pdu::{self, Body, CommandStatus, DecodeConfig, Decoded, Pdu};

/// How long a raw peer waits for bytes before it gives up.
pub const READ_LIMIT: Duration = Duration::from_secs(10);

/// A raw SMPP peer on a socket: reads PDUs, writes what the test says.
#[derive(Debug)]
pub struct RawPeer {
    /// The socket.
    pub tcp: TcpStream,
    buf: BytesMut,
}

impl RawPeer {
    /// Wraps a connected socket (reads give up after [`READ_LIMIT`]).
    pub fn new(tcp: TcpStream) -> RawPeer {
        tcp.set_read_timeout(Some(READ_LIMIT)).unwrap();
        RawPeer {
            tcp,
            buf: BytesMut::new(),
        }
    }

    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> RawPeer {
        RawPeer::new(TcpStream::connect(addr).unwrap())
    }

    /// The next connection on `listener`.
    pub fn accept(listener: &TcpListener) -> RawPeer {
        let (tcp, _) = listener.accept().unwrap();
        RawPeer::new(tcp)
    }

    /// The next PDU, or `None` once the peer has closed (or gone silent
    /// for [`READ_LIMIT`]).
    pub fn read(&mut self) -> Option<Pdu> {
        loop {
            if let Decoded::Pdu(pdu) = pdu::decode(&mut self.buf, &DecodeConfig::default()).unwrap()
            {
                return Some(pdu);
            }
            let mut chunk = [0u8; 4096];
            match self.tcp.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Writes `pdu`.
    pub fn write(&mut self, pdu: Pdu) {
        self.tcp.write_all(&pdu.to_vec().unwrap()).unwrap();
    }

    /// Accepts the bind that must come first.
    pub fn accept_bind(&mut self) {
        let bind = self.read().unwrap();
        let body = Body::default_for(bind.command_id().response_id().unwrap()).unwrap();
        self.write(Pdu::response(bind.sequence_number, CommandStatus::OK, body));
    }

    /// Whether the peer closes the connection (EOF) within [`READ_LIMIT`],
    /// with nothing more to read.
    pub fn closed_by_peer(&mut self) -> bool {
        let mut chunk = [0u8; 64];
        matches!(self.tcp.read(&mut chunk), Ok(0))
    }
}

/// A listener for a raw MC on 127.0.0.1, and its address.
pub fn raw_mc() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// An address nobody listens on (a port just freed).
pub fn free_addr() -> SocketAddr {
    raw_mc().1
}
