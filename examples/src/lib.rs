//! Runnable examples live in `examples/`. This library holds what the feature examples
//! (`wap_push`, `mms_notification`, `ussd_menu`, `mwi`, `billing`) share: a real
//! `smpp serve` started for the run ([`SmppServe`]), ESME binds to it, and a receiver
//! that hands back whole (reassembled) messages with what they carry ([`Received`]).
//!
//! The `smpp` binary comes from `SMPP_BIN`, else from beside the example's own
//! executable (`target/<profile>/smpp`): `cargo build -p smpp-cli` first.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use smpp_proto::message::features::MessageFeatures;
use smpp_proto::message::reassembly::ReassembledMessage;
use smpp_proto::message::{IncomingPart, PartOutcome, Reassembler, ReassemblyConfig};
use smpp_proto::pdu::{Bind, Body, Tlvs};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::{Client, Inbound};

/// What an example returns: any error ends it with exit code 1.
pub type Result<T = (), E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// How long an example waits for anything before it calls the run failed.
pub const WAIT: Duration = Duration::from_secs(15);

/// The account `smpp serve` accepts by default.
pub const SYSTEM_ID: &str = "smppclient1";
/// Its password.
pub const PASSWORD: &str = "password";

/// A running `smpp serve --memory` on 127.0.0.1 (a free port); killed when dropped.
#[derive(Debug)]
pub struct SmppServe {
    child: Child,
    addr: SocketAddr,
}

/// The `smpp` binary: `SMPP_BIN`, else `smpp` in the directory above the example's
/// executable (`target/debug/examples/wap_push` -> `target/debug/smpp`).
pub fn smpp_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("SMPP_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let name = format!("smpp{}", std::env::consts::EXE_SUFFIX);
    exe.parent()
        .and_then(|examples| examples.parent())
        .map_or_else(|| PathBuf::from(&name), |dir| dir.join(&name))
}

impl SmppServe {
    /// Starts `smpp serve --memory --listen 127.0.0.1:0` with `extra` flags and waits
    /// for its start-up banner.
    pub fn start(extra: &[&str]) -> Result<SmppServe> {
        let bin = smpp_binary();
        if !bin.exists() {
            return Err(format!(
                "{} not found: build it first (cargo build -p smpp-cli) or set SMPP_BIN",
                bin.display()
            )
            .into());
        }
        let mut command = Command::new(&bin);
        command
            .args(["serve", "--memory", "--listen", "127.0.0.1:0"])
            .args(extra);
        // The server's start-up warnings (the default account's plain password) are noise here.
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "error");
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the banner, then keeps draining so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut serve = SmppServe {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        loop {
            let line = rx
                .recv_timeout(WAIT)
                .map_err(|_| "smpp serve printed no start-up banner")?;
            if let Some(addr) = line.strip_prefix("SMPP listening on ") {
                serve.addr = addr.trim().parse()?;
            }
            if line.starts_with("store:") {
                break;
            }
        }
        if serve.addr.port() == 0 {
            return Err("smpp serve did not say where it listens".into());
        }
        Ok(serve)
    }

    /// Where it listens for SMPP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Binds to it as `kind` with the default account; `address_range` (a regular
    /// expression, anchored by the server) makes the server route messages for matching
    /// destinations to this bind. `interface_version` 0x34 or 0x50.
    pub async fn bind(
        &self,
        kind: BindKind,
        address_range: &str,
        interface_version: u8,
    ) -> Result<(Client, Inbound)> {
        let bind = Bind {
            system_id: SYSTEM_ID.into(),
            password: PASSWORD.into(),
            interface_version,
            address_range: smpp_proto::pdu::COctetString::copy_from_str(address_range),
            ..Default::default()
        };
        let config = SessionConfig::default().with_response_timeout(WAIT);
        Ok(Client::connect(&self.addr.to_string(), kind, bind, config).await?)
    }
}

impl Drop for SmppServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A whole message received by an ESME: the reassembled parts, the TLVs of the PDU
/// that completed it, the operation that carried it and what it is.
#[derive(Debug)]
pub struct Received {
    /// The message.
    pub message: ReassembledMessage,
    /// TLVs of the last part received.
    pub tlvs: Tlvs,
    /// `deliver_sm` or `data_sm`.
    pub command: String,
    /// What it carries.
    pub features: MessageFeatures,
}

/// Reassembles what arrives on one bind, answering every request OK.
#[derive(Debug)]
pub struct Receiver {
    inbound: Inbound,
    reassembler: Reassembler,
}

impl Receiver {
    /// Receives on `inbound`.
    pub fn new(inbound: Inbound) -> Self {
        Receiver {
            inbound,
            reassembler: Reassembler::new(ReassemblyConfig::default()),
        }
    }

    /// The next whole message (parts in any order; receipts and other requests are
    /// answered and skipped); an error after [`WAIT`].
    pub async fn next(&mut self) -> Result<Received> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let request = tokio::time::timeout_at(deadline, self.inbound.recv())
                .await
                .map_err(|_| "nothing arrived in time")?
                .ok_or("the SMSC closed the session")?;
            if request.receipt().is_some() {
                continue;
            }
            let command = request.pdu().command_id().to_string();
            let (part, tlvs) = match request.body() {
                Body::DeliverSm(sm) => (IncomingPart::from_deliver_sm(sm)?, sm.tlvs.clone()),
                Body::DataSm(sm) => (IncomingPart::from_data_sm(sm)?, sm.tlvs.clone()),
                _ => continue,
            };
            // Dropping the request answers it with status 0.
            drop(request);
            if let PartOutcome::Complete(message) =
                self.reassembler.handle_part(Instant::now(), part)?
            {
                let features = MessageFeatures::of(&message, &tlvs);
                return Ok(Received {
                    message,
                    tlvs,
                    command,
                    features,
                });
            }
        }
    }

    /// The next request of any kind, unanswered until the returned value is dropped.
    pub async fn next_request(&mut self) -> Result<smpp_tokio::InboundRequest> {
        Ok(tokio::time::timeout(WAIT, self.inbound.recv())
            .await
            .map_err(|_| "nothing arrived in time")?
            .ok_or("the SMSC closed the session")?)
    }
}

/// Fails the run unless `got == want`, naming `what`.
pub fn check<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result {
    if got == want {
        println!("ok: {what}: {got:?}");
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, sent {want:?}").into())
    }
}
