//! The `rusmppc` client (0.4.0), an independent SMPP v5 client.
//!
//! Known defect worked around here: its connection task stops after a
//! 5-iteration poll budget without waking itself, so with more than ~5
//! requests in flight it stalls until something else wakes it. With
//! `--poll-us U` a side task wakes the connection every U µs (a cheap
//! `pending_responses` request that goes through the connection task);
//! otherwise the window is used as given (keep it <= 5 to avoid the stall).

use std::str::FromStr as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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

/// Binds `sessions` transceivers, keeps `window` submits in flight on each.
pub(crate) async fn client(load: Load, poll_us: u64) -> Result<(), String> {
    let sm = submit()?;
    let mut clients = Vec::new();
    for _ in 0..load.sessions {
        let (client, mut events) = ConnectionBuilder::new()
            .no_enquire_link_interval()
            .response_timeout(Duration::from_secs(10))
            // It refuses a 3.4 peer otherwise.
            .disable_interface_version_check()
            .connect(format!("smpp://{}", load.addr()))
            .await
            .map_err(|e| format!("rusmppc connect: {e}"))?;
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
    let mut pollers = Vec::new();
    for client in &clients {
        if poll_us > 0 {
            let client = client.clone();
            pollers.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_micros(poll_us));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tick.tick().await;
                    let _ = client.pending_responses().await;
                }
            }));
        }
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
    for p in pollers {
        p.abort();
    }
    outcome.print();
    for c in &clients {
        let _ = tokio::time::timeout(Duration::from_secs(2), c.unbind()).await;
        let _ = c.close().await;
    }
    Ok(())
}
