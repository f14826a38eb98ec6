//! Compile-time proof that the public futures are `Send` for every runtime,
//! so they can be spawned on a multi-thread executor: these functions are
//! never called, they only have to type-check. A future that stops being
//! `Send` (a guard held across an `.await`, an `Rc`) fails the build here,
//! not in a user's `spawn`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use smpp_proto::message::ShortMessage;
use smpp_proto::pdu::{AlertNotification, Bind, Body, DeliverSm, Outbind, SubmitSm};
use smpp_proto::session::{BindKind, SessionConfig};

use crate::{
    Client, Connect, Connection, Handler, Inbound, Io, OutbindListener, Pool, ReconnectingClient,
    Runtime, Server, ServerConfig, ServerHandle,
};

fn send<T: Send>(_: T) {}

/// Also `Sync`: a caller may hold the future in a `Sync` structure.
fn sync<T: Send + Sync>(_: T) {}

fn client<R>(client: &Client<R>, inbound: &Inbound, sm: SubmitSm, message: &ShortMessage)
where
    R: Runtime + Connect<SocketAddr> + Io<<R as Runtime>::Tcp>,
{
    let config = Arc::new(SessionConfig::default());
    let addr = SocketAddr::from(([127, 0, 0, 1], 2775));
    send(Client::<R>::connect(
        addr,
        BindKind::Transceiver,
        Bind::default(),
        config.clone(),
    ));
    sync(client.submit(sm.clone()));
    send(client.submit_message(message));
    sync(client.request(Body::SubmitSm(sm.into())));
    send(client.unbind());
    sync(client.stats());
    send(client.closed());
    send(inbound.recv());
}

fn outbind<R>(listener: &OutbindListener<R>, tcp: R::Tcp)
where
    R: Runtime + Connect<SocketAddr> + Io<<R as Runtime>::Tcp>,
{
    let config = Arc::new(SessionConfig::default());
    let addr = SocketAddr::from(([127, 0, 0, 1], 2775));
    send(OutbindListener::<R>::bind(addr));
    send(
        listener.accept(BindKind::Receiver, Bind::default(), config.clone(), |_| {
            true
        }),
    );
    send(Client::<R>::accept_outbind(
        tcp,
        BindKind::Receiver,
        Bind::default(),
        config,
        |_| true,
    ));
}

fn reconnecting<R: Runtime>(
    client: &ReconnectingClient<R>,
    pool: &Pool<R>,
    sm: SubmitSm,
    message: &ShortMessage,
) {
    send(client.client());
    send(client.submit(sm.clone()));
    send(client.submit_message(message));
    send(client.request(Body::SubmitSm(sm.clone().into())));
    send(client.close());
    send(pool.client());
    send(pool.submit(sm.clone()));
    send(pool.submit_message(message));
    send(pool.request(Body::SubmitSm(sm.into())));
    send(pool.close());
}

fn server<R, H>(handler: H, server: Server<R, H>, handle: &ServerHandle<R>, conn: &Connection)
where
    R: Runtime + Connect<SocketAddr> + Io<<R as Runtime>::Tcp>,
    H: Handler<Connection>,
{
    let addr = SocketAddr::from(([127, 0, 0, 1], 2775));
    send(Server::<R, H>::bind(addr, handler, ServerConfig::default()));
    send(handle.outbind(addr, Outbind::default()));
    send(conn.request(Body::EnquireLink(Default::default())));
    send(conn.deliver(DeliverSm::default()));
    send(conn.alert(AlertNotification::default()));
    send(conn.unbind());
    send(conn.stats());
    send(conn.closed());
    send(server.run());
}

#[cfg(feature = "tls")]
fn tls<R, H>(
    server: Server<R, H>,
    client_tls: Arc<rustls::ClientConfig>,
    server_tls: Arc<rustls::ServerConfig>,
) where
    R: crate::Tls + Connect<SocketAddr> + Io<<R as Runtime>::Tcp>,
    H: Handler<Connection>,
{
    let addr = SocketAddr::from(([127, 0, 0, 1], 2775));
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a valid name");
    send(Client::<R>::connect_tls(
        addr,
        name,
        client_tls,
        BindKind::Transceiver,
        Bind::default(),
        SessionConfig::default(),
    ));
    send(server.run_tls(server_tls));
}
