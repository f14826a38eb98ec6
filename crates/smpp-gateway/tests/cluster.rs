//! Several gateway nodes on one PostgreSQL database (each test its own
//! database): receipts and MO reach the customer on whichever node it is
//! bound to, the cluster holds no more upstream binds than a connector
//! has, a node that stops hands its work over, a change made on one node is
//! in force on the others.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smpp_gateway::{start, GatewayConfig, RunningGateway, StoreConfig};
use smpp_proto::message::receipt::{DeliveryReceipt, MessageState};
use smpp_proto::pdu::{Bind, Body, CommandStatus, EsmClass, SubmitSm};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_server::{BindEvent, Observer, RequestEvent, RunningServer, ServeConfig};
use smpp_tokio::{Client, Inbound};

mod support;
use support::*;

/// Counts an upstream's binds: now, and the most at once.
#[derive(Default)]
struct BindCount {
    now: AtomicUsize,
    most: AtomicUsize,
    open: Mutex<HashSet<u64>>,
    submits: AtomicUsize,
}

impl Observer for BindCount {
    fn bind(&self, event: &BindEvent<'_>) {
        if event.status == CommandStatus::OK {
            self.open.lock().unwrap().insert(event.connection);
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
        }
    }

    fn session_closed(&self, connection: u64, _account: Option<&str>) {
        if self.open.lock().unwrap().remove(&connection) {
            self.now.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn request(&self, event: &RequestEvent<'_>) {
        if event.command == smpp_proto::pdu::CommandId::SUBMIT_SM
            && event.status == CommandStatus::OK
        {
            self.submits.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn counted_upstream() -> (RunningServer, Arc<BindCount>) {
    let mut config = ServeConfig::for_tests();
    config.listen = "127.0.0.1:0".into();
    config.outcomes = vec![(MessageState::Delivered, 1)];
    config.dlr_delay = Duration::ZERO;
    let count = Arc::new(BindCount::default());
    let server = smpp_server::start_with(config, count.clone())
        .await
        .unwrap();
    (server, count)
}

fn node_config(url: &str, upstream: &str) -> GatewayConfig {
    let mut config = config(StoreConfig::Postgres(url.into()), &[], &[]);
    config.upstreams = vec![upstream.parse().unwrap()];
    config.takeover = Duration::from_secs(3);
    config
}

async fn customer(gateway: &RunningGateway, kind: BindKind) -> (Client, Inbound) {
    let bind = Bind {
        system_id: "esme".into(),
        password: "secret".into(),
        interface_version: 0x34,
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

fn binds(nodes: &[&RunningGateway], connector: &str) -> usize {
    nodes
        .iter()
        .map(|n| n.upstream_binds(connector).unwrap_or(0))
        .sum()
}

/// Receives deliveries on `inbound` until `n` receipts came (panics after
/// the wait); their ids.
async fn receipts(inbound: &Inbound, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    while ids.len() < n {
        let request = tokio::time::timeout(Duration::from_secs(20), inbound.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {n} receipts in time", ids.len()))
            .expect("the session is open");
        let Body::DeliverSm(sm) = request.body() else {
            panic!("not a deliver_sm: {:?}", request.body());
        };
        assert!(EsmClass::from(sm.esm_class).is_delivery_receipt());
        let text = DeliveryReceipt::parse(std::str::from_utf8(&sm.short_message).unwrap()).unwrap();
        ids.push(text.id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_on_one_node_gets_the_receipts_of_what_it_sent_through_another() {
    let db = TestDatabase::new().await;
    let (up, count) = counted_upstream().await;
    let connector = format!("a=smppclient1:password@{},binds=1", up.smpp_addr());
    let a = start(node_config(&db.url, &connector)).await.unwrap();
    let b = start(node_config(&db.url, &connector)).await.unwrap();
    // One bind for the connector: one node holds it.
    wait_for("the connector's bind", || binds(&[&a, &b], "a") == 1).await;

    let (receiver, inbound) = customer(&a, BindKind::Receiver).await;
    let (transmitter, _) = customer(&b, BindKind::Transmitter).await;
    let mut sent = HashSet::new();
    for i in 0..30 {
        let id = transmitter
            .submit(message(&format!("4477009{i:05}")))
            .await
            .unwrap();
        sent.insert(id.to_string_lossy().into_owned());
    }
    let got = receipts(&inbound, sent.len()).await;
    let unique: HashSet<String> = got.iter().cloned().collect();
    assert_eq!(
        unique, sent,
        "every receipt, for the ids the customer was given"
    );
    assert_eq!(got.len(), unique.len(), "none twice");
    // Nothing more comes.
    let more = tokio::time::timeout(Duration::from_millis(1500), inbound.recv()).await;
    assert!(more.is_err(), "a receipt came twice: {more:?}");
    assert_eq!(
        count.submits.load(Ordering::SeqCst),
        sent.len(),
        "each forwarded once"
    );
    assert_eq!(
        count.most.load(Ordering::SeqCst),
        1,
        "never two binds at the upstream"
    );

    receiver.unbind().await.unwrap();
    transmitter.unbind().await.unwrap();
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    up.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_holds_the_connector_s_binds_and_takes_them_over_when_a_node_stops() {
    let db = TestDatabase::new().await;
    let (up, count) = counted_upstream().await;
    let connector = format!("a=smppclient1:password@{},binds=3", up.smpp_addr());
    let a = start(node_config(&db.url, &connector)).await.unwrap();
    let b = start(node_config(&db.url, &connector)).await.unwrap();
    wait_for("three binds in the cluster", || binds(&[&a, &b], "a") == 3).await;
    // Shared: the first node gives up what is beyond its share (two of three).
    wait_for("the binds shared 2 + 1", || {
        binds(&[&a, &b], "a") == 3
            && a.upstream_binds("a").unwrap_or(0) >= 1
            && b.upstream_binds("a").unwrap_or(0) >= 1
    })
    .await;
    // A while later: still three (each node would open three alone).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(binds(&[&a, &b], "a"), 3);
    assert_eq!(count.now.load(Ordering::SeqCst), 3, "at the upstream");

    // The node with most of them goes: the other takes them over.
    let (going, staying) = if a.upstream_binds("a") >= Some(2) {
        (a, b)
    } else {
        (b, a)
    };
    let (receiver, inbound) = customer(&staying, BindKind::Receiver).await;
    let (transmitter, _) = customer(&going, BindKind::Transmitter).await;
    let id = transmitter.submit(message("447700900001")).await.unwrap();
    transmitter.unbind().await.unwrap();
    going.shutdown().await.unwrap();
    let started = std::time::Instant::now();
    wait_for("the slots taken over", || {
        staying.upstream_binds("a") == Some(3)
    })
    .await;
    eprintln!("bind slots taken over in {:?}", started.elapsed());
    assert_eq!(
        receipts(&inbound, 1).await,
        [id.to_string_lossy().into_owned()]
    );
    assert!(
        count.most.load(Ordering::SeqCst) <= 3,
        "never more than three"
    );
    receiver.unbind().await.unwrap();
    staying.shutdown().await.unwrap();
    up.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mo_reaches_the_customer_bound_to_the_node_without_the_upstream_bind() {
    let db = TestDatabase::new().await;
    let (up, _) = counted_upstream().await;
    let connector = format!("a=smppclient1:password@{},binds=1", up.smpp_addr());
    let mut first = node_config(&db.url, &connector);
    first.mo_routes = vec!["7000=esme".parse().unwrap()];
    let a = start(first).await.unwrap();
    wait_for("a's bind", || a.upstream_binds("a") == Some(1)).await;
    let mut second = node_config(&db.url, &connector);
    second.mo_routes = vec!["7000=esme".parse().unwrap()];
    let b = start(second).await.unwrap();
    // The customer binds to b; the upstream's MO arrives on a's bind.
    let (receiver, inbound) = customer(&b, BindKind::Receiver).await;
    // Once b has said the customer is bound there.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    up.smsc()
        .inject_mo("447700900013", "70001", 0, b"STOP")
        .await
        .unwrap();
    let request = tokio::time::timeout(Duration::from_secs(20), inbound.recv())
        .await
        .expect("the MO in time")
        .expect("the session is open");
    let Body::DeliverSm(sm) = request.body() else {
        panic!("not a deliver_sm: {:?}", request.body());
    };
    assert!(!EsmClass::from(sm.esm_class).is_receipt());
    assert_eq!(&sm.short_message[..], b"STOP");
    drop(request);
    receiver.unbind().await.unwrap();
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    up.shutdown().await.unwrap();
}

async fn bind_as(gateway: &RunningGateway, id: &str, password: &str) -> bool {
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
            let _ = client.unbind().await;
            true
        }
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_change_on_one_node_is_in_force_on_the_other_without_a_restart() {
    let db = TestDatabase::new().await;
    let (up1, _) = counted_upstream().await;
    let (up2, count2) = counted_upstream().await;
    let connector = format!("a=smppclient1:password@{},binds=2", up1.smpp_addr());
    let a = start(node_config(&db.url, &connector)).await.unwrap();
    let b = start(node_config(&db.url, &connector)).await.unwrap();
    let base = serve(a.http_router(smpp_gateway::http::HttpOptions::default())).await;
    let http = reqwest::Client::new();

    // An account made on a binds on b.
    let made = http
        .put(format!("{base}/api/v1/admin/accounts/newcomer"))
        .json(&serde_json::json!({"password": "pw2"}))
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success(), "{}", made.status());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !bind_as(&b, "newcomer", "pw2").await {
        assert!(tokio::time::Instant::now() < deadline, "the account on b");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A connector and a route made on a carry b's next message.
    let made = http
        .put(format!("{base}/api/v1/admin/connectors/b"))
        .json(&serde_json::json!({
            "system_id": "smppclient1", "password": "password",
            "address": up2.smpp_addr().to_string(), "binds": 2,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status().as_u16(), 201);
    let routed = http
        .put(format!("{base}/api/v1/admin/routes"))
        .json(&serde_json::json!({"routes": ["4470=b", "*=a"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(routed.status().as_u16(), 200);
    // b runs the connector too (its binds go to whichever node takes the
    // slots first: the message goes through a node holding one).
    wait_for("connector b in the cluster", || binds(&[&a, &b], "b") == 2).await;
    assert!(b.upstream_binds("b").is_some(), "b knows connector b");
    let (transmitter, _) = customer(&b, BindKind::Transmitter).await;
    transmitter.submit(message("447012345678")).await.unwrap();
    wait_for("the message at upstream b", || {
        count2.submits.load(Ordering::SeqCst) == 1
    })
    .await;

    // A balance set on a is b's too.
    let set = http
        .post(format!("{base}/api/v1/admin/accounts/esme/balance"))
        .json(&serde_json::json!({"set_sms": 2}))
        .send()
        .await
        .unwrap();
    assert!(set.status().is_success());
    wait_for("the quota on b", || b.quota("esme").sms == Some(2)).await;

    transmitter.unbind().await.unwrap();
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    up1.shutdown().await.unwrap();
    up2.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balance_spent_from_two_nodes_at_once_accepts_exactly_what_it_holds() {
    let db = TestDatabase::new().await;
    let (up, count) = counted_upstream().await;
    let connector = format!("a=smppclient1:password@{},binds=2", up.smpp_addr());
    let mut first = node_config(&db.url, &connector);
    first.balances = vec!["esme=25sms".parse().unwrap()];
    let a = start(first.clone()).await.unwrap();
    let b = start(first).await.unwrap();
    assert_eq!(b.quota("esme").sms, Some(25), "configured once, read by b");
    let (ta, _) = customer(&a, BindKind::Transmitter).await;
    let (tb, _) = customer(&b, BindKind::Transmitter).await;
    let send = |client: Client| async move {
        let mut accepted = 0;
        let mut refused = 0;
        for i in 0..20 {
            match client.submit(message(&format!("44770090{i:04}"))).await {
                Ok(_) => accepted += 1,
                Err(smpp_tokio::Error::Status(s)) => {
                    assert_ne!(s, CommandStatus::SYSTEM_ERROR, "refused as exhausted");
                    refused += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
        client.unbind().await.unwrap();
        (accepted, refused)
    };
    let (one, two) = tokio::join!(send(ta), send(tb));
    assert_eq!(one.0 + two.0, 25, "accepted: {one:?} {two:?}");
    assert_eq!(one.1 + two.1, 15);
    wait_for("every accepted one forwarded", || {
        count.submits.load(Ordering::SeqCst) == 25
    })
    .await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    up.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_s_rate_limit_holds_across_nodes() {
    let db = TestDatabase::new().await;
    let (up, _) = counted_upstream().await;
    let connector = format!("a=smppclient1:password@{},binds=2", up.smpp_addr());
    let mut first = node_config(&db.url, &connector);
    first.tps_per_account = Some(100);
    let a = start(first.clone()).await.unwrap();
    let b = start(first).await.unwrap();
    let (ta, _) = customer(&a, BindKind::Transmitter).await;
    let (tb, _) = customer(&b, BindKind::Transmitter).await;
    // Each node hears of the other's bind (a beat), then the limit is shared.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Three whole seconds of the clock: the limit counts per second.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let to_next = Duration::from_millis(1000 - u64::from(now.subsec_millis()) + 50);
    tokio::time::sleep(to_next).await;
    let until = tokio::time::Instant::now() + Duration::from_millis(2900);
    let send = |client: Client| async move {
        let mut accepted = 0;
        let mut i = 0u32;
        while tokio::time::Instant::now() < until {
            i += 1;
            match client.submit(message(&format!("4477{i:08}"))).await {
                Ok(_) => accepted += 1,
                Err(smpp_tokio::Error::Status(CommandStatus::THROTTLED)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        client.unbind().await.unwrap();
        accepted
    };
    let (one, two) = tokio::join!(send(ta), send(tb));
    let total = one + two;
    // 100 a second for three seconds, within 10 %.
    assert!(
        (270..=330).contains(&total),
        "accepted {total} ({one} + {two})"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    up.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_database_is_away_customers_get_a_temporary_error_and_nothing_accepted_is_lost() {
    let db = TestDatabase::new().await;
    let (up, _) = counted_upstream().await;
    let connector = format!("a=smppclient1:password@{},binds=2", up.smpp_addr());
    let a = start(node_config(&db.url, &connector)).await.unwrap();
    let b = start(node_config(&db.url, &connector)).await.unwrap();
    let (receiver, inbound) = customer(&b, BindKind::Receiver).await;
    let (transmitter, _) = customer(&a, BindKind::Transmitter).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let sending = tokio::spawn(async move {
        let mut accepted = HashSet::new();
        let mut refused = 0;
        let until = tokio::time::Instant::now() + Duration::from_secs(6);
        let mut i = 0u32;
        while tokio::time::Instant::now() < until {
            i += 1;
            match transmitter.submit(message(&format!("4477{i:08}"))).await {
                Ok(id) => {
                    accepted.insert(id.to_string_lossy().into_owned());
                }
                Err(smpp_tokio::Error::Status(status)) => {
                    assert_eq!(status, CommandStatus::SYSTEM_ERROR, "a temporary error");
                    refused += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("{e}"),
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        transmitter.unbind().await.unwrap();
        (accepted, refused)
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    db.outage(true).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    db.outage(false).await;
    let (accepted, refused) = sending.await.unwrap();
    assert!(refused > 0, "the outage was seen");
    // Every message accepted, before, during or after, gets its receipt.
    let mut got = HashSet::new();
    while got.len() < accepted.len() {
        let Ok(Some(request)) = tokio::time::timeout(Duration::from_secs(20), inbound.recv()).await
        else {
            let missing: Vec<&String> = accepted.difference(&got).collect();
            let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            for id in &missing {
                let id = smpp_gateway::parse_id(id).unwrap() as i64;
                let m = client
                    .query(
                        "SELECT node, unforwarded, waiting_due, final_ms FROM messages WHERE id = $1",
                        &[&id],
                    )
                    .await
                    .unwrap();
                let r = client
                    .query("SELECT owner FROM receipts_owed WHERE message = $1", &[&id])
                    .await
                    .unwrap();
                let ups = client
                    .query(
                        "SELECT convert_from(upstream_id, 'UTF8') FROM upstream_ids WHERE message = $1",
                        &[&id],
                    )
                    .await
                    .unwrap();
                for row in &ups {
                    let up_id: String = row.get(0);
                    let views = up.smsc().search(&Default::default(), 1_000_000);
                    let view = views.iter().find(|v| v.id.eq_ignore_ascii_case(&up_id));
                    eprintln!("  upstream id {up_id}: {view:?}");
                }
                let held = client
                    .query("SELECT count(*) FROM receipts_held", &[])
                    .await
                    .unwrap();
                eprintln!("  held in the store: {:?}", held[0].get::<_, i64>(0));
                eprintln!(
                    "missing {id}: message {:?} receipts {:?}",
                    m.iter()
                        .map(|row| (
                            row.get::<_, Option<String>>(0),
                            row.get::<_, bool>(1),
                            row.get::<_, Option<i64>>(2),
                            row.get::<_, Option<i64>>(3)
                        ))
                        .collect::<Vec<_>>(),
                    r.iter()
                        .map(|row| row.get::<_, Option<String>>(0))
                        .collect::<Vec<_>>()
                );
            }
            let nodes = client.query("SELECT id FROM nodes", &[]).await.unwrap();
            eprintln!(
                "nodes {:?}; a has {} owed, b {}",
                nodes
                    .iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect::<Vec<_>>(),
                a.receipts_owed(),
                b.receipts_owed()
            );
            panic!("{} receipts missing", missing.len());
        };
        let receipt = request.receipt().expect("a receipt");
        got.insert(receipt.id);
    }
    assert_eq!(got, accepted);
    receiver.unbind().await.unwrap();
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    up.shutdown().await.unwrap();
}
