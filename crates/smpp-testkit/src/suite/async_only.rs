//! What only the async adapters have: the handler's fast paths in the
//! connection's task (`answer_now`, `answer_soon`) and a server future the
//! caller can drop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::future::join_all;
use smpp_async::{Connection, Error, Handler, ServerConfig, SoonAnswer};
use smpp_proto::pdu::{Bind, Body, CommandStatus, Pdu, SubmitSm, SubmitSmResp};
use smpp_proto::session::{BindKind, CloseReason, SessionConfig};

use super::{connect, local, submit, wait_for, LIMIT};
use crate::adapter::{timeout, Adapter, Task};
use crate::adapters::{Async, Executor};
use crate::Smsc;

/// Answers submit_sm at once (by text: an id, a status, a panic, or
/// "later" for the asynchronous path), or soon for texts starting "soon"
/// (woken from another thread, as a store's writer wakes its waiters);
/// anything else goes to `request`.
#[derive(Debug, Default)]
struct Quick {
    later: Arc<AtomicUsize>,
    soon: Arc<AtomicUsize>,
}

impl Handler<Connection> for Quick {
    async fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
        Ok(())
    }

    fn answer_now(
        &self,
        conn: &Connection,
        pdu: &Pdu,
        _: std::time::Instant,
    ) -> Option<Result<Body, CommandStatus>> {
        let Body::SubmitSm(sm) = &pdu.body else {
            return None;
        };
        assert_eq!(conn.system_id(), Some("esme"), "the bound connection");
        match sm.short_message.as_ref() {
            b"boom" => panic!("handler bug"),
            b"refuse" => Some(Err(CommandStatus::THROTTLED)),
            b"later" => None,
            text if text.starts_with(b"soon") => None,
            _ => Some(Ok(Body::SubmitSmResp(SubmitSmResp {
                message_id: "now".into(),
                ..Default::default()
            }))),
        }
    }

    fn answer_soon(
        &self,
        conn: &Connection,
        pdu: &Pdu,
        _: std::time::Instant,
    ) -> Option<SoonAnswer> {
        let Body::SubmitSm(sm) = &pdu.body else {
            return None;
        };
        assert_eq!(conn.system_id(), Some("esme"), "the bound connection");
        let text = sm.short_message.clone();
        if !text.starts_with(b"soon") {
            return None;
        }
        self.soon.fetch_add(1, Ordering::SeqCst);
        // Done by another thread: the connection's task is woken from it.
        let (done, wait) = async_channel::bounded::<()>(1);
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(1));
            let _ = done.send_blocking(());
        });
        Some(Box::pin(async move {
            let _ = wait.recv().await;
            match text.as_ref() {
                b"soon-boom" => panic!("handler bug, soon"),
                b"soon-refuse" => Err(CommandStatus::THROTTLED),
                _ => Ok(Body::SubmitSmResp(SubmitSmResp {
                    message_id: "soon".into(),
                    ..Default::default()
                })),
            }
        }))
    }

    async fn submit_sm(&self, _: &Connection, _: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        self.later.fetch_add(1, Ordering::SeqCst);
        Ok(SubmitSmResp {
            message_id: "later".into(),
            ..Default::default()
        })
    }
}

pub async fn answers_given_at_once_skip_the_handler_task_and_keep_its_guarantees<E: Executor>() {
    let server = smpp_async::Server::<E::Runtime, _>::bind(local(), Quick::default(), {
        ServerConfig::default()
    })
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    drop(Async::<E>::spawn(server.run()));
    let config = SessionConfig::default();
    let (client, _inbound) = connect::<Async<E>>(addr, BindKind::Transceiver, config).await;
    let id = client.submit(submit("hello", false)).await.unwrap();
    assert_eq!(id.as_bytes(), b"now");
    let id = client.submit(submit("later", false)).await.unwrap();
    assert_eq!(id.as_bytes(), b"later");
    let refused = client.submit(submit("refuse", false)).await;
    assert!(
        matches!(refused, Err(Error::Status(CommandStatus::THROTTLED))),
        "{refused:?}"
    );
    let boom = client.submit(submit("boom", false)).await;
    assert!(
        matches!(boom, Err(Error::Status(CommandStatus::SYSTEM_ERROR))),
        "{boom:?}"
    );
    // Many at once, mixed, on tasks of their own and in one: every one
    // answered exactly once.
    let spawned: Vec<_> = (0..1000)
        .map(|i| {
            let client = client.clone();
            let text = if i % 10 == 0 { "later" } else { "hello" };
            Async::<E>::spawn(async move { client.submit(submit(text, false)).await })
        })
        .collect();
    for call in spawned {
        let id = timeout(LIMIT, call.join()).await.unwrap();
        id.expect("answered");
    }
    let calls = (0..1000).map(|i| {
        let text = if i % 10 == 0 { "later" } else { "hello" };
        client.submit(submit(text, false))
    });
    let results = timeout(LIMIT, join_all(calls)).await.unwrap();
    assert!(results.iter().all(Result::is_ok));
    // A query is not answered at once, so it reaches `request` (and is
    // refused there: not implemented).
    let query = client.request(Body::QuerySm(Box::default())).await;
    assert!(
        matches!(query, Err(Error::Status(CommandStatus::INVALID_COMMAND_ID))),
        "{query:?}"
    );
    client.unbind().await.unwrap();
}

pub async fn answers_polled_in_the_connection_task_come_once_each<E: Executor>() {
    let quick = Quick::default();
    let (soon, later) = (quick.soon.clone(), quick.later.clone());
    let server = smpp_async::Server::<E::Runtime, _>::bind(local(), quick, ServerConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    drop(Async::<E>::spawn(server.run()));
    let config = SessionConfig::default();
    let (client, _inbound) = connect::<Async<E>>(addr, BindKind::Transceiver, config).await;
    let id = client.submit(submit("soon", false)).await.unwrap();
    assert_eq!(id.as_bytes(), b"soon");
    let refused = client.submit(submit("soon-refuse", false)).await;
    assert!(
        matches!(refused, Err(Error::Status(CommandStatus::THROTTLED))),
        "{refused:?}"
    );
    let boom = client.submit(submit("soon-boom", false)).await;
    assert!(
        matches!(boom, Err(Error::Status(CommandStatus::SYSTEM_ERROR))),
        "{boom:?}"
    );
    // The session goes on after the panic; many at once, mixed with the
    // other paths, each answered exactly once, by the path its text picks.
    let texts = ["soon", "hello", "later", "soon", "soon-refuse"];
    let calls = (0..1000).map(|i| client.submit(submit(texts[i % texts.len()], false)));
    let results = timeout(LIMIT, join_all(calls)).await.unwrap();
    for (i, result) in results.iter().enumerate() {
        match (texts[i % texts.len()], result) {
            ("soon", Ok(id)) => assert_eq!(id.as_bytes(), b"soon"),
            ("hello", Ok(id)) => assert_eq!(id.as_bytes(), b"now"),
            ("later", Ok(id)) => assert_eq!(id.as_bytes(), b"later"),
            ("soon-refuse", Err(Error::Status(CommandStatus::THROTTLED))) => {}
            (text, other) => panic!("{text}: {other:?}"),
        }
    }
    assert_eq!(soon.load(Ordering::SeqCst), 3 + 600);
    assert_eq!(
        later.load(Ordering::SeqCst),
        200,
        "soon never reaches request"
    );
    client.unbind().await.unwrap();
}

pub async fn dropping_the_server_future_unbinds_its_connections<E: Executor>() {
    let server = smpp_async::Server::<E::Runtime, _>::bind(local(), Smsc::default(), {
        ServerConfig::default()
    })
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle(); // keeps the registry alive: the guard must unbind
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let (tx, task) = Task::channel();
    // The server's future runs until `stop`, then is dropped (not finished).
    E::spawn(async move {
        let run = async {
            drop(server.run().await);
            false
        };
        let dropped = futures_lite::future::or(run, async {
            stopped.recv().await.ok();
            true
        });
        tx.send(dropped.await).await.ok();
    });
    let config = SessionConfig::default();
    let (client, _inbound) = connect::<Async<E>>(addr, BindKind::Transceiver, config).await;
    stop.send(()).await.unwrap();
    assert!(timeout(LIMIT, task.join()).await.unwrap(), "dropped");
    let reason = timeout(LIMIT, client.closed()).await.unwrap();
    assert_eq!(reason, CloseReason::Unbound);
    // Its connection task ends (and leaves the registry) once the session has.
    wait_for("connection deregistered", || {
        handle.connections().is_empty()
    })
    .await;
}
