//! Upstream connectors: each a [`Pool`] of binds to one SMSC: transceivers
//! by default, so that its receipts come back on the same binds; or
//! transmitters, receivers, or a transmitter and a receiver per slot
//! (`bind=`, [`ConnectorBind`]).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use smpp_proto::message::receipt::MessageIdFormat;
use smpp_proto::message::Address;
use smpp_proto::pdu::Bind;
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::rustls::pki_types::ServerName;
use smpp_tokio::{Backoff, Client, Inbound, Pool, PoolConfig};

use crate::cluster::Slots;
use crate::config::{ConnectorBind, UpstreamConfig};

/// How long a submit waits for a bind of the pool before the next
/// connector of the route is tried (the forwarder checks that one is up first).
const BIND_WAIT: Duration = Duration::from_secs(1);

/// How often a bind on a cluster slot checks whether its node holds more
/// than its share.
const YIELD_CHECK: Duration = Duration::from_secs(2);

/// One started connector.
#[derive(Debug)]
pub(crate) struct Connector {
    pub(crate) name: String,
    /// Its binds that submit (all of them but with `tx+rx`; with `rx`,
    /// receivers that never submit).
    pub(crate) pool: Pool,
    /// With `tx+rx`: the receivers.
    pub(crate) receivers: Option<Pool>,
    pub(crate) ids: MessageIdFormat,
    /// The source address every message sent here gets, if set.
    pub(crate) source: Option<Address>,
    /// What it was started from (an unchanged configuration keeps it).
    pub(crate) config: UpstreamConfig,
    /// Submits the upstream accepted.
    pub(crate) forwarded: AtomicU64,
    /// Submits the upstream refused for good.
    pub(crate) refused: AtomicU64,
}

impl Connector {
    /// Starts the pool's binds (they connect in the background, and again
    /// after each loss); the receipts and MO of all of them arrive on the
    /// returned [`Inbound`]s (one per pool: the receivers of a `tx+rx`
    /// connector have a pool of their own).
    /// An error when its TLS settings cannot be used (an unreadable CA
    /// file, a host that is not a valid TLS server name).
    ///
    /// With `slots` (nodes sharing a database), each bind first takes one
    /// of the connector's bind slots in the cluster and closes when the
    /// slot is lost (the receivers of a `tx+rx` connector have slots of
    /// their own, under `NAME/rx`).
    pub(crate) fn start(
        config: &UpstreamConfig,
        slots: Option<Arc<Slots>>,
    ) -> anyhow::Result<(Connector, Vec<Inbound>)> {
        let (kind, receivers) = match config.bind {
            ConnectorBind::Transceiver => (BindKind::Transceiver, false),
            ConnectorBind::Transmitter => (BindKind::Transmitter, false),
            ConnectorBind::Receiver => (BindKind::Receiver, false),
            ConnectorBind::TransmitterAndReceiver => (BindKind::Transmitter, true),
        };
        let (pool, inbound) = start_pool(config, kind, slots.clone(), config.name.clone())?;
        let mut inbounds = vec![inbound];
        let receivers = if receivers {
            let slot_name = format!("{}/rx", config.name);
            let (pool, inbound) = start_pool(config, BindKind::Receiver, slots, slot_name)?;
            inbounds.push(inbound);
            Some(pool)
        } else {
            None
        };
        let connector = Connector {
            name: config.name.clone(),
            pool,
            receivers,
            ids: config.ids,
            source: config.source.as_ref().map(|s| Address::guess(s)),
            config: config.clone(),
            forwarded: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        };
        Ok((connector, inbounds))
    }

    /// Whether some bind that submits is up.
    pub(crate) fn is_up(&self) -> bool {
        self.config.bind.sends() && self.pool.bound() > 0
    }

    /// Binds up, of every kind.
    pub(crate) fn bound(&self) -> usize {
        self.pool.bound() + self.receivers.as_ref().map_or(0, Pool::bound)
    }

    /// Binds it keeps up when all is well.
    pub(crate) fn slots(&self) -> usize {
        let per_slot = if self.receivers.is_some() { 2 } else { 1 };
        self.config.binds * per_slot
    }

    /// Closes every bind.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
        if let Some(receivers) = &self.receivers {
            receivers.close().await;
        }
    }
}

/// A pool of `config.binds` binds of `kind` to the connector's SMSC (on
/// the cluster's bind slots `slot_name`, with `slots`).
fn start_pool(
    config: &UpstreamConfig,
    kind: BindKind,
    slots: Option<Arc<Slots>>,
    slot_name: String,
) -> anyhow::Result<(Pool, Inbound)> {
    let bind = Bind {
        system_id: config.system_id.clone().into(),
        password: config.password.clone().into(),
        system_type: config.system_type.clone().into(),
        // 3.4: so that the SMSC may send TLVs (receipted_message_id...).
        interface_version: 0x34,
        ..Default::default()
    };
    let session = SessionConfig::default()
        .with_max_in_flight(config.window)
        .with_response_timeout(Duration::from_secs(10));
    let addr = config.addr.clone();
    let tls = if config.tls {
        let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned()).map_err(|e| {
            anyhow::anyhow!(
                "upstream {}: {host:?} is not a TLS server name: {e}",
                config.name
            )
        })?;
        let client = smpp_tokio::tls_client_config(config.ca.as_deref(), false)
            .map_err(|e| anyhow::anyhow!("upstream {}: {e}", config.name))?;
        Some((name, client))
    } else {
        None
    };
    let binds = config.binds;
    let connect = move || {
        let (addr, bind, session, tls) = (addr.clone(), bind.clone(), session.clone(), tls.clone());
        let (slots, name) = (slots.clone(), slot_name.clone());
        async move {
            let slot = match &slots {
                Some(slots) => Some(slots.acquire(&name, binds).await),
                None => None,
            };
            let connected = match tls {
                Some((name, client)) => {
                    Client::connect_tls(addr.as_str(), name, client, kind, bind, session).await
                }
                None => Client::connect(addr.as_str(), kind, bind, session).await,
            };
            if let (Some(slot), Ok((client, _)), Some(slots)) = (slot, &connected, slots) {
                // The slot is held while the bind lasts; the bind ends
                // when the slot is lost, or yields it to a node that
                // has fewer than its share.
                let client = client.clone();
                tokio::spawn(async move {
                    let mut look = tokio::time::interval(YIELD_CHECK);
                    look.tick().await;
                    loop {
                        tokio::select! {
                            _ = client.closed() => return,
                            () = slot.lost() => {
                                tracing::warn!("bind slot lost: closing the upstream bind");
                                client.close();
                                return;
                            }
                            _ = look.tick() => {
                                if slots.should_yield(&slot, binds) {
                                    tracing::info!("bind slot yielded to another node");
                                    let _ = client.unbind().await;
                                    client.close();
                                    return;
                                }
                            }
                        }
                    }
                });
            }
            connected
        }
    };
    let mut flow = PoolConfig::default();
    if let Some(tps) = config.tps {
        flow = flow.with_tps(tps, 1);
    }
    let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    Ok(Pool::with_config(
        config.binds,
        connect,
        backoff,
        BIND_WAIT,
        flow,
    ))
}
