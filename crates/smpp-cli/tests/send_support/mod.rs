//! An in-process SMSC for the `smpp send` / `smpp listen` tests: a real
//! `smpp_tokio::Server` on 127.0.0.1:0 with a small handler.
//!
//! Outcomes by destination: `...1` receipt DELIVRD, `...2` receipt UNDELIV, `...3` no
//! receipt at all, `...4` submit refused with ESME_RTHROTTLED, `...5` an ENROUTE receipt
//! then DELIVRD, `...7` a DELIVRD receipt sent (and answered) before the submit_sm_resp. Message ids are 8 hex digits; the receipt text gives them in decimal
//! (no TLVs), so matching them needs the id normalisation. `...6`: the message is
//! routed, as it is, as a mobile-originated deliver_sm to the receiver bound as
//! `smppclient1` (ESME to ESME).

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use smpp_proto::message::{DeliveryReceipt, MessageState};
use smpp_proto::pdu::{
    Bind, CommandStatus, DataSm, DataSmResp, DeliverSm, SubmitMulti, SubmitMultiResp, SubmitSm,
    SubmitSmResp,
};
use smpp_proto::session::BindKind;
use smpp_tokio::{Answer, Connection, Handler, Server, ServerConfig, ServerHandle};

pub struct Smsc {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    pub submitted: Arc<Mutex<Vec<SubmitSm>>>,
    /// submit_multi requests, as received.
    pub multi: Arc<Mutex<Vec<SubmitMulti>>>,
    /// The interface_version of every bind.
    pub versions: Arc<Mutex<Vec<u8>>>,
    /// data_sm requests, as received.
    pub data: Arc<Mutex<Vec<DataSm>>>,
}

struct Fake {
    handle: Arc<OnceLock<ServerHandle>>,
    next_id: AtomicU32,
    submitted: Arc<Mutex<Vec<SubmitSm>>>,
    multi: Arc<Mutex<Vec<SubmitMulti>>>,
    versions: Arc<Mutex<Vec<u8>>>,
    data: Arc<Mutex<Vec<DataSm>>>,
}

impl Handler<Connection> for Fake {
    async fn bind(&self, _: &Connection, _: BindKind, bind: &Bind) -> Result<(), CommandStatus> {
        if bind.system_id != "smppclient1" {
            return Err(CommandStatus::INVALID_SYSTEM_ID);
        }
        if bind.password != "password" {
            return Err(CommandStatus::INVALID_PASSWORD);
        }
        self.versions.lock().unwrap().push(bind.interface_version);
        Ok(())
    }

    fn data_sm(&self, _: &Connection, sm: DataSm) -> impl Answer<DataSmResp> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.data.lock().unwrap().push(sm);
        async move {
            Ok::<_, CommandStatus>(DataSmResp {
                message_id: smpp_proto::pdu::COctetString::copy_from_str(&format!("{n:08X}")),
                ..Default::default()
            })
        }
    }

    fn submit_multi(&self, _: &Connection, sm: SubmitMulti) -> impl Answer<SubmitMultiResp> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.multi.lock().unwrap().push(sm);
        async move {
            Ok::<_, CommandStatus>(SubmitMultiResp {
                message_id: smpp_proto::pdu::COctetString::copy_from_str(&format!("{n:08X}")),
                ..Default::default()
            })
        }
    }

    fn submit_sm(&self, conn: &Connection, sm: SubmitSm) -> impl Answer<SubmitSmResp> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = conn.clone();
        let handle = self.handle.clone();
        let submitted = self.submitted.clone();
        async move {
            let outcome = sm
                .destination_addr
                .as_bytes()
                .last()
                .copied()
                .unwrap_or(b'1');
            if outcome == b'4' {
                return Err(CommandStatus::THROTTLED);
            }
            if outcome == b'6' {
                let receiver = handle.get().and_then(|h| h.receiver("smppclient1"));
                let Some(receiver) = receiver else {
                    return Err(CommandStatus::INVALID_DESTINATION_ADDRESS);
                };
                let mo = sm.clone();
                tokio::spawn(async move {
                    let _ = receiver.deliver(mo).await;
                });
            }
            let id = format!("{n:08X}");
            let wants_receipt = sm.registered_delivery().wants_receipt_for(true);
            let source = sm.source_addr.clone();
            let destination = sm.destination_addr.clone();
            submitted.lock().unwrap().push(sm);
            if outcome == b'7' && wants_receipt {
                // The receipt before the response (SMSCs that are fast, or reorder).
                let text = DeliveryReceipt::new(n.to_string(), MessageState::Delivered).to_text();
                let receipt = DeliverSm {
                    source_addr: destination.clone(),
                    destination_addr: source.clone(),
                    esm_class: 0x04,
                    short_message: text.into_bytes().into(),
                    ..Default::default()
                };
                conn.deliver(receipt)
                    .await
                    .map_err(|_| CommandStatus::SYSTEM_ERROR)?;
                return Ok(SubmitSmResp {
                    message_id: smpp_proto::pdu::COctetString::copy_from_str(&id),
                    ..Default::default()
                });
            }
            let states: &[MessageState] = match outcome {
                b'2' => &[MessageState::Undeliverable],
                b'3' => &[],
                b'5' => &[MessageState::Enroute, MessageState::Delivered],
                _ => &[MessageState::Delivered],
            };
            if wants_receipt && !states.is_empty() {
                let states = states.to_vec();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    for state in states {
                        let text = DeliveryReceipt::new(n.to_string(), state).to_text();
                        let receipt = DeliverSm {
                            source_addr: destination.clone(),
                            destination_addr: source.clone(),
                            esm_class: 0x04,
                            short_message: text.into_bytes().into(),
                            ..Default::default()
                        };
                        let _ = conn.deliver(receipt).await;
                    }
                });
            }
            Ok(SubmitSmResp {
                message_id: smpp_proto::pdu::COctetString::copy_from_str(&id),
                ..Default::default()
            })
        }
    }
}

pub async fn start() -> Smsc {
    start_with(None).await
}

/// The SMSC over TLS with `tls` (see [`self_signed`]).
pub async fn start_tls(tls: Arc<smpp_tokio::rustls::ServerConfig>) -> Smsc {
    start_with(Some(tls)).await
}

/// A server configuration with a self-signed certificate for `localhost`, and that
/// certificate in PEM.
pub fn self_signed() -> (Arc<smpp_tokio::rustls::ServerConfig>, String) {
    use smpp_tokio::rustls;
    use smpp_tokio::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let cert: CertificateDer<'static> = made.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .expect("server config");
    (Arc::new(config), made.cert.pem())
}

async fn start_with(tls: Option<Arc<smpp_tokio::rustls::ServerConfig>>) -> Smsc {
    let submitted = Arc::new(Mutex::new(Vec::new()));
    let multi = Arc::new(Mutex::new(Vec::new()));
    let versions = Arc::new(Mutex::new(Vec::new()));
    let data = Arc::new(Mutex::new(Vec::new()));
    let handle_cell = Arc::new(OnceLock::new());
    let handler = Fake {
        handle: handle_cell.clone(),
        next_id: AtomicU32::new(0xA1B0),
        submitted: submitted.clone(),
        multi: multi.clone(),
        versions: versions.clone(),
        data: data.clone(),
    };
    let server = Server::bind("127.0.0.1:0", handler, ServerConfig::default())
        .await
        .expect("bind");
    let addr = server.local_addr().expect("addr");
    let handle = server.handle();
    let _ = handle_cell.set(handle.clone());
    match tls {
        Some(tls) => drop(tokio::spawn(server.run_tls(tls))),
        None => drop(tokio::spawn(server.run())),
    }
    Smsc {
        addr,
        handle,
        submitted,
        multi,
        versions,
        data,
    }
}

/// Runs the `smpp` binary with `args`, at most 30 s.
pub async fn smpp(args: &[&str]) -> Output {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_smpp"))
        .args(args)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("smpp did not finish in 30 s")
        .expect("run smpp")
}

pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
