//! What the gateway's test files share: upstream simulators, a config
//! builder, waiting helpers.
#![allow(dead_code)] // each test file uses its own part

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use smpp_gateway::{GatewayConfig, RunningGateway, StoreConfig};
use smpp_proto::message::receipt::MessageState;
use smpp_proto::pdu::{CommandId, CommandStatus};
use smpp_server::{Observer, RequestEvent, RunningServer, ServeConfig};

pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Counts the `submit_sm`s an upstream accepted.
#[derive(Debug, Default)]
pub(crate) struct Submits(pub AtomicUsize);

impl Observer for Submits {
    fn request(&self, event: &RequestEvent<'_>) {
        if event.command == CommandId::SUBMIT_SM && event.status == CommandStatus::OK {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub(crate) struct Upstream {
    pub(crate) server: RunningServer,
    pub(crate) submits: Arc<Submits>,
}

impl Upstream {
    pub(crate) fn count(&self) -> usize {
        self.submits.0.load(Ordering::Relaxed)
    }
}

/// An `smpp serve` simulator (memory store, account smppclient1/password)
/// whose receipts all say `state`, after `delay`.
pub(crate) async fn upstream(state: MessageState, delay: Duration, listen: &str) -> Upstream {
    let mut config = ServeConfig::for_tests();
    config.listen = listen.into();
    config.outcomes = vec![(state, 1)];
    config.dlr_delay = delay;
    let submits = Arc::new(Submits::default());
    let server = smpp_server::start_with(config, submits.clone())
        .await
        .unwrap();
    Upstream { server, submits }
}

/// A port nothing listens on (taken, then let go).
pub(crate) fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

pub(crate) fn config(
    store: StoreConfig,
    upstreams: &[(&str, SocketAddr)],
    routes: &[&str],
) -> GatewayConfig {
    let mut config = GatewayConfig {
        listen: "127.0.0.1:0".into(),
        store,
        ..GatewayConfig::default()
    };
    config.accounts = vec!["esme:secret".parse().unwrap()];
    config.upstreams = upstreams
        .iter()
        .map(|(name, addr)| {
            format!("{name}=smppclient1:password@{addr}")
                .parse()
                .unwrap()
        })
        .collect();
    config.routes = routes.iter().map(|r| r.parse().unwrap()).collect();
    config
}

pub(crate) async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn wait_bound(gateway: &RunningGateway, name: &str) {
    wait_for(&format!("upstream {name} bound"), || {
        gateway.upstream_binds(name).unwrap_or(0) > 0
    })
    .await;
}
