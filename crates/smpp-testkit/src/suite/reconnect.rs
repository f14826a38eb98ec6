//! A reconnecting client: comes back after its session dies or its server
//! restarts, fails with `NotConnected` when nobody is there, never resends.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use smpp_async::{Backoff, Error, ServerConfig};
use smpp_proto::session::{BindKind, SessionConfig};

use super::{start, submit, to, LIMIT};
use crate::adapter::{
    sleep, timeout, Adapter, ConnOps, Connector, InboundOps, ReconnectingOps, ServerOps, Serving,
};
use crate::raw::free_addr;
use crate::Smsc;

/// Binding as a transceiver with a 1 s response timeout.
fn connector(addr: SocketAddr) -> Connector {
    let config = SessionConfig::default().with_response_timeout(Duration::from_secs(1));
    to(addr, BindKind::Transceiver, config)
}

async fn start_at<A: Adapter>(addr: SocketAddr, smsc: &Smsc) -> Serving<A> {
    A::serve(addr, smsc.clone(), ServerConfig::default(), None).await
}

/// Not async-specific: runs with the others for every adapter.
pub async fn backoff_grows_to_its_cap_with_jitter<A: Adapter>() {
    let exact =
        Backoff::new(Duration::from_millis(10), Duration::from_millis(100)).with_jitter(0.0);
    let delays: Vec<_> = (0..6).map(|a| exact.delay(a).as_millis()).collect();
    assert_eq!(delays, [10, 20, 40, 80, 100, 100]);
    assert_eq!(exact.delay(u32::MAX), Duration::from_millis(100));

    let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1)).with_jitter(0.5);
    for _ in 0..100 {
        let first = backoff.delay(0);
        assert!(
            first >= Duration::from_millis(50) && first <= Duration::from_millis(100),
            "{first:?}"
        );
        let capped = backoff.delay(40);
        assert!(
            capped >= Duration::from_millis(500) && capped <= Duration::from_secs(1),
            "{capped:?}"
        );
    }
    let delays: std::collections::HashSet<_> = (0..20).map(|_| backoff.delay(3)).collect();
    assert!(delays.len() > 1, "jittered");
}

pub async fn comes_back_after_the_connection_dies<A: Adapter>() {
    let smsc = start::<A>(Smsc::default(), SessionConfig::default()).await;
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
    let connector = to(smsc.addr, BindKind::Transceiver, SessionConfig::default());
    let (client, inbound) = A::reconnecting(connector, backoff, LIMIT);
    client.submit(submit("before", false)).await.unwrap();
    let first = smsc.server.connections().pop().unwrap();
    first.close(); // the MC drops us without unbinding
    timeout(LIMIT, first.closed()).await.unwrap();
    sleep(Duration::from_millis(20)).await;
    client
        .submit(submit("after", true))
        .await
        .expect("reconnected");
    let ids: Vec<u64> = smsc.server.connections().iter().map(|c| c.id()).collect();
    assert_eq!(ids.len(), 1);
    assert_ne!(ids[0], first.id());
    // Receipts of the new session arrive on the same Inbound.
    let receipt = inbound.recv(LIMIT).await.unwrap().unwrap();
    assert!(receipt.receipt().is_some());
    client.close().await;
    assert!(timeout(LIMIT, first.closed()).await.is_some());
}

pub async fn reconnects_after_the_server_restarts_on_the_same_port<A: Adapter>() {
    let addr = free_addr();
    let smsc = Smsc::default();
    let running = start_at::<A>(addr, &smsc).await;
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
    let (client, _inbound) = A::reconnecting(connector(addr), backoff, LIMIT);
    for i in 0..3 {
        let text = format!("before {i}");
        client.submit(submit(&text, false)).await.expect("bound");
    }
    assert!(client.is_connected());

    running.server.shutdown(); // unbinds us, then stops listening
    timeout(LIMIT, running.task.join())
        .await
        .expect("server stopped")
        .unwrap();
    let started = Instant::now();
    while client.is_connected() {
        assert!(started.elapsed() < LIMIT, "noticed the unbind");
        sleep(Duration::from_millis(5)).await;
    }
    // While down, a short wait fails with NotConnected.
    let (down, _) = A::reconnecting(
        connector(addr),
        Backoff::new(Duration::from_millis(10), Duration::from_millis(50)),
        Duration::from_millis(100),
    );
    let refused = down.submit(submit("down", false)).await;
    assert!(matches!(refused, Err(Error::NotConnected)), "{refused:?}");
    drop(down);

    // A call made while down succeeds once the server is back within `wait`.
    let waiting = client.submit(submit("while down", false));
    let restart = async {
        sleep(Duration::from_millis(100)).await;
        start_at::<A>(addr, &smsc).await
    };
    let (waited, running) = futures_lite::future::zip(timeout(LIMIT, waiting), restart).await;
    waited.unwrap().expect("reconnected within wait");
    for i in 0..3 {
        let text = format!("after {i}");
        client.submit(submit(&text, false)).await.expect("rebound");
    }
    assert_eq!(smsc.next_id.load(Ordering::SeqCst), 7);

    client.close().await;
    assert!(!client.is_connected());
    let closed = client.submit(submit("closed", false)).await;
    assert!(matches!(closed, Err(Error::NotConnected)), "{closed:?}");
    running.server.shutdown();
    timeout(LIMIT, running.task.join())
        .await
        .expect("server stopped")
        .unwrap();
}

pub async fn without_a_server_calls_are_not_connected_after_wait<A: Adapter>() {
    let addr = free_addr();
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(50));
    let wait = Duration::from_millis(200);
    let (client, _inbound) = A::reconnecting(connector(addr), backoff, wait);
    let started = Instant::now();
    let refused = client.submit(submit("x", false)).await;
    assert!(matches!(refused, Err(Error::NotConnected)), "{refused:?}");
    let took = started.elapsed();
    assert!(took >= wait && took < LIMIT, "{took:?}");
    assert!(!client.is_connected());
}

pub async fn a_request_in_flight_when_the_connection_dies_is_not_resent<A: Adapter>() {
    let addr = free_addr();
    let smsc = Smsc::default();
    let running = start_at::<A>(addr, &smsc).await;
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
    let (client, _inbound) = A::reconnecting(connector(addr), backoff, LIMIT);
    client.submit(submit("first", false)).await.expect("bound");
    let lost = client.submit(submit("drop", false)).await;
    assert!(lost.is_err(), "{lost:?}");
    assert!(!matches!(lost, Err(Error::NotConnected)), "{lost:?}");
    // A call made before the client notices the death may still land on the
    // dead session and fail with Closed (nothing reaches the MC): retry it.
    let started = Instant::now();
    loop {
        match client.submit(submit("next", false)).await {
            Ok(_) => break,
            Err(Error::Closed) if started.elapsed() < LIMIT => {
                sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("reconnected: {e}"),
        }
    }
    // "drop" reached the MC once, and only once.
    assert_eq!(smsc.next_id.load(Ordering::SeqCst), 3);
    client.close().await;
    running.server.shutdown();
    timeout(LIMIT, running.task.join())
        .await
        .expect("server stopped")
        .unwrap();
}
