//! The write half of a connection, plain or TLS. With TLS, the I/O thread
//! owns the whole rustls connection: the reader thread hands it raw bytes,
//! it decrypts them, and it encrypts and writes the output. (rustls's
//! `StreamOwned` cannot be shared between a blocked reader and a writer.)

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// The connection's writing side and, with TLS, its record layer.
#[derive(Debug)]
pub(crate) struct Wire {
    stream: TcpStream,
    #[cfg(feature = "tls")]
    tls: Option<rustls::Connection>,
}

impl Wire {
    pub(crate) fn plain(stream: TcpStream) -> Wire {
        Wire {
            stream,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    #[cfg(feature = "tls")]
    pub(crate) fn tls(stream: TcpStream, tls: rustls::Connection) -> Wire {
        Wire {
            stream,
            tls: Some(tls),
        }
    }

    /// A handle on the same socket, for the reader thread.
    pub(crate) fn reader(&self) -> io::Result<TcpStream> {
        let reader = self.stream.try_clone()?;
        reader.set_read_timeout(None)?;
        Ok(reader)
    }

    pub(crate) fn set_write_timeout(&self, timeout: Duration) {
        let _ = self.stream.set_write_timeout(Some(timeout));
    }

    /// Turns bytes read from the socket into plaintext (appended to
    /// `plain`), or hands them over as they are; `Ok(false)` means they are
    /// plaintext already (no TLS).
    pub(crate) fn decrypt(&mut self, raw: &[u8], plain: &mut Vec<u8>) -> io::Result<bool> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            let mut rest = raw;
            while !rest.is_empty() {
                tls.read_tls(&mut rest)?;
                let processed = tls.process_new_packets();
                // Alerts (and handshake messages) go out before an error is reported.
                while tls.wants_write() {
                    tls.write_tls(&mut self.stream)?;
                }
                processed.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                Self::take_plaintext(tls, plain)?;
            }
            return Ok(true);
        }
        let _ = (raw, plain);
        Ok(false)
    }

    /// Plaintext rustls holds already (received with the handshake).
    pub(crate) fn buffered(&mut self, plain: &mut Vec<u8>) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            Self::take_plaintext(tls, plain)?;
        }
        let _ = plain;
        Ok(())
    }

    #[cfg(feature = "tls")]
    fn take_plaintext(tls: &mut rustls::Connection, plain: &mut Vec<u8>) -> io::Result<()> {
        use std::io::Read;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match tls.reader().read(&mut chunk) {
                Ok(0) => return Ok(()), // close_notify: the end of the stream follows
                Ok(n) => plain.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes `data` (encrypted with TLS), blocking up to the write timeout.
    pub(crate) fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            let mut rest = data;
            loop {
                let n = tls.writer().write(rest)?;
                rest = &rest[n..];
                while tls.wants_write() {
                    tls.write_tls(&mut self.stream)?;
                }
                if rest.is_empty() {
                    return Ok(());
                }
            }
        }
        self.stream.write_all(data)
    }

    /// Sends TLS's close_notify, then shuts the socket down (which also
    /// ends the reader thread).
    pub(crate) fn close(&mut self) {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            tls.send_close_notify();
            while tls.wants_write() {
                if tls.write_tls(&mut self.stream).is_err() {
                    break;
                }
            }
        }
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}
