//! SMPP 5.0 `congestion_state` over the wire: a slow server's responses
//! make our client shrink its window before the server throttles; a fast
//! server's let it use the whole configured window. The same client bound
//! as 3.4 (no congestion_state) overruns the slow server: the test can fail.

use std::time::Duration;

use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm, SubmitSmResp};
use smpp_proto::session::{BindKind, InboundOverflow, SessionConfig, Stats};
use smpp_tokio::{Client, Connection, Error, Handler, Server, ServerConfig};

/// An SMSC that answers every submit_sm after `delay` (requests of one
/// connection are handled concurrently, up to its inbound window).
struct Delayed {
    delay: Duration,
}

impl Handler<Connection> for Delayed {
    async fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
        Ok(())
    }

    async fn submit_sm(&self, _: &Connection, _: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        Ok(SubmitSmResp {
            message_id: "1".into(),
            ..Default::default()
        })
    }
}

async fn server(delay: Duration, max_inbound: usize) -> std::net::SocketAddr {
    let session = SessionConfig::default()
        .with_max_inbound(max_inbound)
        .with_inbound_overflow(InboundOverflow::Throttle);
    let config = ServerConfig::default().with_session(session);
    let server = Server::bind("127.0.0.1:0", Delayed { delay }, config)
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run());
    addr
}

/// Binds with `version` and a window of 64, sends `n` submits at once;
/// returns how many were answered ESME_RTHROTTLED, and the final stats.
async fn run(addr: std::net::SocketAddr, version: u8, n: usize) -> (usize, Stats) {
    let bind = Bind {
        system_id: "esme".into(),
        password: "pw".into(),
        interface_version: version,
        ..Default::default()
    };
    let config = SessionConfig::default()
        .with_max_in_flight(64)
        .with_response_timeout(Duration::from_secs(20));
    let (client, _inbound) = Client::connect(addr, BindKind::Transmitter, bind, config)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let sm = SubmitSm {
                    source_addr: "447700900123".into(),
                    destination_addr: format!("4477009{i:05}").into(),
                    short_message: "congestion".into(),
                    ..Default::default()
                };
                client.submit(sm).await
            })
        })
        .collect();
    let mut throttled = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => {}
            Err(Error::Status(CommandStatus::THROTTLED)) => throttled += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    let stats = client.stats().await.unwrap();
    client.unbind().await.unwrap();
    (throttled, stats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_slows_a_5_0_client_down_before_any_throttling() {
    let addr = server(Duration::from_millis(5), 16).await;

    let (throttled, stats) = run(addr, 0x50, 300).await;
    assert_eq!(throttled, 0, "no ESME_RTHROTTLED: {stats:?}");
    assert!(stats.congestion_states_received >= 300, "{stats:?}");
    assert!(stats.peer_congestion.is_some());
    assert!(
        stats.max_in_flight <= 16,
        "the window came down to what the server takes: {}",
        stats.max_in_flight
    );
    assert_eq!(stats.configured_in_flight, 64);

    // The same client without congestion_state (3.4) overruns the server.
    let (throttled, stats) = run(addr, 0x34, 300).await;
    assert!(throttled > 0, "a 3.4 client is throttled: {stats:?}");
    assert_eq!(stats.peer_congestion, None);
    assert_eq!(stats.max_in_flight, 64, "3.4: the configured window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_server_lets_a_5_0_client_use_its_whole_window() {
    let addr = server(Duration::ZERO, 256).await;
    let (throttled, stats) = run(addr, 0x50, 2000).await;
    assert_eq!(throttled, 0);
    assert!(stats.congestion_states_received >= 2000, "{stats:?}");
    assert!(
        stats.peer_congestion_max.is_some_and(|c| c < 80),
        "{stats:?}"
    );
    assert_eq!(stats.max_in_flight, 64, "no slowdown: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_of_5_0_clients_backs_off_member_by_member() {
    let addr = server(Duration::from_millis(5), 16).await;
    let connect = move || async move {
        let bind = Bind {
            system_id: "esme".into(),
            password: "pw".into(),
            interface_version: 0x50,
            ..Default::default()
        };
        let config = SessionConfig::default()
            .with_max_in_flight(64)
            .with_response_timeout(Duration::from_secs(20));
        Client::connect(addr, BindKind::Transmitter, bind, config).await
    };
    let (pool, _inbound) = smpp_tokio::Pool::new(
        2,
        connect,
        smpp_tokio::Backoff::default(),
        Duration::from_secs(10),
    );
    let pool = std::sync::Arc::new(pool);
    // Both members bound before the load: each must carry some of it (a
    // member that bound late could see none, and report no value).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while pool.bound() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "both members bind");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let tasks: Vec<_> = (0..300)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let sm = SubmitSm {
                    source_addr: "447700900123".into(),
                    destination_addr: "447700900456".into(),
                    short_message: "pool".into(),
                    ..Default::default()
                };
                pool.submit(sm).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("accepted");
    }
    let values = pool.peer_congestion().await;
    assert_eq!(values.len(), 2);
    assert!(values.iter().all(Option::is_some), "{values:?}");
    // No member was ever answered ESME_RTHROTTLED (the pool would have
    // retried it elsewhere, so look at the members' own counters).
    for _ in 0..2 {
        let client = pool.client().await.unwrap();
        let stats = client.stats().await.unwrap();
        assert_eq!(
            stats.received_status(CommandStatus::THROTTLED),
            0,
            "{stats:?}"
        );
        assert!(stats.max_in_flight <= 16, "{stats:?}");
    }
}
