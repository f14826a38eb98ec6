//! The gateway over the wire: a customer `Client` binds to the gateway,
//! upstreams are in-process `smpp serve` simulators (memory store) or a
//! scripted SMSC; everything on 127.0.0.1, port 0.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use smpp_gateway::{parse_id, start, start_with_store, GatewayConfig, RunningGateway, StoreConfig};
use smpp_proto::message::receipt::{DeliveryReceipt, MessageState};
use smpp_proto::pdu::{
    Bind, Body, CommandStatus, DataSm, EsmClass, QuerySm, QuerySmResp, SubmitSm, SubmitSmResp,
    TlvTag, Tlvs,
};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_server::ServeConfig;
use smpp_tokio::{Client, Connection, Handler, Inbound, Server, ServerConfig};

mod support;
use support::*;

async fn customer(gateway: &RunningGateway, kind: BindKind) -> (Client, Inbound) {
    customer_version(gateway, kind, 0x34).await
}

async fn customer_version(
    gateway: &RunningGateway,
    kind: BindKind,
    interface_version: u8,
) -> (Client, Inbound) {
    let bind = Bind {
        system_id: "esme".into(),
        password: "secret".into(),
        interface_version,
        ..Default::default()
    };
    Client::connect(gateway.smpp_addr(), kind, bind, SessionConfig::default())
        .await
        .unwrap()
}

fn message(destination: &str) -> SubmitSm {
    SubmitSm {
        source_addr: "12345".into(),
        destination_addr: destination.to_owned().into(),
        short_message: "hello".into(),
        registered_delivery: 1,
        ..Default::default()
    }
}

/// The next receipt on `inbound`, checked to carry `id` in its text and
/// in `receipted_message_id`.
async fn receipt_for(inbound: &Inbound, id: &str) -> DeliveryReceipt {
    let request = tokio::time::timeout(WAIT, inbound.recv())
        .await
        .expect("a receipt in time")
        .expect("the session is open");
    let Body::DeliverSm(sm) = request.body() else {
        panic!("not a deliver_sm: {:?}", request.body());
    };
    assert!(EsmClass::from(sm.esm_class).is_delivery_receipt());
    let text = DeliveryReceipt::parse(std::str::from_utf8(&sm.short_message).unwrap()).unwrap();
    assert_eq!(text.id, id, "our id in the text");
    assert_eq!(sm.tlvs.receipted_message_id(), Some(id.as_bytes()));
    assert_eq!(sm.destination_addr, "12345", "back to the sender");
    request.receipt().unwrap()
}

store_tests!(a_receipt_comes_back_with_the_id_the_customer_was_given: memory, postgres);

async fn a_receipt_comes_back_with_the_id_the_customer_was_given(store: StoreConfig) {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let gateway = start(config(store, &[("a", up.server.smpp_addr())], &[]))
        .await
        .unwrap();
    wait_bound(&gateway, "a").await;
    let (client, inbound) = customer(&gateway, BindKind::Transceiver).await;
    let id = client.submit(message("447700900001")).await.unwrap();
    let id = id.to_string_lossy().into_owned();
    let receipt = receipt_for(&inbound, &id).await;
    assert_eq!(receipt.state, MessageState::Delivered);
    assert_eq!(up.count(), 1);
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

/// An SMPP 3.3 customer takes no TLVs: its receipt comes without them (the
/// session leaves them out), its text still naming the id it was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_3_3_customer_gets_its_receipt_without_tlvs() {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let gateway = start(config(
        StoreConfig::Memory,
        &[("a", up.server.smpp_addr())],
        &[],
    ))
    .await
    .unwrap();
    wait_bound(&gateway, "a").await;
    let (client, inbound) = customer_version(&gateway, BindKind::Transceiver, 0x33).await;
    assert_eq!(client.interface_version(), 0x33);
    let id = client.submit(message("447700900001")).await.unwrap();
    let id = id.to_string_lossy().into_owned();
    let request = tokio::time::timeout(WAIT, inbound.recv())
        .await
        .expect("a receipt in time")
        .expect("the session is open");
    let Body::DeliverSm(sm) = request.body() else {
        panic!("not a deliver_sm: {:?}", request.body());
    };
    assert!(sm.tlvs.is_empty(), "{sm:?}");
    let text = DeliveryReceipt::parse(std::str::from_utf8(&sm.short_message).unwrap()).unwrap();
    assert_eq!(text.id, id, "our id in the text");
    assert_eq!(text.state, MessageState::Delivered);
    drop(request);
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_routed_by_destination_prefix() {
    let a = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let b = upstream(MessageState::Undeliverable, Duration::ZERO, "127.0.0.1:0").await;
    let upstreams = [("a", a.server.smpp_addr()), ("b", b.server.smpp_addr())];
    let gateway = start(config(StoreConfig::Memory, &upstreams, &["4470=b", "*=a"]))
        .await
        .unwrap();
    wait_bound(&gateway, "a").await;
    wait_bound(&gateway, "b").await;
    let (client, inbound) = customer(&gateway, BindKind::Transceiver).await;

    let to_b = client.submit(message("447012345678")).await.unwrap();
    let receipt = receipt_for(&inbound, &to_b.to_string_lossy()).await;
    assert_eq!(receipt.state, MessageState::Undeliverable, "b's outcome");
    assert_eq!((a.count(), b.count()), (0, 1));

    let to_a = client.submit(message("33612345678")).await.unwrap();
    let receipt = receipt_for(&inbound, &to_a.to_string_lossy()).await;
    assert_eq!(receipt.state, MessageState::Delivered, "a's outcome");
    assert_eq!((a.count(), b.count()), (1, 1));

    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_fails_over_when_its_first_upstream_is_down() {
    let down = free_port();
    let b = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    // No --route: the upstreams in the order given are one failover list.
    let upstreams = [("down", down), ("b", b.server.smpp_addr())];
    let gateway = start(config(StoreConfig::Memory, &upstreams, &[]))
        .await
        .unwrap();
    wait_bound(&gateway, "b").await;
    assert_eq!(gateway.upstream_binds("down"), Some(0));
    let (client, inbound) = customer(&gateway, BindKind::Transceiver).await;
    let id = client.submit(message("447700900002")).await.unwrap();
    receipt_for(&inbound, &id.to_string_lossy()).await;
    assert_eq!(b.count(), 1);
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}

store_tests!(a_receipt_waits_until_the_customer_binds_a_receiver: memory, postgres);

async fn a_receipt_waits_until_the_customer_binds_a_receiver(store: StoreConfig) {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let gateway = start(config(store, &[("a", up.server.smpp_addr())], &[]))
        .await
        .unwrap();
    wait_bound(&gateway, "a").await;
    let (transmitter, _) = customer(&gateway, BindKind::Transmitter).await;
    let id = transmitter.submit(message("447700900003")).await.unwrap();
    wait_for("the receipt owed", || gateway.receipts_owed() == 1).await;
    transmitter.unbind().await.unwrap();
    // Nobody can take it for a while: it stays.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gateway.receipts_owed(), 1);

    let (receiver, inbound) = customer(&gateway, BindKind::Receiver).await;
    receipt_for(&inbound, &id.to_string_lossy()).await;
    wait_for("the outbox emptied", || gateway.receipts_owed() == 0).await;
    receiver.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

/// An SMSC that answers every submit with an id (`abc-1`, `abc-2`...) and
/// sends receipts only when the test says so.
#[derive(Default)]
struct Scripted(AtomicUsize);

impl Handler<Connection> for Scripted {
    async fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
        Ok(())
    }

    async fn submit_sm(&self, _: &Connection, _: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(SubmitSmResp {
            message_id: format!("abc-{n}").into(),
            ..Default::default()
        })
    }
}

fn receipt_pdu(id: &str, state: MessageState) -> SubmitSm {
    let receipt = DeliveryReceipt::new(id, state);
    SubmitSm {
        source_addr: "447700900004".into(),
        destination_addr: "12345".into(),
        esm_class: EsmClass::DELIVERY_RECEIPT.bits(),
        short_message: receipt.to_text().into_bytes().into(),
        ..Default::default()
    }
}

store_tests!(after_a_restart_a_forwarded_message_s_receipt_still_maps_back: fjall, postgres);

async fn after_a_restart_a_forwarded_message_s_receipt_still_maps_back(store: StoreConfig) {
    let scripted = Arc::new(Scripted::default());
    let smsc = Server::bind(
        "127.0.0.1:0",
        ScriptedRef(scripted.clone()),
        ServerConfig::default(),
    )
    .await
    .unwrap();
    let addr = smsc.local_addr().unwrap();
    let control = smsc.handle();
    let serving = tokio::spawn(smsc.run());
    let gw_config = || {
        let mut c = config(store.clone(), &[], &[]);
        c.upstreams = vec![format!("s=gw:pw@{addr}").parse().unwrap()];
        c
    };

    let gateway = start(gw_config()).await.unwrap();
    wait_bound(&gateway, "s").await;
    let (client, _) = customer(&gateway, BindKind::Transmitter).await;
    let id = client.submit(message("447700900004")).await.unwrap();
    wait_for("the upstream got it", || {
        scripted.0.load(Ordering::Relaxed) == 1
    })
    .await;
    // The id map is written right after the upstream's answer.
    wait_for("the upstream id recorded", || {
        gateway.messages_forwarding() == 0
    })
    .await;
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();

    let gateway = start(gw_config()).await.unwrap();
    wait_bound(&gateway, "s").await;
    let (receiver, inbound) = customer(&gateway, BindKind::Receiver).await;
    // The upstream writes its id in another case: text ids compare without it.
    let upstream_bind = control.receiver("gw").expect("the gateway bound again");
    upstream_bind
        .deliver(receipt_pdu("ABC-1", MessageState::Expired))
        .await
        .unwrap();
    let receipt = receipt_for(&inbound, &id.to_string_lossy()).await;
    assert_eq!(receipt.state, MessageState::Expired);
    assert_eq!(scripted.0.load(Ordering::Relaxed), 1, "not forwarded twice");
    assert_eq!(gateway.receipts_held(), 0);
    receiver.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    control.shutdown();
    serving.await.unwrap().unwrap();
}

/// [`Scripted`] shared with the test.
struct ScriptedRef(Arc<Scripted>);

impl Handler<Connection> for ScriptedRef {
    async fn bind(&self, c: &Connection, k: BindKind, b: &Bind) -> Result<(), CommandStatus> {
        self.0.bind(c, k, b).await
    }

    async fn submit_sm(&self, c: &Connection, sm: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        self.0.submit_sm(c, sm).await
    }
}

store_tests!(after_a_restart_a_message_not_yet_forwarded_is_forwarded: fjall, postgres);

async fn after_a_restart_a_message_not_yet_forwarded_is_forwarded(store: StoreConfig) {
    let later = free_port();
    let gateway = start(config(store.clone(), &[("a", later)], &[]))
        .await
        .unwrap();
    let (client, _) = customer(&gateway, BindKind::Transmitter).await;
    // Accepted (durable) although no upstream is up.
    let id = client.submit(message("447700900005")).await.unwrap();
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();

    let up = upstream(MessageState::Delivered, Duration::ZERO, &later.to_string()).await;
    let gateway = start(config(store, &[("a", later)], &[])).await.unwrap();
    let (receiver, inbound) = customer(&gateway, BindKind::Receiver).await;
    receipt_for(&inbound, &id.to_string_lossy()).await;
    assert_eq!(up.count(), 1);
    receiver.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

/// An SMSC that sends the receipt before it answers the submit (and
/// writes its ids in hex in `submit_sm_resp`, in decimal in receipts).
struct EarlyReceipts;

impl Handler<Connection> for EarlyReceipts {
    async fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
        Ok(())
    }

    async fn submit_sm(
        &self,
        conn: &Connection,
        sm: SubmitSm,
    ) -> Result<SubmitSmResp, CommandStatus> {
        let receipt = DeliveryReceipt::new("255", MessageState::Delivered);
        let deliver = SubmitSm {
            source_addr: sm.destination_addr.clone(),
            destination_addr: sm.source_addr.clone(),
            esm_class: EsmClass::DELIVERY_RECEIPT.bits(),
            short_message: receipt.to_text().into_bytes().into(),
            ..Default::default()
        };
        // The gateway answers once it has held the receipt durably.
        conn.deliver(deliver)
            .await
            .map_err(|_| CommandStatus::SYSTEM_ERROR)?;
        Ok(SubmitSmResp {
            message_id: "000000FF".into(),
            ..Default::default()
        })
    }
}

store_tests!(a_receipt_before_its_submit_response_is_held_then_matched_across_radixes: memory, postgres);

async fn a_receipt_before_its_submit_response_is_held_then_matched_across_radixes(
    store: StoreConfig,
) {
    let smsc = Server::bind("127.0.0.1:0", EarlyReceipts, ServerConfig::default())
        .await
        .unwrap();
    let addr = smsc.local_addr().unwrap();
    let control = smsc.handle();
    let serving = tokio::spawn(smsc.run());
    let mut config = config(store, &[], &[]);
    config.upstreams = vec![format!("early=gw:pw@{addr},ids=hex/decimal")
        .parse()
        .unwrap()];
    let gateway = start(config).await.unwrap();
    wait_bound(&gateway, "early").await;
    let (client, inbound) = customer(&gateway, BindKind::Transceiver).await;
    let id = client.submit(message("447700900006")).await.unwrap();
    let receipt = receipt_for(&inbound, &id.to_string_lossy()).await;
    assert_eq!(receipt.state, MessageState::Delivered);
    assert_eq!(gateway.receipts_held(), 0);
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    control.shutdown();
    serving.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_are_checked_against_the_accounts() {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let gateway = start(config(
        StoreConfig::Memory,
        &[("a", up.server.smpp_addr())],
        &[],
    ))
    .await
    .unwrap();
    for (id, password, status) in [
        ("esme", "wrong", CommandStatus::INVALID_PASSWORD),
        ("nobody", "secret", CommandStatus::INVALID_SYSTEM_ID),
    ] {
        let bind = Bind {
            system_id: id.into(),
            password: password.into(),
            ..Default::default()
        };
        let refused = Client::connect(
            gateway.smpp_addr(),
            BindKind::Transceiver,
            bind,
            SessionConfig::default(),
        )
        .await;
        assert!(
            matches!(refused, Err(smpp_tokio::Error::Status(s)) if s == status),
            "{id}/{password}: {refused:?}"
        );
    }
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

async fn try_bind(gateway: &RunningGateway, id: &str, password: &str) -> Result<(), CommandStatus> {
    let bind = Bind {
        system_id: id.to_owned().into(),
        password: password.to_owned().into(),
        interface_version: 0x34,
        ..Default::default()
    };
    match Client::connect(
        gateway.smpp_addr(),
        BindKind::Transmitter,
        bind,
        SessionConfig::default(),
    )
    .await
    {
        Ok((client, _)) => {
            client.unbind().await.ok();
            Ok(())
        }
        Err(smpp_tokio::Error::Status(s)) => Err(s),
        Err(e) => panic!("bind {id}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_passwords_bind_and_repeated_failures_lock_the_address_out() {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let mut config = config(StoreConfig::Memory, &[("a", up.server.smpp_addr())], &[]);
    let hash = smpp_server::credentials::hash_password(b"s3cret").unwrap();
    config.accounts = vec![format!("esme:{hash}").parse().unwrap()];
    config.bind_failure_limit = smpp_server::config::parse_bind_failure_limit("3/1m/5m").unwrap();
    let gateway = start(config).await.unwrap();
    assert_eq!(try_bind(&gateway, "esme", "s3cret").await, Ok(()));
    assert_eq!(
        try_bind(&gateway, "esme", "wrong").await,
        Err(CommandStatus::INVALID_PASSWORD)
    );
    for _ in 0..3 {
        let _ = try_bind(&gateway, "esme", "wrong").await;
    }
    // Locked out now: even the right password is refused, with BIND_FAILED.
    assert_eq!(
        try_bind(&gateway, "esme", "s3cret").await,
        Err(CommandStatus::BIND_FAILED)
    );
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_that_looks_hashed_but_is_not_stops_the_start() {
    let mut config = config(StoreConfig::Memory, &[("a", free_port())], &[]);
    config.accounts = vec!["esme:$argon2id$nonsense".parse().unwrap()];
    let error = start(config).await.unwrap_err();
    assert!(
        format!("{error:#}").contains("account esme: password"),
        "{error:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unroutable_and_over_the_queue_limit_are_refused_at_once() {
    let down = free_port();
    let mut config = config(StoreConfig::Memory, &[("down", down)], &["44=down"]);
    config.max_queued = 1;
    let gateway = start(config).await.unwrap();
    let (client, _) = customer(&gateway, BindKind::Transmitter).await;
    let refused = client.submit(message("33612345678")).await;
    assert!(
        matches!(
            refused,
            Err(smpp_tokio::Error::Status(
                CommandStatus::INVALID_DESTINATION_ADDRESS
            ))
        ),
        "{refused:?}"
    );
    // Accepted and queued: no upstream is up.
    client.submit(message("447700900007")).await.unwrap();
    let refused = client.submit(message("447700900008")).await;
    assert!(
        matches!(
            refused,
            Err(smpp_tokio::Error::Status(CommandStatus::MESSAGE_QUEUE_FULL))
        ),
        "{refused:?}"
    );
    assert_eq!(gateway.messages_forwarding(), 1);
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
}

/// `queue=N` caps what waits for one connector: a route leading only to
/// connectors at their limit is refused with `ESME_RMSGQFUL`, nothing
/// stored or charged; a route with room elsewhere still takes messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_at_its_queue_limit_refuses_what_only_it_could_take() {
    let (small, open) = (free_port(), free_port());
    let mut config = config(
        StoreConfig::Memory,
        &[("small", small), ("open", open)],
        &["44=small", "33=small,open", "*=open"],
    );
    config.upstreams[0].queue = Some(2);
    config.balances = vec!["esme=10sms".parse().unwrap()];
    let gateway = start(config).await.unwrap();
    let (client, _) = customer(&gateway, BindKind::Transmitter).await;
    // Both connectors are down: everything waits.
    client.submit(message("447700900001")).await.unwrap();
    client.submit(message("447700900002")).await.unwrap();
    let refused = client.submit(message("447700900003")).await;
    assert!(
        matches!(
            refused,
            Err(smpp_tokio::Error::Status(CommandStatus::MESSAGE_QUEUE_FULL))
        ),
        "{refused:?}"
    );
    assert_eq!(gateway.messages_forwarding(), 2, "nothing stored");
    assert_eq!(gateway.quota("esme").sms, Some(8), "nothing charged");
    // A route that may also go to the connector without a limit still
    // takes messages; so do the other routes.
    client.submit(message("33612345678")).await.unwrap();
    client.submit(message("1555000111")).await.unwrap();
    assert_eq!(gateway.messages_forwarding(), 4);
    assert_eq!(gateway.quota("esme").sms, Some(6));
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
}

/// A connector that binds to the gateway itself (its own listener, one of
/// its accounts) is refused at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_pointing_at_the_gateway_itself_is_refused_at_start() {
    let listen = free_port();
    for host in ["127.0.0.1", "localhost"] {
        let mut config = config(StoreConfig::Memory, &[], &[]);
        config.listen = listen.to_string();
        config.upstreams = vec![format!("self=esme:secret@{host}:{}", listen.port())
            .parse()
            .unwrap()];
        let refused = start(config).await.expect_err("a loop");
        assert!(
            format!("{refused:#}").contains("points at this gateway itself"),
            "{refused:#}"
        );
    }
    // Another account on the same address is another gateway's business
    // (here nothing answers it): accepted.
    let mut config = config(StoreConfig::Memory, &[], &[]);
    config.listen = listen.to_string();
    config.upstreams = vec![format!("other=someone:pw@{listen}").parse().unwrap()];
    start(config).await.unwrap().shutdown().await.unwrap();
}

/// Two gateways routing to each other: the hop count each adds stops the
/// message after `max_hops`; it ends failed, with a failed receipt back to
/// the customer along the way it came, and the traffic stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_loop_between_two_gateways_ends_in_a_failed_message() {
    let a_addr = free_port();
    let peer = || -> smpp_gateway::Account { "peer:peerpw".parse().unwrap() };
    let mut b = config(StoreConfig::Memory, &[], &[]);
    b.accounts = vec![peer()];
    b.upstreams = vec![format!("to_a=peer:peerpw@{a_addr}").parse().unwrap()];
    let b = start(b).await.unwrap();
    let mut a = config(StoreConfig::Memory, &[], &[]);
    a.listen = a_addr.to_string();
    a.accounts.push(peer());
    a.max_hops = 4;
    a.upstreams = vec![format!("to_b=peer:peerpw@{}", b.smpp_addr())
        .parse()
        .unwrap()];
    let a = start(a).await.unwrap();
    wait_bound(&a, "to_b").await;
    wait_bound(&b, "to_a").await;

    let (client, inbound) = customer(&a, BindKind::Transceiver).await;
    let id = client.submit(message("447700900001")).await.unwrap();
    let receipt = receipt_for(&inbound, &id.to_string_lossy()).await;
    assert_eq!(receipt.state, MessageState::Rejected, "{receipt:?}");
    // A (hop 0) -> B (1) -> A (2) -> B (3) -> A, which refuses a count of
    // 4 (its limit): each failure goes back as a receipt, and then neither
    // gateway has anything left to forward.
    wait_for("both gateways idle", || {
        a.messages_forwarding() == 0 && b.messages_forwarding() == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.messages_forwarding() + b.messages_forwarding(), 0);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), inbound.recv())
            .await
            .is_err(),
        "one receipt only"
    );
    client.unbind().await.unwrap();
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// `bind=tx+rx`: a transmitter and a receiver per slot; submits go on the
/// transmitter, the receipt comes back on the receiver and still maps
/// back to the customer. With `bind=tx` alone no receipt can come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_of_transmitters_and_receivers_maps_receipts_back() {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let mut config = config(StoreConfig::Memory, &[("a", up.server.smpp_addr())], &[]);
    config.upstreams[0].bind = smpp_gateway::ConnectorBind::TransmitterAndReceiver;
    let gateway = start(config).await.unwrap();
    wait_for("a transmitter and a receiver up", || {
        gateway.upstream_binds("a") == Some(2)
    })
    .await;
    let (client, inbound) = customer(&gateway, BindKind::Transceiver).await;
    let id = client.submit(message("447700900001")).await.unwrap();
    let receipt = receipt_for(&inbound, &id.to_string_lossy()).await;
    assert_eq!(receipt.state, MessageState::Delivered);
    assert_eq!(up.count(), 1);
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();

    // Transmitters only: the message goes, its receipt has nowhere to come.
    let config = config_with_upstream(&format!(
        "t=smppclient1:password@{},bind=tx",
        up.server.smpp_addr()
    ));
    let gateway = start(config).await.unwrap();
    wait_bound(&gateway, "t").await;
    let (client, inbound) = customer(&gateway, BindKind::Transceiver).await;
    client.submit(message("447700900002")).await.unwrap();
    wait_for("forwarded", || up.count() == 2).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), inbound.recv())
            .await
            .is_err(),
        "no receipt without a receiver"
    );
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

/// A customer asking for intermediate notifications (registered_delivery
/// bit 4): the request goes upstream, the upstream's notification comes
/// back with our id as an intermediate notification, the message stays
/// open, and the final receipt follows. One that did not ask gets only
/// the final receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intermediate_notifications_are_passed_on_without_ending_the_message() {
    use smpp_proto::pdu::RegisteredDelivery;
    let up = upstream(
        MessageState::Delivered,
        Duration::from_millis(600),
        "127.0.0.1:0",
    )
    .await;
    let gateway = start(config(
        StoreConfig::Memory,
        &[("a", up.server.smpp_addr())],
        &[],
    ))
    .await
    .unwrap();
    wait_bound(&gateway, "a").await;
    let (client, inbound) = customer(&gateway, BindKind::Transceiver).await;
    let mut sm = message("447700900001");
    sm.set_registered_delivery(
        sm.registered_delivery()
            .with_intermediate_notification(true),
    );
    assert!(sm.registered_delivery().wants_receipt());
    let id = client.submit(sm).await.unwrap();
    let id = id.to_string_lossy().into_owned();

    let first = tokio::time::timeout(WAIT, inbound.recv())
        .await
        .expect("a notification in time")
        .expect("the session is open");
    let Body::DeliverSm(notification) = first.body() else {
        panic!("not a deliver_sm: {:?}", first.body());
    };
    assert!(notification.esm_class().is_intermediate_notification());
    assert!(!notification.esm_class().is_delivery_receipt());
    assert_eq!(
        notification.tlvs.receipted_message_id(),
        Some(id.as_bytes())
    );
    let text = first.receipt().unwrap();
    assert_eq!(
        (text.id.as_str(), text.state),
        (id.as_str(), MessageState::Enroute)
    );
    drop(first);
    // Not final: query_sm still says so.
    let state = query(&client, &id, "12345").await.unwrap();
    assert_eq!(state.message_state, MessageState::Enroute.to_u8());

    let receipt = receipt_for(&inbound, &id).await;
    assert_eq!(receipt.state, MessageState::Delivered);

    // Without bit 4: the final receipt only.
    let plain = RegisteredDelivery::default()
        .with_receipt(smpp_proto::pdu::ReceiptRequest::SuccessOrFailure);
    let mut sm = message("447700900002");
    sm.set_registered_delivery(plain);
    let id = client.submit(sm).await.unwrap();
    let receipt = receipt_for(&inbound, &id.to_string_lossy()).await;
    assert_eq!(receipt.state, MessageState::Delivered);
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_upstream_refusal_ends_in_a_failed_receipt() {
    let mut serve = ServeConfig::for_tests();
    serve.rules = vec![smpp_server::Rule {
        prefix: Some("999".into()),
        status: Some(CommandStatus::INVALID_DESTINATION_ADDRESS),
        ..Default::default()
    }];
    let up = smpp_server::start(serve).await.unwrap();
    let gateway = start(config(StoreConfig::Memory, &[("a", up.smpp_addr())], &[]))
        .await
        .unwrap();
    wait_bound(&gateway, "a").await;
    let (client, inbound) = customer(&gateway, BindKind::Transceiver).await;
    // Accepted by the gateway (it is durable), refused upstream.
    let id = client.submit(message("999123")).await.unwrap();
    let receipt = receipt_for(&inbound, &id.to_string_lossy()).await;
    assert_eq!(receipt.state, MessageState::Rejected);
    assert_eq!(receipt.error.as_deref(), Some("00B"), "ESME_RINVDSTADR");
    assert_eq!(gateway.messages_forwarding(), 0, "not retried");
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    up.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_wait_for_a_down_upstream_and_go_when_it_comes_back() {
    let later = free_port();
    let gateway = start(config(StoreConfig::Memory, &[("a", later)], &[]))
        .await
        .unwrap();
    let (client, inbound) = customer(&gateway, BindKind::Transceiver).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let id = client
            .submit(message(&format!("44770090010{n}")))
            .await
            .unwrap();
        ids.push(id.to_string_lossy().into_owned());
    }
    assert_eq!(gateway.messages_forwarding(), 5);

    let up = upstream(MessageState::Delivered, Duration::ZERO, &later.to_string()).await;
    let mut receipted = Vec::new();
    for _ in 0..5 {
        let request = tokio::time::timeout(WAIT, inbound.recv())
            .await
            .expect("a receipt in time")
            .expect("the session is open");
        receipted.push(request.receipt().unwrap().id);
    }
    receipted.sort();
    ids.sort();
    assert_eq!(receipted, ids);
    assert_eq!(up.count(), 5);
    assert_eq!(gateway.messages_forwarding(), 0);
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_the_customer_keeps_refusing_is_given_up() {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let gateway = start(config(
        StoreConfig::Memory,
        &[("a", up.server.smpp_addr())],
        &[],
    ))
    .await
    .unwrap();
    wait_bound(&gateway, "a").await;
    let (client, inbound) = customer(&gateway, BindKind::Transceiver).await;
    client.submit(message("447700900009")).await.unwrap();
    for _ in 0..5 {
        let request = tokio::time::timeout(WAIT, inbound.recv())
            .await
            .expect("a receipt in time")
            .expect("the session is open");
        request.reject(CommandStatus::RECEIVER_REJECTED);
    }
    wait_for("the receipt given up", || gateway.receipts_owed() == 0).await;
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mo_message_without_an_mo_route_is_refused_not_lost() {
    let smsc = Server::bind("127.0.0.1:0", Scripted::default(), ServerConfig::default())
        .await
        .unwrap();
    let addr = smsc.local_addr().unwrap();
    let control = smsc.handle();
    let serving = tokio::spawn(smsc.run());
    let mut config = config(StoreConfig::Memory, &[], &[]);
    config.upstreams = vec![format!("s=gw:pw@{addr}").parse().unwrap()];
    let gateway = start(config).await.unwrap();
    wait_bound(&gateway, "s").await;
    let mo = SubmitSm {
        source_addr: "447700900010".into(),
        destination_addr: "12345".into(),
        short_message: "hi there".into(),
        ..Default::default()
    };
    let answer = control.receiver("gw").unwrap().deliver(mo).await;
    assert!(
        matches!(
            answer,
            Err(smpp_tokio::Error::Status(
                CommandStatus::RECEIVER_TEMPORARY_ERROR
            ))
        ),
        "{answer:?}"
    );
    gateway.shutdown().await.unwrap();
    control.shutdown();
    serving.await.unwrap().unwrap();
}

store_tests!(a_final_message_is_forgotten_after_the_retention: memory, postgres);

async fn a_final_message_is_forgotten_after_the_retention(store: StoreConfig) {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let mut config = config(store, &[("a", up.server.smpp_addr())], &[]);
    config.retention = Duration::from_millis(200);
    let store = smpp_gateway::open_store(&config.store).await.unwrap();
    let gateway = start_with_store(config, store.clone()).await.unwrap();
    wait_bound(&gateway, "a").await;
    let (client, inbound) = customer(&gateway, BindKind::Transceiver).await;
    let id = client.submit(message("447700900011")).await.unwrap();
    let id = id.to_string_lossy().into_owned();
    receipt_for(&inbound, &id).await;
    let id = parse_id(&id).unwrap();
    assert!(
        store.message(id).await.unwrap().is_some(),
        "kept while recent"
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while store.message(id).await.unwrap().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "never forgotten");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(store
        .finished_before(u64::MAX, 10)
        .await
        .unwrap()
        .is_empty());
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

async fn query(client: &Client, id: &str, source: &str) -> Result<QuerySmResp, smpp_tokio::Error> {
    let q = QuerySm {
        message_id: id.to_owned().into(),
        source_addr: source.to_owned().into(),
        ..Default::default()
    };
    let pdu = client.request(Body::QuerySm(Box::new(q))).await?;
    match pdu.body {
        Body::QuerySmResp(resp) => Ok(*resp),
        other => panic!("not a query_sm_resp: {other:?}"),
    }
}

store_tests!(query_sm_answers_on_our_ids: memory, postgres);

async fn query_sm_answers_on_our_ids(store: StoreConfig) {
    let scripted = Arc::new(Scripted::default());
    let smsc = Server::bind(
        "127.0.0.1:0",
        ScriptedRef(scripted.clone()),
        ServerConfig::default(),
    )
    .await
    .unwrap();
    let addr = smsc.local_addr().unwrap();
    let control = smsc.handle();
    let serving = tokio::spawn(smsc.run());
    let mut config = config(store, &[], &[]);
    config.upstreams = vec![format!("s=gw:pw@{addr}").parse().unwrap()];
    let gateway = start(config).await.unwrap();
    wait_bound(&gateway, "s").await;
    let (client, inbound) = customer(&gateway, BindKind::Transceiver).await;
    let id = client.submit(message("447700900004")).await.unwrap();
    let id = id.to_string_lossy().into_owned();
    wait_for("forwarded", || gateway.messages_forwarding() == 0).await;

    let pending = query(&client, &id, "12345").await.unwrap();
    assert_eq!(pending.message_state, MessageState::Enroute.to_u8());
    assert!(pending.final_date.is_empty());

    control
        .receiver("gw")
        .unwrap()
        .deliver(receipt_pdu("abc-1", MessageState::Delivered))
        .await
        .unwrap();
    receipt_for(&inbound, &id).await;
    let done = query(&client, &id, "").await.unwrap();
    assert_eq!(done.message_state, MessageState::Delivered.to_u8());
    assert!(!done.final_date.is_empty());

    for (bad_id, source) in [(id.as_str(), "99999"), ("FFFF", ""), ("not hex", "")] {
        let refused = query(&client, bad_id, source).await;
        assert!(
            matches!(
                refused,
                Err(smpp_tokio::Error::Status(CommandStatus::QUERY_FAILED))
            ),
            "{bad_id}/{source}: {refused:?}"
        );
    }
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    control.shutdown();
    serving.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_limited_in_binds_and_rate() {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let mut config = config(StoreConfig::Memory, &[("a", up.server.smpp_addr())], &[]);
    config.max_binds_per_account = Some(1);
    config.tps_per_account = Some(2);
    let gateway = start(config).await.unwrap();
    // Receipts are answered at once (the inbound is dropped).
    let (client, _) = customer(&gateway, BindKind::Transceiver).await;
    let bind = Bind {
        system_id: "esme".into(),
        password: "secret".into(),
        ..Default::default()
    };
    let second = Client::connect(
        gateway.smpp_addr(),
        BindKind::Transmitter,
        bind,
        SessionConfig::default(),
    )
    .await;
    assert!(
        matches!(
            second,
            Err(smpp_tokio::Error::Status(CommandStatus::BIND_FAILED))
        ),
        "{second:?}"
    );
    // 5 at once: at most 2 in each second they fall in, so at least one
    // is throttled.
    let mut throttled = 0;
    for n in 0..5 {
        match client.submit(message(&format!("4477009002{n}"))).await {
            Ok(_) => {}
            Err(smpp_tokio::Error::Status(CommandStatus::THROTTLED)) => throttled += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(throttled >= 1, "none throttled");
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_address_is_limited_on_its_own() {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let mut config = config(StoreConfig::Memory, &[("a", up.server.smpp_addr())], &[]);
    config.tps_per_sender = Some(2);
    let gateway = start(config).await.unwrap();
    let (client, _) = customer(&gateway, BindKind::Transceiver).await;
    let from = |source: &str, n: usize| {
        let mut sm = message(&format!("4477009002{n}"));
        sm.source_addr = source.to_owned().into();
        sm
    };
    // Seven from one sender: at most 2 in each second they fall in.
    let mut throttled = 0;
    for n in 0..7 {
        match client.submit(from("Acme", n)).await {
            Ok(_) => {}
            Err(smpp_tokio::Error::Status(CommandStatus::THROTTLED)) => throttled += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(throttled >= 1, "none throttled");
    // Seven senders, one message each: none is over its limit.
    for n in 0..7 {
        client
            .submit(from(&format!("Shop{n}"), n))
            .await
            .expect("another sender has its own limit");
    }
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_sm_is_forwarded_and_its_receipt_mapped_back() {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let gateway = start(config(
        StoreConfig::Memory,
        &[("a", up.server.smpp_addr())],
        &[],
    ))
    .await
    .unwrap();
    wait_bound(&gateway, "a").await;
    let (client, inbound) = customer(&gateway, BindKind::Transceiver).await;
    let mut tlvs = Tlvs::new();
    tlvs.set(TlvTag::MESSAGE_PAYLOAD, b"hello in a payload")
        .unwrap();
    let data = DataSm {
        source_addr: "12345".into(),
        destination_addr: "447700900012".into(),
        registered_delivery: 1,
        tlvs,
        ..Default::default()
    };
    let pdu = client.request(Body::DataSm(Box::new(data))).await.unwrap();
    let Body::DataSmResp(resp) = pdu.body else {
        panic!("not a data_sm_resp: {pdu:?}");
    };
    let receipt = receipt_for(&inbound, &resp.message_id.to_string_lossy()).await;
    assert_eq!(receipt.state, MessageState::Delivered);
    assert_eq!(up.count(), 1, "forwarded as a submit_sm");
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

store_tests!(a_receipt_for_an_id_never_recorded_is_given_up_after_hold_for: memory, postgres);

async fn a_receipt_for_an_id_never_recorded_is_given_up_after_hold_for(store: StoreConfig) {
    let smsc = Server::bind("127.0.0.1:0", Scripted::default(), ServerConfig::default())
        .await
        .unwrap();
    let addr = smsc.local_addr().unwrap();
    let control = smsc.handle();
    let serving = tokio::spawn(smsc.run());
    let mut config = config(store, &[], &[]);
    config.upstreams = vec![format!("s=gw:pw@{addr}").parse().unwrap()];
    config.hold_for = Duration::from_millis(300);
    let gateway = start(config).await.unwrap();
    wait_bound(&gateway, "s").await;
    // Acknowledged (held durably), not dropped...
    control
        .receiver("gw")
        .unwrap()
        .deliver(receipt_pdu("never-seen", MessageState::Delivered))
        .await
        .unwrap();
    assert_eq!(gateway.receipts_held(), 1);
    // ... until hold_for has passed.
    wait_for("the receipt given up", || gateway.receipts_held() == 0).await;
    gateway.shutdown().await.unwrap();
    control.shutdown();
    serving.await.unwrap().unwrap();
}

store_tests!(an_mo_message_goes_to_the_account_of_its_mo_route_even_if_it_binds_later: memory, postgres);

async fn an_mo_message_goes_to_the_account_of_its_mo_route_even_if_it_binds_later(
    store: StoreConfig,
) {
    let smsc = Server::bind("127.0.0.1:0", Scripted::default(), ServerConfig::default())
        .await
        .unwrap();
    let addr = smsc.local_addr().unwrap();
    let control = smsc.handle();
    let serving = tokio::spawn(smsc.run());
    let mut config = config(store, &[], &[]);
    config.upstreams = vec![format!("s=gw:pw@{addr}").parse().unwrap()];
    config.mo_routes = vec!["7000=esme".parse().unwrap()];
    let gateway = start(config).await.unwrap();
    wait_bound(&gateway, "s").await;
    let mo = |to: &str| SubmitSm {
        source_addr: "447700900013".into(),
        destination_addr: to.to_owned().into(),
        short_message: "STOP".into(),
        ..Default::default()
    };
    let upstream_bind = control.receiver("gw").unwrap();
    // Stored for the account while it is not bound.
    upstream_bind.deliver(mo("70001")).await.unwrap();
    assert_eq!(gateway.receipts_owed(), 1);
    let other = upstream_bind.deliver(mo("8000")).await;
    assert!(
        matches!(
            other,
            Err(smpp_tokio::Error::Status(
                CommandStatus::RECEIVER_TEMPORARY_ERROR
            ))
        ),
        "no MO route: {other:?}"
    );

    let (receiver, inbound) = customer(&gateway, BindKind::Receiver).await;
    let request = tokio::time::timeout(WAIT, inbound.recv())
        .await
        .expect("the MO in time")
        .expect("the session is open");
    let Body::DeliverSm(sm) = request.body() else {
        panic!("not a deliver_sm: {:?}", request.body());
    };
    assert!(!EsmClass::from(sm.esm_class).is_receipt());
    assert_eq!(sm.destination_addr, "70001");
    assert_eq!(&sm.short_message[..], b"STOP");
    drop(request);
    wait_for("the outbox emptied", || gateway.receipts_owed() == 0).await;

    // An MO that comes as data_sm reaches the customer as the deliver_sm
    // that says the same (the text in message_payload).
    let mut data = smpp_proto::pdu::DataSm {
        source_addr: "447700900013".into(),
        destination_addr: "70002".into(),
        ..Default::default()
    };
    data.tlvs
        .set(smpp_proto::pdu::TlvTag::MESSAGE_PAYLOAD, b"START")
        .unwrap();
    let answer = upstream_bind
        .request(Body::DataSm(Box::new(data)))
        .await
        .unwrap();
    assert_eq!(answer.command_status, CommandStatus::OK);
    let request = tokio::time::timeout(WAIT, inbound.recv())
        .await
        .expect("the data_sm MO in time")
        .expect("the session is open");
    let Body::DeliverSm(sm) = request.body() else {
        panic!("not a deliver_sm: {:?}", request.body());
    };
    assert_eq!(sm.destination_addr, "70002");
    assert_eq!(sm.payload(), b"START");
    drop(request);
    wait_for("the outbox emptied", || gateway.receipts_owed() == 0).await;
    receiver.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    control.shutdown();
    serving.await.unwrap().unwrap();
}

store_tests!(a_message_whose_receipt_never_comes_ends_unknown: memory, postgres);

async fn a_message_whose_receipt_never_comes_ends_unknown(store: StoreConfig) {
    let smsc = Server::bind("127.0.0.1:0", Scripted::default(), ServerConfig::default())
        .await
        .unwrap();
    let addr = smsc.local_addr().unwrap();
    let control = smsc.handle();
    let serving = tokio::spawn(smsc.run());
    let mut config = config(store, &[], &[]);
    config.upstreams = vec![format!("s=gw:pw@{addr}").parse().unwrap()];
    config.receipt_timeout = Duration::from_millis(300);
    let gateway = start(config).await.unwrap();
    wait_bound(&gateway, "s").await;
    let (client, inbound) = customer(&gateway, BindKind::Transceiver).await;
    let id = client.submit(message("447700900014")).await.unwrap();
    let id = id.to_string_lossy().into_owned();
    // The upstream takes it and never says more.
    let receipt = receipt_for(&inbound, &id).await;
    assert_eq!(receipt.state, MessageState::Unknown);
    let state = query(&client, &id, "").await.unwrap();
    assert_eq!(state.message_state, MessageState::Unknown.to_u8());
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    control.shutdown();
    serving.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_lost_mid_load_loses_no_message() {
    let (a, b) = lose_an_upstream_mid_load(&[]).await;
    // What `a` had not taken when it went, `b` took (often `a` had done
    // everything by then: the point is that nothing is lost either way).
    assert!(a + b >= 300, "a {a}, b {b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weighted_route_shares_its_traffic_and_survives_losing_a_member() {
    let (a, b) = lose_an_upstream_mid_load(&["*=a:1+b:1"]).await;
    assert!(a + b >= 300, "a {a}, b {b}");
    // Both took a share before `a` went (1:1 of at least the first 100).
    assert!(a >= 20 && b >= 20, "a {a}, b {b}");
}

/// 300 pipelined submissions over upstreams `a` and `b` by `routes`; `a`
/// stops after 100 are accepted; every message still reaches a final
/// state (its receipt comes). The submits each upstream took.
async fn lose_an_upstream_mid_load(routes: &[&str]) -> (usize, usize) {
    let a = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let b = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let upstreams = [("a", a.server.smpp_addr()), ("b", b.server.smpp_addr())];
    let mut config = config(StoreConfig::Memory, &upstreams, routes);
    // Receipts owed by `a` when it goes are never sent: those end UNKNOWN.
    config.receipt_timeout = Duration::from_secs(1);
    let gateway = start(config).await.unwrap();
    wait_bound(&gateway, "a").await;
    wait_bound(&gateway, "b").await;
    let (client, inbound) = customer(&gateway, BindKind::Transceiver).await;

    let (ids, mut answered) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for n in 0..300 {
        let (client, ids) = (client.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let id = client
                .submit(message(&format!("4477009{n:05}")))
                .await
                .unwrap();
            ids.send(id.to_string_lossy().into_owned()).unwrap();
        }));
    }
    drop(ids);
    let mut accepted = std::collections::HashSet::new();
    while accepted.len() < 100 {
        accepted.insert(answered.recv().await.unwrap());
    }
    let a_submits = a.submits.clone();
    a.server.shutdown().await.unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    while let Some(id) = answered.recv().await {
        accepted.insert(id);
    }
    assert_eq!(accepted.len(), 300, "every submission accepted");

    let mut missing = accepted.clone();
    while !missing.is_empty() {
        let request = tokio::time::timeout(WAIT, inbound.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of 300 without a final state", missing.len()))
            .expect("the session is open");
        let receipt = request.receipt().expect("a receipt");
        assert!(
            matches!(
                receipt.state,
                MessageState::Delivered | MessageState::Unknown
            ),
            "{receipt:?}"
        );
        missing.remove(&receipt.id);
    }
    let counts = (a_submits.0.load(Ordering::Relaxed), b.count());
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
    counts
}

/// A submit whose text rides in `message_payload`: `len` octets of GSM text.
fn long_message(destination: &str, len: usize) -> SubmitSm {
    let mut sm = message(destination);
    sm.short_message = Default::default();
    sm.tlvs
        .set(TlvTag::MESSAGE_PAYLOAD, &vec![b'a'; len])
        .unwrap();
    sm
}

store_tests!(prepaid_accounts_are_charged_per_part_and_refused_when_exhausted: fjall, postgres);

async fn prepaid_accounts_are_charged_per_part_and_refused_when_exhausted(store: StoreConfig) {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let dir = tempfile::tempdir().unwrap();
    let cdr = dir.path().join("cdr.jsonl");
    let mut config = config(store, &[("a", up.server.smpp_addr())], &["*=a,rate=0.03"]);
    config.accounts.push("bundle:pw".parse().unwrap());
    config.balances = vec!["esme=0.10".parse().unwrap(), "bundle=2sms".parse().unwrap()];
    config.cdr = Some(cdr.clone());
    let gateway = start(config.clone()).await.unwrap();
    wait_bound(&gateway, "a").await;
    let (client, inbound) = customer(&gateway, BindKind::Transceiver).await;
    // 400 GSM characters: 3 parts on the air, 0.09.
    let id = client
        .submit(long_message("447700900001", 400))
        .await
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(gateway.quota("esme").balance, Some(10_000));
    let refused = client.submit(message("447700900002")).await;
    assert!(
        matches!(
            refused,
            Err(smpp_tokio::Error::Status(CommandStatus::SUBMIT_FAILED))
        ),
        "0.01 left, 0.03 asked: {refused:?}"
    );
    assert_eq!(gateway.quota("esme").balance, Some(10_000), "nothing taken");
    receipt_for(&inbound, &id).await;

    // An SMS bundle counts parts, whatever the rate.
    let bind = Bind {
        system_id: "bundle".into(),
        password: "pw".into(),
        interface_version: 0x34,
        ..Default::default()
    };
    let (bundle, _) = Client::connect(
        gateway.smpp_addr(),
        BindKind::Transmitter,
        bind,
        SessionConfig::default(),
    )
    .await
    .unwrap();
    bundle.submit(message("447700900003")).await.unwrap();
    bundle.submit(message("447700900004")).await.unwrap();
    assert!(bundle.submit(message("447700900005")).await.is_err());
    assert_eq!(gateway.quota("bundle").sms, Some(0));
    bundle.unbind().await.unwrap();
    client.unbind().await.unwrap();

    // The CDR of the delivered message carries its parts and its charge.
    wait_for("the CDR line", || {
        std::fs::read_to_string(&cdr).is_ok_and(|t| t.contains(&format!("\"{id}\"")))
    })
    .await;
    let text = std::fs::read_to_string(&cdr).unwrap();
    let line: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["message_id"] == id.as_str())
        .unwrap();
    assert_eq!(line["parts"], 3);
    assert_eq!(line["charge"], "0.09");
    assert_eq!(line["final_state"], "DELIVRD");
    assert_eq!(line["upstream"], "a");
    gateway.shutdown().await.unwrap();

    // A restart keeps what is left: the configured balance is not applied again.
    let gateway = start(config).await.unwrap();
    assert_eq!(gateway.quota("esme").balance, Some(10_000));
    assert_eq!(gateway.quota("bundle").sms, Some(0));
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_counts_sms_parts_not_submits() {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let mut config = config(StoreConfig::Memory, &[("a", up.server.smpp_addr())], &[]);
    config.tps_per_account = Some(2);
    let gateway = start(config).await.unwrap();
    let (client, _) = customer(&gateway, BindKind::Transmitter).await;
    // 3 parts can never fit 2 per second; 1 part fits (a new second at worst).
    let refused = client.submit(long_message("447700900001", 400)).await;
    assert!(
        matches!(
            refused,
            Err(smpp_tokio::Error::Status(CommandStatus::THROTTLED))
        ),
        "{refused:?}"
    );
    client.submit(message("447700900002")).await.unwrap();
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mo_message_goes_to_a_webhook_in_jasmin_s_format_until_it_answers() {
    let smsc = Server::bind("127.0.0.1:0", Scripted::default(), ServerConfig::default())
        .await
        .unwrap();
    let addr = smsc.local_addr().unwrap();
    let control = smsc.handle();
    let serving = tokio::spawn(smsc.run());
    // The receiver refuses the first call: the message comes again.
    let (receiver, hook) = Receiver::start(1).await;
    let mut config = config(StoreConfig::Memory, &[], &[]);
    config.upstreams = vec![format!("s=gw:pw@{addr}").parse().unwrap()];
    config.mo_routes = vec![format!("7000={hook},method=post").parse().unwrap()];
    let gateway = start(config).await.unwrap();
    wait_bound(&gateway, "s").await;
    let upstream_bind = control.receiver("gw").unwrap();
    upstream_bind
        .deliver(SubmitSm {
            source_addr: "447700900013".into(),
            destination_addr: "70001".into(),
            short_message: "STOP".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let calls = wait_calls(&receiver, 1).await;
    let fields: Vec<(String, String)> = form_urlencoded::parse(calls[0].as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("from"), Some("447700900013"));
    assert_eq!(get("to"), Some("70001"));
    assert_eq!(get("content"), Some("STOP"));
    assert_eq!(get("binary"), Some("53544f50"));
    assert_eq!(get("origin-connector"), Some("s"));
    assert!(
        receiver.seen.load(Ordering::SeqCst) >= 2,
        "refused once, then taken"
    );
    wait_for("the webhook done", || gateway.webhooks_owed() == 0).await;
    gateway.shutdown().await.unwrap();
    control.shutdown();
    serving.await.unwrap().unwrap();
}

/// What a pre-3.4 SMSC received: the TLVs of each submit_sm.
type Received = Arc<std::sync::Mutex<Vec<Tlvs>>>;

/// A pre-3.4 SMSC: its bind answer has no `sc_interface_version`, so the
/// sessions bound to it speak 3.3; it accepts every submit_sm. Written on
/// the sans-IO session directly (our servers always announce a version).
async fn old_smsc() -> (SocketAddr, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Received::default();
    let seen = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(old_smsc_connection(stream, seen.clone()));
        }
    });
    (addr, received)
}

async fn old_smsc_connection(mut stream: tokio::net::TcpStream, received: Received) {
    use smpp_proto::pdu::BindResp;
    use smpp_proto::session::{Event, Role, Session};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    #[allow(clippy::disallowed_methods)] // the test's own clock for a real socket
    let now = std::time::Instant::now;
    let config = Arc::new(SessionConfig::default());
    let mut session = Session::new(Role::Mc, config, now());
    let mut buf = vec![0u8; 4096];
    let mut out = Vec::new();
    let mut ids = 0u32;
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let took = session.handle_input(now(), rest);
            rest = &rest[took..];
            while let Some(event) = session.poll_event() {
                let answer = match event {
                    Event::BindRequest {
                        sequence_number,
                        kind,
                        ..
                    } => {
                        let resp = BindResp {
                            system_id: "OLD".into(),
                            ..Default::default()
                        };
                        Some((sequence_number, kind.response(resp)))
                    }
                    Event::Request(pdu) => {
                        let body = match &pdu.body {
                            Body::SubmitSm(sm) => {
                                received.lock().unwrap().push(sm.tlvs.clone());
                                ids += 1;
                                Body::SubmitSmResp(SubmitSmResp {
                                    message_id: ids.to_string().into(),
                                    ..Default::default()
                                })
                            }
                            other => Body::default_for(other.command_id().response_id().unwrap())
                                .unwrap(),
                        };
                        Some((pdu.sequence_number, body))
                    }
                    Event::Closed(_) => return,
                    _ => None,
                };
                if let Some((seq, body)) = answer {
                    session
                        .send_response(now(), seq, CommandStatus::OK, body)
                        .unwrap();
                }
            }
            while session.poll_transmit(now(), &mut out).is_some() {}
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

/// The gateway's upstream session speaks 3.3 to a pre-3.4 SMSC: a
/// message's TLVs are left out, and a message whose text is in
/// `message_payload` (which a 3.3 SMSC cannot take) fails at once with
/// ESME_RTLVNOTALLWD instead of being retried for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_3_4_upstream_gets_no_tlvs() {
    let (addr, received) = old_smsc().await;
    let gateway = start(config(StoreConfig::Memory, &[("old", addr)], &[]))
        .await
        .unwrap();
    wait_bound(&gateway, "old").await;
    let (client, inbound) = customer(&gateway, BindKind::Transceiver).await;

    let mut tagged = message("447700900001");
    tagged.tlvs.set_u16(TlvTag::USER_MESSAGE_REFERENCE, 7);
    client.submit(tagged).await.unwrap();
    wait_for("the old SMSC got it", || {
        received.lock().unwrap().len() == 1
    })
    .await;
    assert!(received.lock().unwrap()[0].is_empty(), "no TLVs to 3.3");

    let mut payload = message("447700900001");
    payload.short_message = Default::default();
    payload
        .tlvs
        .set(TlvTag::MESSAGE_PAYLOAD, b"the text is here")
        .unwrap();
    let id = client.submit(payload).await.unwrap();
    let receipt = receipt_for(&inbound, &id.to_string_lossy()).await;
    assert_eq!(receipt.state, MessageState::Rejected);
    assert_eq!(receipt.error.as_deref(), Some("0C1"), "ESME_RTLVNOTALLWD");
    wait_for("nothing left to forward", || {
        gateway.messages_forwarding() == 0
    })
    .await;
    assert_eq!(received.lock().unwrap().len(), 1, "never sent upstream");
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
}

/// Records the source address of each message an upstream finished.
#[derive(Debug, Default)]
struct Sources(std::sync::Mutex<Vec<String>>);

impl smpp_server::Observer for Sources {
    fn final_state(&self, event: &smpp_server::FinalEvent<'_>) {
        self.0.lock().unwrap().push(event.source.to_owned());
    }

    fn wants_final_states(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_over_tls_with_its_own_sender_id() {
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let mut serve = ServeConfig::for_tests();
    serve.listen = "127.0.0.1:0".into();
    serve.outcomes = vec![(MessageState::Delivered, 1)];
    serve.dlr_delay = Duration::ZERO;
    serve.tls = Some(smpp_server::TlsConfig {
        listen: "127.0.0.1:0".into(),
        cert: cert.clone(),
        key,
        client_ca: None,
    });
    let sources = Arc::new(Sources::default());
    let server = smpp_server::start_with(serve, sources.clone())
        .await
        .unwrap();
    let tls_addr = server.tls_addr().unwrap();
    let mut config = config(StoreConfig::Memory, &[], &[]);
    config.upstreams = vec![format!(
        "t=smppclient1:password@{tls_addr},ca={},source=Acme,system_type=GW",
        cert.display()
    )
    .parse()
    .unwrap()];
    let gateway = start(config).await.unwrap();
    wait_bound(&gateway, "t").await;
    let (client, inbound) = customer(&gateway, BindKind::Transceiver).await;
    let id = client.submit(message("447700900001")).await.unwrap();
    receipt_for(&inbound, &id.to_string_lossy()).await;
    wait_for("the upstream's final state", || {
        !sources.0.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(
        *sources.0.lock().unwrap(),
        ["Acme"],
        "the connector's sender id"
    );
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();

    // A CA that did not sign the upstream's certificate: no bind comes up.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let wrong_ca = dir.path().join("other.pem");
    std::fs::write(&wrong_ca, other.cert.pem()).unwrap();
    let mut config = config_with_upstream(&format!(
        "t=smppclient1:password@{tls_addr},ca={}",
        wrong_ca.display()
    ));
    config.store = StoreConfig::Memory;
    let gateway = start(config).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        gateway.upstream_binds("t"),
        Some(0),
        "an untrusted certificate"
    );
    gateway.shutdown().await.unwrap();
    server.shutdown().await.unwrap();
}

fn config_with_upstream(upstream: &str) -> GatewayConfig {
    let mut config = config(StoreConfig::Memory, &[], &[]);
    config.upstreams = vec![upstream.parse().unwrap()];
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_that_takes_no_receipts_is_refused_before_they_fill_the_memory() {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let mut config = config(StoreConfig::Memory, &[("a", up.server.smpp_addr())], &[]);
    config.max_receipts_owed = 3;
    let gateway = start(config).await.unwrap();
    wait_bound(&gateway, "a").await;
    let (client, _) = customer(&gateway, BindKind::Transmitter).await;
    for n in 0..3 {
        client
            .submit(message(&format!("4477009001{n}")))
            .await
            .unwrap();
    }
    wait_for("3 receipts owed", || gateway.receipts_owed() == 3).await;
    let refused = client.submit(message("447700900019")).await;
    assert!(
        matches!(
            refused,
            Err(smpp_tokio::Error::Status(CommandStatus::MESSAGE_QUEUE_FULL))
        ),
        "{refused:?}"
    );
    // Once a receiver takes them, the account is served again.
    let (receiver, inbound) = customer(&gateway, BindKind::Receiver).await;
    for _ in 0..3 {
        let request = tokio::time::timeout(WAIT, inbound.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(request.receipt().is_some());
    }
    wait_for("the receipts taken", || gateway.receipts_owed() == 0).await;
    let id = client.submit(message("447700900019")).await.unwrap();
    receipt_for(&inbound, &id.to_string_lossy()).await;
    client.unbind().await.unwrap();
    receiver.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

async fn cancel(client: &Client, id: &str) -> Result<(), smpp_tokio::Error> {
    let c = smpp_proto::pdu::CancelSm {
        message_id: id.to_owned().into(),
        ..Default::default()
    };
    client
        .request(Body::CancelSm(Box::new(c)))
        .await
        .map(|_| ())
}

store_tests!(cancel_sm_takes_a_queued_message_out_and_cancels_a_forwarded_one_upstream: memory, postgres);

async fn cancel_sm_takes_a_queued_message_out_and_cancels_a_forwarded_one_upstream(
    store: StoreConfig,
) {
    // Receipts in 30 s: a forwarded message stays en route meanwhile.
    let up = upstream(
        MessageState::Delivered,
        Duration::from_secs(30),
        "127.0.0.1:0",
    )
    .await;
    let down = free_port();
    let config = config(
        store,
        &[("a", up.server.smpp_addr()), ("down", down)],
        &["4470=down", "*=a"],
    );
    let gateway = start(config).await.unwrap();
    wait_bound(&gateway, "a").await;
    let (client, _inbound) = customer(&gateway, BindKind::Transceiver).await;

    // Queued (its only upstream is down): taken out here.
    let queued = client.submit(message("447000000001")).await.unwrap();
    let queued = queued.to_string_lossy().into_owned();
    assert_eq!(gateway.messages_forwarding(), 1);
    cancel(&client, &queued).await.unwrap();
    assert_eq!(gateway.messages_forwarding(), 0);
    let state = query(&client, &queued, "").await.unwrap();
    assert_eq!(state.message_state, MessageState::Deleted.to_u8());

    // Forwarded: cancelled at the upstream with its id.
    let sent = client.submit(message("447700900001")).await.unwrap();
    let sent = sent.to_string_lossy().into_owned();
    wait_for("forwarded", || up.count() == 1).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        // Until the upstream id is recorded, the message may still count as queued.
        match cancel(&client, &sent).await {
            Ok(()) => break,
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let state = query(&client, &sent, "").await.unwrap();
    assert_eq!(state.message_state, MessageState::Deleted.to_u8());

    // Final, unknown, or twice: refused.
    for id in [sent.as_str(), "FFFF", "not-hex"] {
        let refused = cancel(&client, id).await;
        assert!(
            matches!(
                refused,
                Err(smpp_tokio::Error::Status(CommandStatus::CANCEL_FAILED))
            ),
            "{id}: {refused:?}"
        );
    }
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

store_tests!(submit_multi_fans_out_under_one_id_and_lists_what_it_could_not_take: memory, postgres);

async fn submit_multi_fans_out_under_one_id_and_lists_what_it_could_not_take(store: StoreConfig) {
    use smpp_proto::pdu::{DestAddress, SubmitMulti};
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let config = config(store, &[("a", up.server.smpp_addr())], &["44=a"]);
    let gateway = start(config).await.unwrap();
    wait_bound(&gateway, "a").await;
    let (client, inbound) = customer(&gateway, BindKind::Transceiver).await;
    let sme = |addr: &str| DestAddress::Sme {
        ton: 1,
        npi: 1,
        addr: addr.to_owned().into(),
    };
    let multi = SubmitMulti::from_submit_sm(
        message("unused"),
        vec![
            sme("447700900001"),
            sme("33612345678"), // no route
            DestAddress::DistributionList("friends".into()),
            sme("447700900002"),
        ],
    );
    let answer = client
        .request(Body::SubmitMulti(Box::new(multi)))
        .await
        .unwrap();
    let Body::SubmitMultiResp(resp) = answer.body else {
        panic!("not a submit_multi_resp: {:?}", answer.body);
    };
    let id = resp.message_id.to_string_lossy().into_owned();
    let refused: Vec<(String, CommandStatus)> = resp
        .unsuccess_smes
        .iter()
        .map(|u| (u.addr.to_string_lossy().into_owned(), u.error_status))
        .collect();
    assert_eq!(
        refused,
        [
            (
                "33612345678".to_owned(),
                CommandStatus::INVALID_DESTINATION_ADDRESS
            ),
            (
                "friends".to_owned(),
                CommandStatus::INVALID_DISTRIBUTION_LIST_NAME
            ),
        ]
    );
    // Both destinations' receipts carry the one id the customer was given.
    receipt_for(&inbound, &id).await;
    receipt_for(&inbound, &id).await;
    assert_eq!(up.count(), 2);
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

/// A distribution list of the account expands to its members (each a
/// message under the one id); another account's list, or one nobody has,
/// is `ESME_RINVDLNAME` for that destination.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_multi_expands_the_account_s_distribution_lists() {
    use smpp_gateway::DistributionListConfig;
    use smpp_proto::pdu::{DestAddress, SubmitMulti};
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let mut config = config(
        StoreConfig::Memory,
        &[("a", up.server.smpp_addr())],
        &["44=a"],
    );
    config.distribution_lists = vec![
        "esme:staff=447700900001,447700900002".parse().unwrap(),
        DistributionListConfig::new("other", "board", vec!["447700900009".into()]).unwrap(),
    ];
    let gateway = start(config).await.unwrap();
    wait_bound(&gateway, "a").await;
    let (client, inbound) = customer(&gateway, BindKind::Transceiver).await;
    let multi = SubmitMulti::from_submit_sm(
        message("unused"),
        vec![
            DestAddress::DistributionList("staff".into()),
            DestAddress::DistributionList("board".into()), // another account's
            DestAddress::Sme {
                ton: 1,
                npi: 1,
                addr: "447700900003".into(),
            },
            DestAddress::DistributionList("staff".into()), // named twice: once
            DestAddress::DistributionList("nobody".into()),
        ],
    );
    let answer = client
        .request(Body::SubmitMulti(Box::new(multi)))
        .await
        .unwrap();
    let Body::SubmitMultiResp(resp) = answer.body else {
        panic!("not a submit_multi_resp: {:?}", answer.body);
    };
    let id = resp.message_id.to_string_lossy().into_owned();
    let refused: Vec<(String, CommandStatus)> = resp
        .unsuccess_smes
        .iter()
        .map(|u| (u.addr.to_string_lossy().into_owned(), u.error_status))
        .collect();
    assert_eq!(
        refused,
        [
            (
                "board".to_owned(),
                CommandStatus::INVALID_DISTRIBUTION_LIST_NAME
            ),
            (
                "nobody".to_owned(),
                CommandStatus::INVALID_DISTRIBUTION_LIST_NAME
            ),
        ]
    );
    for _ in 0..3 {
        receipt_for(&inbound, &id).await;
    }
    assert_eq!(up.count(), 3, "two members and one address");
    // A list alone that the account does not have: the whole request fails.
    let multi = SubmitMulti::from_submit_sm(
        message("unused"),
        vec![DestAddress::DistributionList("board".into())],
    );
    let refused = client.request(Body::SubmitMulti(Box::new(multi))).await;
    assert!(
        matches!(
            refused,
            Err(smpp_tokio::Error::Status(
                CommandStatus::INVALID_DISTRIBUTION_LIST_NAME
            ))
        ),
        "{refused:?}"
    );
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}

/// An SMSC that records the texts it is sent and the replaces it gets
/// (answering ids `up-1`, `up-2`...).
#[derive(Default)]
struct Recorder {
    texts: std::sync::Mutex<Vec<Vec<u8>>>,
    replaces: std::sync::Mutex<Vec<(String, Vec<u8>)>>,
}

struct RecorderRef(Arc<Recorder>);

impl Handler<Connection> for RecorderRef {
    async fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
        Ok(())
    }

    async fn submit_sm(&self, _: &Connection, sm: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        let mut texts = self.0.texts.lock().unwrap();
        texts.push(sm.short_message.to_vec());
        Ok(SubmitSmResp {
            message_id: format!("up-{}", texts.len()).into(),
            ..Default::default()
        })
    }

    async fn replace_sm(
        &self,
        _: &Connection,
        r: smpp_proto::pdu::ReplaceSm,
    ) -> Result<Tlvs, CommandStatus> {
        self.0.replaces.lock().unwrap().push((
            r.message_id.to_string_lossy().into_owned(),
            r.short_message.to_vec(),
        ));
        Ok(Tlvs::new())
    }
}

async fn replace(
    client: &Client,
    id: &str,
    source: &str,
    text: &str,
) -> Result<(), smpp_tokio::Error> {
    let r = smpp_proto::pdu::ReplaceSm {
        message_id: id.to_owned().into(),
        source_addr: source.to_owned().into(),
        registered_delivery: 1,
        short_message: text.to_owned().into(),
        ..Default::default()
    };
    client
        .request(Body::ReplaceSm(Box::new(r)))
        .await
        .map(|_| ())
}

/// `replace_sm` on our ids: a queued message is changed before it goes
/// (the upstream gets the new text), a forwarded one is replaced upstream
/// with the upstream's id; someone else's id, another source, a text of
/// another number of parts: `ESME_RREPLACEFAIL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_sm_changes_a_queued_message_and_replaces_a_forwarded_one_upstream() {
    let later = free_port();
    let mut config = config(StoreConfig::Memory, &[], &[]);
    config.upstreams = vec![format!("r=gw:pw@{later}").parse().unwrap()];
    let gateway = start(config).await.unwrap();
    let (client, _) = customer(&gateway, BindKind::Transceiver).await;
    let first = client.submit(message("447700900001")).await.unwrap();
    let first = first.to_string_lossy().into_owned();
    let second = client.submit(message("447700900002")).await.unwrap();
    let second = second.to_string_lossy().into_owned();

    // Queued (no upstream up): changed here.
    replace(&client, &first, "12345", "hello again")
        .await
        .unwrap();
    let failed = |r: Result<(), smpp_tokio::Error>| {
        matches!(
            r,
            Err(smpp_tokio::Error::Status(CommandStatus::REPLACE_FAILED))
        )
    };
    assert!(
        failed(replace(&client, &first, "54321", "x").await),
        "another source"
    );
    assert!(
        failed(replace(&client, "999999", "", "x").await),
        "not ours"
    );
    let mut long = smpp_proto::pdu::ReplaceSm {
        message_id: first.clone().into(),
        ..Default::default()
    };
    long.tlvs
        .set(TlvTag::MESSAGE_PAYLOAD, "x".repeat(400).as_bytes())
        .unwrap();
    let refused = client
        .request(Body::ReplaceSm(Box::new(long)))
        .await
        .map(|_| ());
    assert!(failed(refused), "three parts for one");

    let recorder = Arc::new(Recorder::default());
    let smsc = Server::bind(
        later.to_string().as_str(),
        RecorderRef(recorder.clone()),
        ServerConfig::default(),
    )
    .await
    .unwrap();
    let control = smsc.handle();
    let serving = tokio::spawn(smsc.run());
    wait_for("both forwarded and recorded", || {
        gateway.messages_forwarding() == 0
    })
    .await;
    let mut texts = recorder.texts.lock().unwrap().clone();
    texts.sort();
    assert_eq!(
        texts,
        [b"hello".to_vec(), b"hello again".to_vec()],
        "in the queue, replaced"
    );
    let second_upstream = if recorder.texts.lock().unwrap()[0] == b"hello" {
        "up-1"
    } else {
        "up-2"
    };

    // Forwarded: replaced upstream, with the upstream's id.
    replace(&client, &second, "12345", "changed").await.unwrap();
    assert_eq!(
        recorder.replaces.lock().unwrap().clone(),
        [(second_upstream.to_owned(), b"changed".to_vec())]
    );
    client.unbind().await.unwrap();
    gateway.shutdown().await.unwrap();
    control.shutdown();
    serving.await.unwrap().unwrap();
}

/// Sends `prefix` then a bind_transmitter of esme/secret on a fresh
/// connection; the bind answer's status (`None`: closed without one).
async fn raw_bind(addr: SocketAddr, prefix: &[u8]) -> Option<u32> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let bind = Bind {
        system_id: "esme".into(),
        password: "secret".into(),
        interface_version: 0x34,
        ..Default::default()
    };
    let pdu = smpp_proto::pdu::Pdu::request(
        smpp_proto::pdu::SequenceNumber::new(1),
        Body::BindTransmitter(Box::new(bind)),
    )
    .to_vec()
    .unwrap();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut out = prefix.to_vec();
    out.extend(pdu);
    tcp.write_all(&out).await.ok()?;
    let mut header = [0u8; 16];
    tokio::time::timeout(WAIT, tcp.read_exact(&mut header))
        .await
        .ok()?
        .ok()?;
    Some(u32::from_be_bytes(header[8..12].try_into().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_behind_a_balancer_and_over_tls() {
    let up = upstream(MessageState::Delivered, Duration::ZERO, "127.0.0.1:0").await;
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let mut config = config(StoreConfig::Memory, &[("a", up.server.smpp_addr())], &[]);
    // Only customers from 192.0.2.0/24, which only the balancer's header can say.
    config.accounts = vec!["esme:secret@192.0.2.0/24".parse().unwrap()];
    config.proxy_protocol = smpp_server::config::parse_cidr_list("127.0.0.1/32").unwrap();
    config.tls = Some(smpp_server::TlsConfig {
        listen: "127.0.0.1:0".into(),
        cert: cert.clone(),
        key,
        client_ca: None,
    });
    let gateway = start(config).await.unwrap();
    let addr = gateway.smpp_addr();
    let header =
        |client: &str| format!("PROXY TCP4 {client} 127.0.0.1 40000 2775\r\n").into_bytes();
    assert_eq!(
        raw_bind(addr, &header("192.0.2.7")).await,
        Some(0),
        "the carried address is allowed"
    );
    assert_eq!(
        raw_bind(addr, &header("198.51.100.1")).await,
        Some(CommandStatus::BIND_FAILED.0),
        "the carried address is not"
    );
    assert_eq!(
        raw_bind(addr, b"").await,
        None,
        "a trusted source without a header is closed"
    );

    // Over TLS (the header comes first there too).
    use smpp_tokio::rustls::{self, pki_types::ServerName, RootCertStore};
    let tls_addr = gateway.tls_addr().expect("a TLS listener");
    let mut roots = RootCertStore::empty();
    roots.add(made.cert.der().clone()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut tcp = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut tcp, &header("192.0.2.9"))
        .await
        .unwrap();
    let stream = smpp_tokio::tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("the TLS handshake after the header");
    drop(stream);
    gateway.shutdown().await.unwrap();
    up.server.shutdown().await.unwrap();
}
