//! The operations of `smpp serve` through the real binary on a free port:
//! query, replace and cancel of a pending message, cancel of a delivered one,
//! submit_multi with per-destination results, and ESME-to-ESME routing of a
//! long message (all parts, in order, intact).

mod security_support;

use std::net::SocketAddr;
use std::time::Duration;

use smpp_proto::message::{Reassembler, ShortMessage};
use smpp_proto::pdu::{
    Bind, Body, CancelSm, CommandStatus, DestAddress, QuerySm, ReplaceSm, SubmitMulti, SubmitSm,
};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::{Client, Error, Inbound};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

/// A running `smpp serve` (the shared test harness) and its SMPP address.
struct Serve {
    /// Kept: the server stops when dropped.
    _serve: security_support::Serve,
    _dir: tempfile::TempDir,
    addr: SocketAddr,
}

fn serve(args: &[&str]) -> Serve {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut all = vec!["--memory", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let serve = security_support::Serve::spawn(&all, dir.path());
    let addr = serve.smpp();
    Serve {
        _serve: serve,
        _dir: dir,
        addr,
    }
}

async fn bind(
    addr: SocketAddr,
    kind: BindKind,
    id: &str,
    pw: &str,
    range: &str,
) -> (Client, Inbound) {
    let bind = Bind {
        system_id: id.to_owned().into(),
        password: pw.to_owned().into(),
        address_range: range.to_owned().into(),
        interface_version: 0x34,
        ..Default::default()
    };
    timeout(
        WAIT,
        Client::connect(addr, kind, bind, SessionConfig::default()),
    )
    .await
    .expect("bind in time")
    .expect("bind accepted")
}

fn sm(to: &str, text: &str) -> SubmitSm {
    SubmitSm {
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: "447700900001".into(),
        dest_addr_ton: 1,
        dest_addr_npi: 1,
        destination_addr: to.to_owned().into(),
        registered_delivery: 1,
        short_message: text.to_owned().into_bytes().into(),
        ..Default::default()
    }
}

fn status(e: Error) -> CommandStatus {
    match e {
        Error::Status(s) => s,
        other => panic!("expected an error status, got {other}"),
    }
}

async fn state_of(client: &Client, id: &str) -> u8 {
    let query = QuerySm {
        message_id: id.to_owned().into(),
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: "447700900001".into(),
        ..Default::default()
    };
    let resp = client
        .request(Body::QuerySm(Box::new(query)))
        .await
        .expect("query_sm answered");
    match resp.body {
        Body::QuerySmResp(r) => r.message_state,
        other => panic!("not a query_sm_resp: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_replace_cancel_and_submit_multi_through_the_binary() {
    // Receipts an hour away: messages stay ENROUTE for the test.
    let srv = serve(&["--dlr-delay", "1h"]);
    let (client, _inbound) = bind(
        srv.addr,
        BindKind::Transceiver,
        "smppclient1",
        "password",
        "",
    )
    .await;

    let id = client.submit(sm("447700900002", "pending")).await.unwrap();
    let id = id.to_string_lossy().into_owned();
    assert_eq!(state_of(&client, &id).await, 1, "ENROUTE");

    let replace = ReplaceSm {
        message_id: id.clone().into(),
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: "447700900001".into(),
        short_message: "replaced".into(),
        ..Default::default()
    };
    client
        .request(Body::ReplaceSm(Box::new(replace)))
        .await
        .expect("replace_sm accepted");
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
        .expect("cancel_sm accepted");
    assert_eq!(state_of(&client, &id).await, 4, "DELETED after the cancel");
    // A second cancel finds nothing left to cancel.
    let e = client
        .request(Body::CancelSm(Box::new(cancel)))
        .await
        .unwrap_err();
    assert_eq!(status(e), CommandStatus::CANCEL_FAILED);

    // submit_multi: one good destination, one empty (refused), one good.
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
            DestAddress::Sme {
                ton: 1,
                npi: 1,
                addr: "447700900011".into(),
            },
        ],
        short_message: "to many".into(),
        ..Default::default()
    };
    let resp = client
        .request(Body::SubmitMulti(Box::new(multi)))
        .await
        .expect("submit_multi answered");
    let Body::SubmitMultiResp(resp) = resp.body else {
        panic!("not a submit_multi_resp");
    };
    assert!(!resp.message_id.is_empty());
    assert_eq!(resp.unsuccess_smes.len(), 1, "{resp:?}");
    client.unbind().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_message_is_routed_esme_to_esme_through_the_binary() {
    let srv = serve(&[
        "--account",
        "sender:pw1",
        "--account",
        "receiver:pw2",
        "--dlr-delay",
        "0s",
    ]);
    // The receiver serves every number starting 4479.
    let (_rx, mo) = bind(srv.addr, BindKind::Receiver, "receiver", "pw2", "4479.*").await;
    let (tx, _tx_inbound) = bind(srv.addr, BindKind::Transmitter, "sender", "pw1", "").await;
    let text = "This message is long enough to need three parts. ".repeat(6);
    let message = ShortMessage::text(&text)
        .from("447700900001")
        .to("447900900002");
    let ids = tx
        .submit_message(&message)
        .await
        .expect("every part accepted");
    assert!(ids.len() >= 2, "split into parts: {}", ids.len());

    let mut reassembler = Reassembler::new(Default::default());
    let now = std::time::Instant::now();
    let whole = loop {
        let request = timeout(WAIT, mo.recv())
            .await
            .expect("an MO in time")
            .expect("open");
        let Body::DeliverSm(dsm) = request.body().clone() else {
            continue;
        };
        let part = smpp_proto::message::reassembly::IncomingPart::from_user_data(
            dsm.source_addr.to_string_lossy(),
            dsm.destination_addr.to_string_lossy(),
            smpp_proto::message::DataCoding(dsm.data_coding),
            dsm.esm_class,
            dsm.short_message.clone(),
            None,
        )
        .expect("a part");
        if let smpp_proto::message::PartOutcome::Complete(m) =
            reassembler.handle_part(now, part).expect("a valid part")
        {
            break m;
        }
    };
    let got = whole.decode_text(&Default::default()).expect("text");
    assert_eq!(got, text);
}
