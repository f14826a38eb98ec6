//! The `rusmppc` client (0.4.0), an independent SMPP v5 client.
//!
//! Known defect worked around here: its connection future takes at most 5
//! queued actions (requests) per poll and then returns `Pending` without
//! waking itself, and the channel does not wake it either (its waker was not
//! registered: the last poll of the channel was `Ready`). With more than ~5
//! requests queued it stalls until a response or a timer wakes it (in
//! practice: the 10 s response timeouts).
//!
//! `--repoll N` (N > 1): we spawn its connection future ourselves
//! (`ConnectionBuilder::no_spawn`) inside a wrapper that polls it up to N
//! times per wake-up, so each wake-up takes up to 5·N actions. Polling a
//! future again after `Pending` is always allowed; extra polls of an idle
//! connection return `Pending` at once. `--repoll 1` is rusmppc as shipped
//! (keep the window <= 5 then).

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use rusmpp::pdus::{BindTransceiver, SubmitSm};
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{EsmClass, Npi, ServiceType, Ton};
use rusmppc::ConnectionBuilder;

use crate::{text, Load, Outcome, DEST, SOURCE};

fn submit() -> Result<SubmitSm, String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    Ok(SubmitSm::builder()
        .service_type(ServiceType::default())
        .source_addr_ton(Ton::International)
        .source_addr_npi(Npi::Isdn)
        .source_addr(COctetString::from_str(SOURCE).map_err(|x| e(&x))?)
        .dest_addr_ton(Ton::International)
        .dest_addr_npi(Npi::Isdn)
        .destination_addr(COctetString::from_str(DEST).map_err(|x| e(&x))?)
        // Not EsmClass::default(): in 0.4.0 it encodes as 0x08.
        .esm_class(EsmClass::from(0u8))
        .short_message(OctetString::from_vec(text()).map_err(|x| e(&x))?)
        .build())
}

/// Polls the inner future up to `times` times per wake-up (see the module docs).
struct Repoll<F> {
    inner: Pin<Box<F>>,
    times: usize,
}

impl<F: Future<Output = ()>> Future for Repoll<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        for _ in 0..self.times.max(1) {
            if self.inner.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }
}

/// Binds `sessions` transceivers, keeps `window` submits in flight on each.
pub(crate) async fn client(load: Load, repoll: usize) -> Result<(), String> {
    let sm = submit()?;
    let mut clients = Vec::new();
    for _ in 0..load.sessions {
        let (client, mut events, connection) = ConnectionBuilder::new()
            .no_enquire_link_interval()
            .response_timeout(Duration::from_secs(10))
            // It refuses a 3.4 peer otherwise.
            .disable_interface_version_check()
            .no_spawn()
            .connect(format!("smpp://{}", load.addr()))
            .await
            .map_err(|e| format!("rusmppc connect: {e}"))?;
        tokio::spawn(Repoll {
            inner: Box::pin(connection),
            times: repoll,
        });
        tokio::spawn(async move { while events.next().await.is_some() {} });
        client
            .bind_transceiver(
                BindTransceiver::builder()
                    .system_id(COctetString::from_str(&load.system_id).map_err(|e| e.to_string())?)
                    .password(COctetString::from_str(&load.password).map_err(|e| e.to_string())?)
                    .system_type(COctetString::empty())
                    .addr_ton(Ton::Unknown)
                    .addr_npi(Npi::Unknown)
                    .address_range(COctetString::empty())
                    .build(),
            )
            .await
            .map_err(|e| format!("rusmppc bind: {e}"))?;
        clients.push(client);
    }
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let stop = start + load.duration;
    let mut tasks = Vec::new();
    for client in &clients {
        for _ in 0..load.window {
            let (client, ok, failed, sm) = (client.clone(), ok.clone(), failed.clone(), sm.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < stop {
                    match client.submit_sm(sm.clone()).await {
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
    for c in &clients {
        let _ = tokio::time::timeout(Duration::from_secs(2), c.unbind()).await;
        let _ = c.close().await;
    }
    Ok(())
}
