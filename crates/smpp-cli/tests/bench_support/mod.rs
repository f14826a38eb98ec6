//! A test SMSC for the `smpp bench` and `smpp campaign` tests: an in-process
//! `smpp_tokio::Server` that counts submits per recipient, answers with
//! message ids (or, when told to, never answers some), and sends a delivery
//! receipt on the same bind when `registered_delivery` asks for one.

#![allow(dead_code, unreachable_pub)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use smpp_proto::message::{DeliveryReceipt, MessageState};
use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm, SubmitSmResp, TlvTag};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::{Connection, Handler, Server, ServerConfig, ServerHandle};

/// How the test SMSC behaves.
#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    /// Never answer submit number n (1-based) when n % this == 0 (0: answer all).
    pub silent_every: u64,
    /// Answer these destinations with this error status.
    pub reject: Vec<(String, CommandStatus)>,
    /// Delay before each answer.
    pub answer_delay: Duration,
    /// Receipt state per destination (default Delivered).
    pub receipt_state: Vec<(String, MessageState)>,
}

/// What the test SMSC saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// submit_sm per destination address.
    pub per_dest: HashMap<String, u32>,
    /// Arrival instants of every submit_sm.
    pub times: Vec<Instant>,
    /// Distinct short_message contents.
    pub texts: HashSet<Vec<u8>>,
}

pub struct Smsc {
    behaviour: Behaviour,
    next_id: AtomicU64,
    pub seen: Mutex<Seen>,
    handle: OnceLock<ServerHandle>,
}

#[derive(Clone)]
struct Shared(Arc<Smsc>);

impl Handler<Connection> for Shared {
    async fn bind(&self, _: &Connection, _: BindKind, bind: &Bind) -> Result<(), CommandStatus> {
        if bind.system_id == "smppclient1" && bind.password == "password" {
            Ok(())
        } else {
            Err(CommandStatus::INVALID_PASSWORD)
        }
    }

    async fn submit_sm(
        &self,
        conn: &Connection,
        sm: SubmitSm,
    ) -> Result<SubmitSmResp, CommandStatus> {
        let smsc = &self.0;
        let dest = sm.destination_addr.to_string_lossy().into_owned();
        let n = {
            let mut seen = smsc.seen.lock().unwrap();
            *seen.per_dest.entry(dest.clone()).or_default() += 1;
            seen.times.push(Instant::now());
            seen.texts.insert(sm.short_message.to_vec());
            seen.times.len() as u64
        };
        let b = &smsc.behaviour;
        if !b.answer_delay.is_zero() {
            tokio::time::sleep(b.answer_delay).await;
        }
        if b.silent_every > 0 && n % b.silent_every == 0 {
            std::future::pending::<()>().await;
        }
        if let Some((_, status)) = b.reject.iter().find(|(d, _)| *d == dest) {
            return Err(*status);
        }
        let id = format!(
            "{:08X}",
            smsc.next_id.fetch_add(1, Ordering::Relaxed) + 0xA0000
        );
        if sm.registered_delivery().wants_receipt_for(true) {
            let state = b
                .receipt_state
                .iter()
                .find(|(d, _)| *d == dest)
                .map_or(MessageState::Delivered, |(_, s)| *s);
            let receipt = DeliveryReceipt::new(id.clone(), state);
            let mut deliver = SubmitSm {
                source_addr: sm.destination_addr.clone(),
                destination_addr: sm.source_addr.clone(),
                esm_class: 0x04,
                short_message: receipt.to_text().into_bytes().into(),
                ..Default::default()
            };
            deliver
                .tlvs
                .set_text(TlvTag::RECEIPTED_MESSAGE_ID, id.as_bytes())
                .unwrap();
            deliver.tlvs.set_u8(TlvTag::MESSAGE_STATE, state as u8);
            // A transmitter cannot take it: a receiver of the same account can.
            let conn = match conn.bind_kind() {
                Some(BindKind::Transmitter) => conn
                    .system_id()
                    .and_then(|id| smsc.handle.get()?.receiver(id)),
                _ => Some(conn.clone()),
            };
            let Some(conn) = conn else {
                return Ok(SubmitSmResp {
                    message_id: id.into(),
                    ..Default::default()
                });
            };
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                let _ = conn.deliver(deliver).await;
            });
        }
        Ok(SubmitSmResp {
            message_id: id.into(),
            ..Default::default()
        })
    }
}

/// A running test SMSC; stops when dropped.
pub struct TestSmsc {
    pub addr: SocketAddr,
    pub smsc: Arc<Smsc>,
    handle: ServerHandle,
    rt: tokio::runtime::Runtime,
    /// Where the campaigns run against it are recorded (not in the user's
    /// data directory); removed with it.
    campaigns: tempfile::TempDir,
}

impl TestSmsc {
    pub fn start(behaviour: Behaviour) -> TestSmsc {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let smsc = Arc::new(Smsc {
            behaviour,
            next_id: AtomicU64::new(1),
            seen: Mutex::new(Seen::default()),
            handle: OnceLock::new(),
        });
        let session = SessionConfig::default()
            .with_max_in_flight(256)
            .with_max_inbound(4096);
        let config = ServerConfig::default().with_session(session);
        let server = rt
            .block_on(Server::bind("127.0.0.1:0", Shared(smsc.clone()), config))
            .unwrap();
        let addr = server.local_addr().unwrap();
        let handle = server.handle();
        let _ = smsc.handle.set(handle.clone());
        rt.spawn(server.run());
        TestSmsc {
            addr,
            smsc,
            handle,
            rt,
            campaigns: tempfile::tempdir().unwrap(),
        }
    }

    /// submit_sm seen in all.
    pub fn total(&self) -> usize {
        self.smsc.seen.lock().unwrap().times.len()
    }

    /// submit_sm seen per destination.
    pub fn per_dest(&self) -> HashMap<String, u32> {
        self.smsc.seen.lock().unwrap().per_dest.clone()
    }

    /// Distinct texts seen.
    pub fn distinct_texts(&self) -> usize {
        self.smsc.seen.lock().unwrap().texts.len()
    }

    /// Arrival instants.
    pub fn times(&self) -> Vec<Instant> {
        self.smsc.seen.lock().unwrap().times.clone()
    }

    /// The `smpp` command with `sub` and the connect arguments for this SMSC.
    pub fn smpp(&self, sub: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smpp"));
        cmd.arg(sub)
            .args(["--host", "127.0.0.1", "--port"])
            .arg(self.addr.port().to_string())
            .env("SMPP_CAMPAIGNS_DIR", self.campaigns.path());
        cmd
    }
}

impl Drop for TestSmsc {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Runs a command with a time limit; panics if it hangs.
pub fn run_limited(cmd: &mut Command, limit: Duration) -> Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "command hung for {limit:?}: {:?}\nstdout: {}\nstderr: {}",
                cmd,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The JSON object on stdout.
pub fn json(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
