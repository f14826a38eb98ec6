//! `smpp serve` run in-process (`serve::start`) on 127.0.0.1:0, driven by
//! smpp-tokio's `Client`: binds, every operation, receipts, routing, rules.

use std::time::Duration;

use smpp_cli::serve::{self, Account, Route, Rule, RunningServer, ServeConfig};
use smpp_proto::message::{MessageState, ShortMessage};
use smpp_proto::pdu::{
    Bind, Body, BroadcastSm, CancelBroadcastSm, CancelSm, CommandStatus, DestAddress,
    QueryBroadcastSm, QuerySm, ReplaceSm, SubmitMulti, SubmitSm, TlvTag, Tlvs,
};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::{Client, Error, Inbound, InboundRequest};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

async fn server(config: ServeConfig) -> RunningServer {
    serve::start(config).await.expect("server starts")
}

fn accounts(list: &[(&str, &str)]) -> Vec<Account> {
    list.iter().map(|(id, pw)| Account::new(*id, *pw)).collect()
}

async fn bind_with(
    srv: &RunningServer,
    kind: BindKind,
    system_id: &str,
    password: &str,
    range: &str,
) -> Result<(Client, Inbound), Error> {
    bind_version(srv, kind, system_id, password, range, 0x34).await
}

async fn bind_version(
    srv: &RunningServer,
    kind: BindKind,
    system_id: &str,
    password: &str,
    range: &str,
    interface_version: u8,
) -> Result<(Client, Inbound), Error> {
    let bind = Bind {
        system_id: system_id.to_owned().into(),
        password: password.to_owned().into(),
        address_range: range.to_owned().into(),
        interface_version,
        ..Default::default()
    };
    timeout(
        WAIT,
        Client::connect(
            srv.smpp_addr(),
            kind,
            bind,
            SessionConfig::default().with_max_in_flight(64),
        ),
    )
    .await
    .expect("bind answered in time")
}

async fn bind(srv: &RunningServer, kind: BindKind) -> (Client, Inbound) {
    bind_with(srv, kind, "smppclient1", "password", "")
        .await
        .expect("bind accepted")
}

/// [`bind`] as an SMPP 5.0 ESME (broadcasts, billing_identification).
async fn bind_v50(srv: &RunningServer, kind: BindKind) -> (Client, Inbound) {
    bind_version(srv, kind, "smppclient1", "password", "", 0x50)
        .await
        .expect("bind accepted")
}

fn sm(to: &str, text: &str, registered_delivery: u8) -> SubmitSm {
    SubmitSm {
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: "447700900001".into(),
        dest_addr_ton: 1,
        dest_addr_npi: 1,
        destination_addr: to.to_owned().into(),
        registered_delivery,
        short_message: text.as_bytes().to_vec().into(),
        ..Default::default()
    }
}

async fn next(inbound: &mut Inbound) -> InboundRequest {
    timeout(WAIT, inbound.recv())
        .await
        .expect("a request in time")
        .expect("session open")
}

fn status(e: Error) -> CommandStatus {
    match e {
        Error::Status(s) => s,
        other => panic!("expected an error status, got {other:?}"),
    }
}

async fn query(client: &Client, id: &str) -> Result<(u8, String), CommandStatus> {
    let q = QuerySm {
        message_id: id.to_owned().into(),
        source_addr: "447700900001".into(),
        source_addr_ton: 1,
        source_addr_npi: 1,
        ..Default::default()
    };
    match client.request(Body::QuerySm(Box::new(q))).await {
        Ok(pdu) => match pdu.body {
            Body::QuerySmResp(r) => Ok((r.message_state, r.final_date.to_string_lossy().into())),
            other => panic!("unexpected {other:?}"),
        },
        Err(e) => Err(status(e)),
    }
}

#[tokio::test]
async fn binds_of_each_kind_and_bad_credentials() {
    let srv = server(ServeConfig::for_tests()).await;
    for kind in BindKind::ALL {
        let (client, _inbound) = bind(&srv, kind).await;
        client.unbind().await.unwrap();
    }
    let wrong_id = bind_with(&srv, BindKind::Transmitter, "nobody", "password", "").await;
    assert_eq!(
        status(wrong_id.unwrap_err()),
        CommandStatus::INVALID_SYSTEM_ID
    );
    let wrong_pw = bind_with(&srv, BindKind::Receiver, "smppclient1", "passwor", "").await;
    assert_eq!(
        status(wrong_pw.unwrap_err()),
        CommandStatus::INVALID_PASSWORD
    );
    // Still accepting after refusals.
    let (client, _inbound) = bind(&srv, BindKind::Transceiver).await;
    client.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn max_binds_per_account_refuses_the_extra_bind() {
    let mut config = ServeConfig::for_tests();
    config.max_binds_per_account = Some(1);
    let srv = server(config).await;
    let (first, _i) = bind(&srv, BindKind::Transmitter).await;
    let second = bind_with(&srv, BindKind::Receiver, "smppclient1", "password", "").await;
    assert_eq!(status(second.unwrap_err()), CommandStatus::BIND_FAILED);
    first.unbind().await.unwrap();
    // The slot is free again once the first session is gone.
    let mut again = None;
    for _ in 0..50 {
        if let Ok(b) = bind_with(&srv, BindKind::Receiver, "smppclient1", "password", "").await {
            again = Some(b);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "bind after the first one left");
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn submit_gets_a_receipt_on_the_transceiver_and_query_reports_delivered() {
    let srv = server(ServeConfig::for_tests()).await;
    let (client, mut inbound) = bind(&srv, BindKind::Transceiver).await;
    let id = client
        .submit(sm("447700900002", "Hello receipt", 1))
        .await
        .unwrap();
    let id = id.to_string_lossy().into_owned();
    let req = next(&mut inbound).await;
    let receipt = req.receipt().expect("a receipt");
    assert_eq!(receipt.id, id);
    assert_eq!(receipt.state, MessageState::Delivered);
    assert_eq!(receipt.text.as_deref(), Some("Hello receipt"));
    let Body::DeliverSm(d) = req.body() else {
        panic!("deliver_sm expected")
    };
    assert!(d.esm_class().is_delivery_receipt());
    assert_eq!(d.source_addr, "447700900002");
    assert_eq!(d.destination_addr, "447700900001");
    assert_eq!(d.tlvs.receipted_message_id(), Some(id.as_bytes()));
    assert_eq!(d.tlvs.message_state(), Some(2));
    drop(req); // answers OK

    let (state, final_date) = query(&client, &id).await.unwrap();
    assert_eq!(state, MessageState::Delivered.to_u8());
    assert_eq!(final_date.len(), 16, "{final_date:?}");
    let view = srv.smsc().message(&id).expect("the HTTP view finds it");
    assert_eq!(view.state, "DELIVRD");
    assert_eq!(view.receipts_sent, 1);

    // No receipt when none is asked for.
    client.submit(sm("447700900003", "quiet", 0)).await.unwrap();
    assert!(timeout(Duration::from_millis(300), inbound.recv())
        .await
        .is_err());
    client.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn receipt_is_stored_and_forwarded_to_a_receiver_that_binds_later() {
    let srv = server(ServeConfig::for_tests()).await;
    let (tx, _inbound) = bind(&srv, BindKind::Transmitter).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = tx
            .submit(sm("447700900002", &format!("msg {i}"), 1))
            .await
            .unwrap();
        ids.push(id.to_string_lossy().into_owned());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (rx, mut inbound) = bind(&srv, BindKind::Receiver).await;
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(next(&mut inbound).await.receipt().expect("receipt").id);
    }
    got.sort();
    ids.sort();
    assert_eq!(got, ids);
    rx.unbind().await.unwrap();
    tx.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_refused_receipt_is_retried() {
    let srv = server(ServeConfig::for_tests()).await;
    let (client, mut inbound) = bind(&srv, BindKind::Transceiver).await;
    let id = client.submit(sm("4477", "retry me", 1)).await.unwrap();
    let first = next(&mut inbound).await;
    assert_eq!(first.receipt().unwrap().id, id.to_string_lossy());
    first.reject(CommandStatus::SYSTEM_ERROR);
    let again = next(&mut inbound).await;
    assert_eq!(again.receipt().unwrap().id, id.to_string_lossy());
    drop(again);
    client.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn query_cancel_replace_semantics() {
    let mut config = ServeConfig::for_tests();
    config.dlr_delay = Duration::from_secs(3600);
    let srv = server(config).await;
    let (client, mut inbound) = bind(&srv, BindKind::Transceiver).await;
    let id = client
        .submit(sm("447700900002", "pending", 1))
        .await
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(query(&client, &id).await.unwrap().0, 1, "ENROUTE");

    let replace = ReplaceSm {
        message_id: id.clone().into(),
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: "447700900001".into(),
        registered_delivery: 1,
        short_message: "replaced".into(),
        ..Default::default()
    };
    client
        .request(Body::ReplaceSm(Box::new(replace.clone())))
        .await
        .unwrap();
    let cancel = CancelSm {
        message_id: id.clone().into(),
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: "447700900001".into(),
        ..Default::default()
    };
    client
        .request(Body::CancelSm(Box::new(cancel.clone())))
        .await
        .unwrap();
    assert_eq!(query(&client, &id).await.unwrap().0, 4, "DELETED");
    // registered_delivery 1: the cancellation is a final state with a receipt.
    let r = next(&mut inbound).await.receipt().unwrap();
    assert_eq!(
        (r.id.as_str(), r.state),
        (id.as_str(), MessageState::Deleted)
    );
    // A final message can be neither cancelled nor replaced.
    let again = client
        .request(Body::CancelSm(Box::new(cancel)))
        .await
        .unwrap_err();
    assert_eq!(status(again), CommandStatus::CANCEL_FAILED);
    let late = client
        .request(Body::ReplaceSm(Box::new(replace)))
        .await
        .unwrap_err();
    assert_eq!(status(late), CommandStatus::REPLACE_FAILED);
    // Unknown ids, and another account's view.
    assert_eq!(
        query(&client, "FFFFFFFF").await.unwrap_err(),
        CommandStatus::QUERY_FAILED
    );
    assert_eq!(
        query(&client, "not-an-id").await.unwrap_err(),
        CommandStatus::QUERY_FAILED
    );

    // Cancel by source address: every pending message of it.
    for _ in 0..3 {
        client.submit(sm("447700900009", "bulk", 0)).await.unwrap();
    }
    let cancel_all = CancelSm {
        source_addr: "447700900001".into(),
        destination_addr: "447700900009".into(),
        ..Default::default()
    };
    client
        .request(Body::CancelSm(Box::new(cancel_all.clone())))
        .await
        .unwrap();
    let none_left = client
        .request(Body::CancelSm(Box::new(cancel_all)))
        .await
        .unwrap_err();
    assert_eq!(status(none_left), CommandStatus::CANCEL_FAILED);
    client.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn cancel_of_a_delivered_message_fails() {
    let srv = server(ServeConfig::for_tests()).await;
    let (client, _inbound) = bind(&srv, BindKind::Transmitter).await;
    let id = client.submit(sm("4477", "done", 0)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cancel = CancelSm {
        message_id: id.clone(),
        source_addr: "447700900001".into(),
        ..Default::default()
    };
    let e = client
        .request(Body::CancelSm(Box::new(cancel)))
        .await
        .unwrap_err();
    assert_eq!(status(e), CommandStatus::CANCEL_FAILED);
    assert_eq!(
        query(&client, &id.to_string_lossy()).await.unwrap().0,
        MessageState::Delivered.to_u8()
    );
    client.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn submit_multi_answers_per_destination_and_sends_a_receipt_each() {
    let srv = server(ServeConfig::for_tests()).await;
    let (client, mut inbound) = bind(&srv, BindKind::Transceiver).await;
    let multi = SubmitMulti {
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: "447700900001".into(),
        dest_addresses: vec![
            DestAddress::Sme {
                ton: 1,
                npi: 1,
                addr: "447700900010".into(),
            },
            DestAddress::Sme {
                ton: 1,
                npi: 1,
                addr: "".into(),
            },
            DestAddress::DistributionList("friends".into()),
            DestAddress::Sme {
                ton: 1,
                npi: 1,
                addr: "447700900011".into(),
            },
        ],
        registered_delivery: 1,
        short_message: "to many".into(),
        ..Default::default()
    };
    let resp = client
        .request(Body::SubmitMulti(Box::new(multi)))
        .await
        .unwrap();
    let Body::SubmitMultiResp(resp) = resp.body else {
        panic!("submit_multi_resp expected")
    };
    assert!(!resp.message_id.is_empty());
    let failures: Vec<_> = resp
        .unsuccess_smes
        .iter()
        .map(|u| (u.addr.to_string_lossy().into_owned(), u.error_status))
        .collect();
    assert_eq!(
        failures,
        [
            ("".to_string(), CommandStatus::INVALID_DESTINATION_ADDRESS),
            (
                "friends".to_string(),
                CommandStatus::INVALID_DISTRIBUTION_LIST_NAME
            ),
        ]
    );
    let mut from = Vec::new();
    for _ in 0..2 {
        let req = next(&mut inbound).await;
        assert_eq!(req.receipt().unwrap().id, resp.message_id.to_string_lossy());
        let Body::DeliverSm(d) = req.body() else {
            panic!()
        };
        from.push(d.source_addr.to_string_lossy().into_owned());
    }
    from.sort();
    assert_eq!(from, ["447700900010", "447700900011"]);
    client.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn long_message_is_routed_esme_to_esme_intact() {
    let mut config = ServeConfig::for_tests();
    config.accounts = accounts(&[("esme1", "pw1"), ("esme2", "pw2")]);
    let srv = server(config).await;
    let (rx, mut mo) = bind_with(&srv, BindKind::Receiver, "esme2", "pw2", "4470.*")
        .await
        .unwrap();
    let (tx, mut receipts) = bind_with(&srv, BindKind::Transceiver, "esme1", "pw1", "")
        .await
        .unwrap();
    let text = "A long message that does not fit in one part. ".repeat(5);
    let message = ShortMessage::text(text.clone())
        .from("447700900001")
        .to("447000000001")
        .request_receipt();
    let mut refs = smpp_proto::message::concat::ReferenceCounter::new(7);
    let parts = message.build(&mut refs).unwrap();
    assert!(parts.len() > 1);
    let mut ids = Vec::new();
    for part in &parts {
        ids.push(tx.submit(part.clone()).await.unwrap());
    }
    for part in &parts {
        let req = next(&mut mo).await;
        let Body::DeliverSm(d) = req.body() else {
            panic!("deliver_sm expected")
        };
        assert_eq!(d.esm_class().udhi(), part.esm_class().udhi(), "UDHI kept");
        assert_eq!(d.short_message, part.short_message, "user data intact");
        assert_eq!(d.data_coding, part.data_coding);
        assert_eq!(d.destination_addr, "447000000001");
        assert!(req.receipt().is_none(), "an MO message, not a receipt");
    }
    // The submitter gets DELIVRD receipts once esme2 took the parts.
    let mut got = Vec::new();
    for _ in &parts {
        let r = next(&mut receipts).await.receipt().unwrap();
        assert_eq!(r.state, MessageState::Delivered);
        got.push(r.id);
    }
    got.sort();
    let mut ids: Vec<String> = ids.iter().map(|i| i.to_string_lossy().into()).collect();
    ids.sort();
    assert_eq!(got, ids);
    // A destination nobody registered goes to the network, not to esme2.
    tx.submit(sm("449900000001", "elsewhere", 0)).await.unwrap();
    assert!(timeout(Duration::from_millis(300), mo.recv())
        .await
        .is_err());
    rx.unbind().await.unwrap();
    tx.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn configured_route_and_mo_injection() {
    let mut config = ServeConfig::for_tests();
    config.accounts = accounts(&[("esme1", "pw1"), ("esme2", "pw2")]);
    config.routes = vec![Route {
        prefix: "555".into(),
        account: "esme2".into(),
    }];
    let srv = server(config).await;
    // Nobody bound yet: an injected MO for a routed address waits.
    let ids = srv
        .smsc()
        .inject_mo("447700900123", "5551234", 0, b"hello MO")
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(srv.smsc().message(&ids[0]).unwrap().state, "ENROUTE");
    let (rx, mut mo) = bind_with(&srv, BindKind::Receiver, "esme2", "pw2", "")
        .await
        .unwrap();
    let req = next(&mut mo).await;
    let Body::DeliverSm(d) = req.body() else {
        panic!()
    };
    assert_eq!(d.short_message.as_ref(), b"hello MO");
    assert_eq!(d.source_addr, "447700900123");
    drop(req);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(srv.smsc().message(&ids[0]).unwrap().state, "DELIVRD");
    // An unrouted address goes to a receiver that registered no range.
    let long = ShortMessage::text("x".repeat(300)).from("1234").to("999");
    let ids = srv.smsc().inject_mo_message(&long).await.unwrap();
    assert!(ids.len() > 1);
    for _ in &ids {
        let req = next(&mut mo).await;
        let Body::DeliverSm(d) = req.body() else {
            panic!()
        };
        assert!(d.has_udh());
    }
    rx.unbind().await.unwrap();
    // Nobody to take it now.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let too_long = srv
        .smsc()
        .inject_mo("1", "123456789012345678901", 0, b"x")
        .await
        .unwrap_err();
    assert_eq!(too_long, CommandStatus::INVALID_DESTINATION_ADDRESS);
    let none = srv.smsc().inject_mo("1", "999", 0, b"x").await.unwrap_err();
    assert_eq!(none, CommandStatus::INVALID_DESTINATION_ADDRESS);
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn rules_choose_the_outcome() {
    let mut config = ServeConfig::for_tests();
    config.rules = vec![
        Rule {
            prefix: Some("4479".into()),
            state: Some(MessageState::Undeliverable),
            error: 11,
            ..Default::default()
        },
        Rule {
            contains: Some("#THROTTLE".into()),
            status: Some(CommandStatus::THROTTLED),
            ..Default::default()
        },
        Rule {
            contains: Some("#SLOW".into()),
            delay: Some(Duration::from_millis(300)),
            ..Default::default()
        },
    ];
    let srv = server(config).await;
    let (client, mut inbound) = bind(&srv, BindKind::Transceiver).await;
    let id = client.submit(sm("447912345678", "bad", 1)).await.unwrap();
    let r = next(&mut inbound).await.receipt().unwrap();
    assert_eq!(r.id, id.to_string_lossy());
    assert_eq!(r.state, MessageState::Undeliverable);
    assert_eq!(r.error.as_deref(), Some("011"));
    let e = client
        .submit(sm("447700900002", "please #THROTTLE me", 1))
        .await
        .unwrap_err();
    assert_eq!(status(e), CommandStatus::THROTTLED);
    // The marker is found in UCS-2 text too.
    let mut ucs2 = sm("447700900002", "", 1);
    ucs2.data_coding = 0x08;
    ucs2.short_message = "Привет #throttle"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect::<Vec<u8>>()
        .into();
    let e = client.submit(ucs2).await.unwrap_err();
    assert_eq!(status(e), CommandStatus::THROTTLED);
    let started = std::time::Instant::now();
    client.submit(sm("4477", "a #SLOW one", 0)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Failure-only receipts: none for a delivered message, one for a failed one.
    client.submit(sm("447700900002", "fine", 2)).await.unwrap();
    let failed = client.submit(sm("447900000000", "fails", 2)).await.unwrap();
    let r = next(&mut inbound).await.receipt().unwrap();
    assert_eq!(r.id, failed.to_string_lossy());
    client.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn outcome_distribution_spreads_states() {
    let mut config = ServeConfig::for_tests();
    config.outcomes = vec![(MessageState::Delivered, 1), (MessageState::Expired, 1)];
    let srv = server(config).await;
    let (client, mut inbound) = bind(&srv, BindKind::Transceiver).await;
    for _ in 0..40 {
        client.submit(sm("4477", "x", 1)).await.unwrap();
    }
    let (mut delivered, mut expired) = (0, 0);
    for _ in 0..40 {
        match next(&mut inbound).await.receipt().unwrap().state {
            MessageState::Delivered => delivered += 1,
            MessageState::Expired => expired += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(delivered > 5 && expired > 5, "{delivered} / {expired}");
    client.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn tps_limit_answers_throttled() {
    let mut config = ServeConfig::for_tests();
    config.tps = Some(5);
    let srv = server(config).await;
    let (client, _inbound) = bind(&srv, BindKind::Transmitter).await;
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let c = client.clone();
        tasks.spawn(async move { c.submit(sm("4477", "x", 0)).await });
    }
    let (mut ok, mut throttled) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(status(e), CommandStatus::THROTTLED);
                throttled += 1;
            }
        }
    }
    // One-second windows: at most 5 per window the burst spanned.
    let windows = started.elapsed().as_secs() as usize + 2;
    assert!(ok >= 5 && ok <= 5 * windows, "{ok} accepted");
    assert!(throttled > 0);
    assert_eq!(ok + throttled, 30);
    client.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn data_sm_and_broadcast_operations() {
    let mut config = ServeConfig::for_tests();
    config.dlr_delay = Duration::from_secs(3600);
    let srv = server(config).await;
    // broadcast_sm and its kin are SMPP 5.0 operations.
    let (client, _inbound) = bind_v50(&srv, BindKind::Transceiver).await;
    let mut tlvs = Tlvs::new();
    tlvs.set(TlvTag::MESSAGE_PAYLOAD, b"payload").unwrap();
    let data = smpp_proto::pdu::DataSm {
        source_addr: "1".into(),
        destination_addr: "2".into(),
        tlvs,
        ..Default::default()
    };
    let resp = client.request(Body::DataSm(Box::new(data))).await.unwrap();
    let Body::DataSmResp(r) = resp.body else {
        panic!()
    };
    assert!(!r.message_id.is_empty());

    let built = smpp_proto::message::broadcast::BroadcastBuilder::new(
        vec![smpp_proto::message::broadcast::BroadcastArea::name("north")],
        smpp_proto::pdu::BroadcastContentType {
            network_type: 1,
            content_type: 1,
        },
        1,
        0x09,
        5,
    )
    .payload(&b"storm warning"[..], smpp_proto::message::DataCoding::IA5)
    .source(1, 1, "100")
    .build()
    .unwrap();
    let resp = client
        .request(Body::BroadcastSm(Box::new(built.clone())))
        .await
        .unwrap();
    let Body::BroadcastSmResp(r) = resp.body else {
        panic!()
    };
    let id = r.message_id;
    let q = QueryBroadcastSm {
        message_id: id.clone(),
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: "100".into(),
        ..Default::default()
    };
    let resp = client
        .request(Body::QueryBroadcastSm(Box::new(q.clone())))
        .await
        .unwrap();
    let Body::QueryBroadcastSmResp(r) = resp.body else {
        panic!()
    };
    assert_eq!(r.tlvs.message_state(), Some(1));
    assert!(r.tlvs.broadcast_area_identifier().is_some());
    let cancel = CancelBroadcastSm {
        message_id: id.clone(),
        source_addr: "100".into(),
        ..Default::default()
    };
    client
        .request(Body::CancelBroadcastSm(Box::new(cancel.clone())))
        .await
        .unwrap();
    let e = client
        .request(Body::CancelBroadcastSm(Box::new(cancel)))
        .await
        .unwrap_err();
    assert_eq!(status(e), CommandStatus::BROADCAST_CANCEL_FAILED);
    // A broadcast without its mandatory TLVs is refused.
    let bare = BroadcastSm::default();
    let e = client
        .request(Body::BroadcastSm(Box::new(bare)))
        .await
        .unwrap_err();
    assert_eq!(status(e), CommandStatus::INVALID_BROADCAST_AREA_FORMAT);
    client.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}

/// Records what the SMSC reports.
#[derive(Default)]
struct Recorder {
    events: std::sync::Mutex<Vec<String>>,
}

impl Recorder {
    fn push(&self, e: String) {
        self.events.lock().unwrap().push(e);
    }

    fn has(&self, prefix: &str) -> bool {
        self.events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.starts_with(prefix))
    }
}

impl serve::Observer for Recorder {
    fn session_opened(&self, connection: u64, _: Option<std::net::SocketAddr>) {
        self.push(format!("opened {connection}"));
    }
    fn session_closed(&self, _: u64, account: Option<&str>) {
        self.push(format!("closed {account:?}"));
    }
    fn bind(&self, e: &serve::BindEvent<'_>) {
        self.push(format!("bind {} {:?} {}", e.system_id, e.kind, e.status));
    }
    fn request(&self, e: &serve::RequestEvent<'_>) {
        self.push(format!("request {} {} {}", e.account, e.command, e.status));
    }
    fn throttled(&self, account: &str) {
        self.push(format!("throttled {account}"));
    }
    fn receipt(&self, _: &str, id: &str, e: serve::ReceiptEvent) {
        self.push(format!("receipt {e:?} {id}"));
    }
    fn final_state(&self, e: &serve::FinalEvent<'_>) {
        self.push(format!(
            "final {} {} {} {:?} {}",
            e.account, e.message_id, e.state, e.billing_identification, e.parts
        ));
    }
    fn wants_final_states(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn the_observer_hears_binds_requests_receipts_and_final_states() {
    let recorder = std::sync::Arc::new(Recorder::default());
    let srv = serve::start_with(ServeConfig::for_tests(), recorder.clone())
        .await
        .unwrap();
    let refused = bind_with(&srv, BindKind::Transmitter, "smppclient1", "nope", "").await;
    assert!(refused.is_err());
    // billing_identification is an SMPP 5.0 TLV.
    let (client, mut inbound) = bind_v50(&srv, BindKind::Transceiver).await;
    let mut submit = sm("447700900002", "billed", 1);
    submit
        .tlvs
        .set(TlvTag::BILLING_IDENTIFICATION, &[0x01, b'B', b'7'])
        .unwrap();
    let id = client.submit(submit).await.unwrap();
    let id = id.to_string_lossy().into_owned();
    drop(next(&mut inbound).await);
    client.unbind().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(recorder.has("opened "));
    assert!(recorder.has("bind smppclient1 Transmitter ESME_RINVPASWD"));
    assert!(recorder.has("bind smppclient1 Transceiver ESME_ROK"));
    assert!(recorder.has("request smppclient1 submit_sm ESME_ROK"));
    assert!(recorder.has(&format!("receipt Sent {id}")));
    assert!(recorder.has(&format!(
        "final smppclient1 {id} DELIVRD Some([1, 66, 55]) 1"
    )));
    assert!(recorder.has("closed Some(\"smppclient1\")"));
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn memory_is_bounded_queue_full_then_free_again() {
    let mut config = ServeConfig::for_tests();
    config.max_messages = 64; // at most 128 held while they wait for a receiver
    let srv = server(config).await;
    let (tx, _i) = bind(&srv, BindKind::Transmitter).await;
    let mut accepted = 0;
    let mut refusal = None;
    for _ in 0..300 {
        match tx.submit(sm("4477", "waits", 1)).await {
            Ok(_) => accepted += 1,
            Err(e) => {
                refusal = Some(status(e));
                break;
            }
        }
    }
    assert_eq!(refusal, Some(CommandStatus::MESSAGE_QUEUE_FULL));
    assert!((100..=140).contains(&accepted), "{accepted}");
    // A receiver takes the receipts; the messages then need nothing more.
    let (rx, mut inbound) = bind(&srv, BindKind::Receiver).await;
    for _ in 0..accepted {
        drop(next(&mut inbound).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..200 {
        tx.submit(sm("4477", "fits again", 0)).await.unwrap();
    }
    rx.unbind().await.unwrap();
    tx.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn receipts_survive_a_receiver_dropping_mid_stream() {
    let srv = server(ServeConfig::for_tests()).await;
    let (tx, _i) = bind(&srv, BindKind::Transmitter).await;
    let mut ids = std::collections::HashSet::new();
    for i in 0..50 {
        let id = tx.submit(sm("4477", &format!("m{i}"), 1)).await.unwrap();
        ids.insert(id.to_string_lossy().into_owned());
    }
    let (first, mut inbound) = bind(&srv, BindKind::Receiver).await;
    for _ in 0..10 {
        let req = next(&mut inbound).await;
        ids.remove(&req.receipt().unwrap().id);
    }
    first.close(); // abruptly, with receipts in flight
    let (second, inbound) = bind(&srv, BindKind::Receiver).await;
    timeout(Duration::from_secs(20), async {
        while !ids.is_empty() {
            let req = inbound.recv().await.expect("open");
            ids.remove(&req.receipt().unwrap().id);
        }
    })
    .await
    .expect("every receipt delivered to the second receiver");
    let drain = tokio::spawn(async move { while inbound.recv().await.is_some() {} });
    second.unbind().await.unwrap();
    drain.await.unwrap();
    tx.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn intermediate_notification_when_asked() {
    let mut config = ServeConfig::for_tests();
    config.dlr_delay = Duration::from_secs(3600);
    let srv = server(config).await;
    let (client, mut inbound) = bind(&srv, BindKind::Transceiver).await;
    let id = client.submit(sm("4477", "slow", 0x11)).await.unwrap();
    let req = next(&mut inbound).await;
    let Body::DeliverSm(d) = req.body() else {
        panic!()
    };
    assert!(
        d.esm_class().is_intermediate_notification(),
        "intermediate notification"
    );
    let r = req.receipt().unwrap();
    assert_eq!(
        (r.id.as_str(), r.state),
        (&*id.to_string_lossy(), MessageState::Enroute)
    );
    drop(req);
    client.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn validity_period_expires_and_schedule_delays() {
    let mut config = ServeConfig::for_tests();
    config.dlr_delay = Duration::from_secs(3600);
    let srv = server(config).await;
    let (client, mut inbound) = bind(&srv, BindKind::Transceiver).await;
    // Valid for one second, delivered (at best) within the hour: it expires.
    let mut short_lived = sm("4477", "too slow", 1);
    short_lived.validity_period = "000000000001000R".into();
    let id = client.submit(short_lived).await.unwrap();
    let r = next(&mut inbound).await.receipt().unwrap();
    assert_eq!(
        (r.id.as_str(), r.state),
        (&*id.to_string_lossy(), MessageState::Expired)
    );
    srv.shutdown().await.unwrap();

    // Scheduled one second ahead with no delivery delay: ENROUTE until then.
    let srv = server(ServeConfig::for_tests()).await;
    let (client, mut inbound) = bind(&srv, BindKind::Transceiver).await;
    let mut later = sm("4477", "later", 1);
    later.schedule_delivery_time = "000000000001000R".into();
    let id = client.submit(later).await.unwrap();
    assert_eq!(query(&client, &id.to_string_lossy()).await.unwrap().0, 1);
    let r = next(&mut inbound).await.receipt().unwrap();
    assert_eq!(r.state, MessageState::Delivered);
    drop(client);
    srv.shutdown().await.unwrap();
}

/// `--retention`: a message final for longer than the retention with its
/// receipt delivered is deleted (query_sm answers as for an unknown id, also
/// after a restart on the same store); one whose receipt is still owed stays.
#[tokio::test]
async fn retention_deletes_old_finished_messages_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        let mut config = ServeConfig::for_tests();
        config.store = serve::StoreConfig::Path(dir.path().join("store"));
        config.retention = Duration::from_secs(1);
        config.accounts = accounts(&[("smppclient1", "password"), ("other", "pw")]);
        config
    };
    let srv = server(config()).await;
    let (client, mut inbound) = bind(&srv, BindKind::Transceiver).await;
    let done = client.submit(sm("447700900002", "done", 1)).await.unwrap();
    let done = done.to_string_lossy().into_owned();
    let req = next(&mut inbound).await;
    assert_eq!(req.receipt().expect("a receipt").id, done);
    drop(req); // answers OK: nothing left to do

    // A receipt owed to an account whose receiver never binds: kept.
    let (other, _other_inbound) = bind_with(&srv, BindKind::Transmitter, "other", "pw", "")
        .await
        .unwrap();
    let owed = other.submit(sm("447700900002", "owed", 1)).await.unwrap();
    let owed = owed.to_string_lossy().into_owned();
    assert_eq!(query(&client, &done).await.unwrap().0, 2, "DELIVRD");

    let started = std::time::Instant::now();
    while query(&client, &done).await.is_ok() {
        assert!(started.elapsed() < WAIT, "{done} still there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        query(&client, &done).await.unwrap_err(),
        query(&client, "FFFFFFFF").await.unwrap_err(),
        "answered as an unknown id"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "not at once"
    );
    let q = QuerySm {
        message_id: owed.clone().into(),
        source_addr: "447700900001".into(),
        source_addr_ton: 1,
        source_addr_npi: 1,
        ..Default::default()
    };
    assert!(other
        .request(Body::QuerySm(Box::new(q.clone())))
        .await
        .is_ok());
    client.unbind().await.unwrap();
    other.unbind().await.unwrap();
    srv.shutdown().await.unwrap();

    // Gone from the disk too, not only from memory (the store lets go of
    // its file once its writer thread ends: retry the start a little).
    let mut restarted = None;
    for _ in 0..100 {
        match serve::start(config()).await {
            Ok(srv) => {
                restarted = Some(srv);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let srv = restarted.expect("restarts on the same store");
    let (client, _inbound) = bind(&srv, BindKind::Transmitter).await;
    assert_eq!(
        query(&client, &done).await.unwrap_err(),
        CommandStatus::QUERY_FAILED
    );
    let (other, _other_inbound) = bind_with(&srv, BindKind::Transmitter, "other", "pw", "")
        .await
        .unwrap();
    assert!(other.request(Body::QuerySm(Box::new(q))).await.is_ok());
    client.unbind().await.unwrap();
    other.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn strict_refuses_a_tlv_out_of_place_and_the_default_keeps_it() {
    // dpf_result is an SMPP 3.4 TLV, but a data_sm_resp's, not a submit_sm's.
    let mut out_of_place = sm("447700900002", "odd", 0);
    out_of_place.tlvs.set_u8(TlvTag::DPF_RESULT, 1);
    // billing_identification came with SMPP 5.0: our client leaves it out
    // of a 3.4 session itself, so even a strict server accepts the submit.
    let mut with_billing = sm("447700900002", "bill me", 0);
    with_billing
        .tlvs
        .set(TlvTag::BILLING_IDENTIFICATION, b"\x01acct-7")
        .unwrap();
    for strict in [true, false] {
        let mut config = ServeConfig::for_tests();
        config.strict = strict;
        let srv = server(config).await;
        let (client, _inbound) = bind(&srv, BindKind::Transceiver).await;
        assert_eq!(client.interface_version(), 0x34);
        client.submit(with_billing.clone()).await.unwrap();
        assert_eq!(client.stats().await.unwrap().tlvs_dropped, 1);
        let result = client.submit(out_of_place.clone()).await;
        if strict {
            assert_eq!(status(result.unwrap_err()), CommandStatus::TLV_NOT_ALLOWED);
            // The session goes on: a submit without it is accepted.
            client.submit(sm("447700900002", "plain", 0)).await.unwrap();
        } else {
            result.expect("lenient keeps every TLV");
        }
        client.unbind().await.unwrap();
        srv.shutdown().await.unwrap();
    }
}
