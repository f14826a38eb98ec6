//! The `smpp34` crate (1.5.1): its own server and its own client, driven the
//! way its `perf_loopback` example drives them (one task per window slot).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use smpp34::client::{SmppClient, SmppClientListener, BIND_TYPE, SMSC};
use smpp34::{
    bind_transceiver, bind_transceiver_resp, bind_transmitter, bind_transmitter_resp, submit_sm,
    submit_sm_resp, SmppConnectionInformation, SmppServer, SmppServerListener,
};
use tokio::sync::{oneshot, Mutex};

use crate::{listening, text, until_stdin_closes, Load, Outcome, DEST, SOURCE};

struct Accept {
    next: AtomicU64,
}

#[async_trait]
impl SmppServerListener for Accept {
    async fn on_bind_transceiver(
        &self,
        req: bind_transceiver,
        _: &SmppConnectionInformation,
        _: &String,
    ) -> bind_transceiver_resp {
        req.accept("SMPP34".to_string(), Some(0x34))
    }

    async fn on_bind_transmitter(
        &self,
        req: bind_transmitter,
        _: &SmppConnectionInformation,
        _: &String,
    ) -> bind_transmitter_resp {
        req.accept("SMPP34".to_string(), Some(0x34))
    }

    async fn on_submit_sm(
        &self,
        req: submit_sm,
        _: &SmppConnectionInformation,
        _: &String,
    ) -> submit_sm_resp {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        req.accept(format!("{:08X}", id & 0xFFFF_FFFF))
    }
}

/// Serves until stdin closes.
pub(crate) async fn serve(listen: &str) -> Result<(), String> {
    let wanted: SocketAddr = listen
        .parse()
        .map_err(|e| format!("--listen {listen}: {e}"))?;
    // SmppServer takes a port, not a listener: find a free one first.
    let port = match wanted.port() {
        0 => std::net::TcpListener::bind(wanted)
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port(),
        p => p,
    };
    let ip: IpAddr = wanted.ip();
    let handler = Arc::new(Accept {
        next: AtomicU64::new(1),
    });
    let mut server = SmppServer::new(ip, port, handler);
    server.start().await;
    listening(SocketAddr::new(ip, port));
    until_stdin_closes().await;
    server.stop().await;
    Ok(())
}

struct Binder {
    tx: Mutex<Option<oneshot::Sender<Arc<SMSC>>>>,
}

#[async_trait]
impl SmppClientListener for Binder {
    async fn on_smsc_bound(&self, smsc: SMSC, _: &String) {
        if let Some(tx) = self.tx.lock().await.take() {
            let _ = tx.send(Arc::new(smsc));
        }
    }
}

/// Binds `sessions` transceivers, keeps `window` submits in flight on each.
pub(crate) async fn client(load: Load) -> Result<(), String> {
    let mut smscs = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..load.sessions {
        let (tx, rx) = oneshot::channel();
        let binder = Arc::new(Binder {
            tx: Mutex::new(Some(tx)),
        });
        let mut client = SmppClient::new(
            load.host.clone(),
            load.port,
            false,
            BIND_TYPE::TRX,
            load.system_id.clone(),
            load.password.clone(),
            String::new(),
            1,
            1,
            String::new(),
            binder,
            load.window,
        );
        client.start().await;
        let smsc = tokio::time::timeout(std::time::Duration::from_secs(10), rx)
            .await
            .map_err(|_| "smpp34 client: bind timed out".to_string())?
            .map_err(|_| "smpp34 client: not bound".to_string())?;
        smscs.push(smsc);
        clients.push(client);
    }
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let stop = start + load.duration;
    let mut tasks = Vec::new();
    for smsc in &smscs {
        for _ in 0..load.window {
            let (smsc, ok, failed) = (smsc.clone(), ok.clone(), failed.clone());
            let text = text();
            tasks.push(tokio::spawn(async move {
                while Instant::now() < stop {
                    let sent = smsc
                        .submit_sm()
                        .source_addr_ton(1)
                        .source_addr_npi(1)
                        .source_addr(SOURCE)
                        .dest_addr_ton(1)
                        .dest_addr_npi(1)
                        .destination_addr(DEST)
                        .short_message(text.clone())
                        .send()
                        .await;
                    match sent {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let outcome = Outcome {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    };
    outcome.print();
    for mut c in clients {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), c.stop()).await;
    }
    Ok(())
}
