//! Our side: a stand-in for `smpp serve --memory` (smpp-tokio's Server
//! answering every submit_sm with an in-memory id), and the idle-binds probe.

use std::sync::atomic::{AtomicU64, Ordering};

use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm, SubmitSmResp};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::{Client, Connection, Handler, Server, ServerConfig};

use crate::{listening, until_stdin_closes, Load};

struct Memory {
    next: AtomicU64,
}

impl Handler<Connection> for Memory {
    async fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
        Ok(())
    }

    async fn submit_sm(&self, _: &Connection, _: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        Ok(SubmitSmResp {
            // 8 hex digits: a 25-octet submit_sm_resp, as the raw ceiling's.
            message_id: format!("{:08X}", id & 0xFFFF_FFFF).into(),
            ..Default::default()
        })
    }
}

/// Serves until stdin closes.
pub(crate) async fn serve(listen: &str) -> Result<(), String> {
    // The inbound window must exceed any client window, or the server
    // throttles (ESME_RTHROTTLED) what the client legitimately pipelines.
    let session = SessionConfig::default()
        .with_max_in_flight(64)
        .with_max_inbound(4096);
    let config = ServerConfig::default()
        .with_session(session)
        .with_max_connections(20_000);
    let handler = Memory {
        next: AtomicU64::new(1),
    };
    let server = Server::bind(listen, handler, config)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    listening(server.local_addr().map_err(|e| e.to_string())?);
    let handle = server.handle();
    let running = tokio::spawn(server.run());
    until_stdin_closes().await;
    handle.shutdown();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), running).await;
    Ok(())
}

/// Binds per loopback source address: below the 28,000-odd ephemeral ports
/// Linux hands out per address (32768-60999), with room to spare.
const BINDS_PER_SOURCE: usize = 20_000;

/// Opens `count` idle transmitter binds, prints `BOUND n`, holds them until
/// stdin closes. Above [`BINDS_PER_SOURCE`] binds the connections come from
/// several loopback source addresses (127.0.0.2, 127.0.0.3, ...), so that
/// ephemeral ports do not run out; the open-file limit is raised as far as
/// the process may.
pub(crate) async fn idle_binds(load: Load, count: usize) -> Result<(), String> {
    let bind = Bind {
        system_id: (&load.system_id).into(),
        password: (&load.password).into(),
        interface_version: 0x34,
        ..Default::default()
    };
    crate::raise_file_limit(count as u64 + 1024);
    let config = std::sync::Arc::new(SessionConfig::default());
    let server: std::net::SocketAddr = load
        .addr()
        .parse()
        .map_err(|e| format!("{}: {e}", load.addr()))?;
    let sources = count.div_ceil(BINDS_PER_SOURCE);
    let mut clients = Vec::with_capacity(count);
    // In batches, so the server's accept backlog is never overrun.
    for chunk in (0..count).collect::<Vec<_>>().chunks(200) {
        let binds = chunk.iter().map(|&i| {
            let (bind, config) = (bind.clone(), config.clone());
            async move {
                if sources <= 1 {
                    return Client::connect(server, BindKind::Transmitter, bind, config).await;
                }
                // 127.0.0.2 upwards: 127.0.0.1 stays the server's.
                let source = std::net::Ipv4Addr::from_bits(0x7F00_0000 | (2 + i % sources) as u32);
                let socket = tokio::net::TcpSocket::new_v4()?;
                socket.bind(std::net::SocketAddr::from((source, 0)))?;
                let tcp = socket.connect(server).await?;
                Client::bind_over(tcp, BindKind::Transmitter, bind, config).await
            }
        });
        for bound in futures_util::future::join_all(binds).await {
            let (client, inbound) =
                bound.map_err(|e| format!("bind {} failed: {e}", clients.len() + 1))?;
            clients.push((client, inbound));
        }
    }
    {
        use std::io::Write as _;
        println!("BOUND {}", clients.len());
        let _ = std::io::stdout().flush();
    }
    until_stdin_closes().await;
    for (client, _) in &clients {
        client.close();
    }
    Ok(())
}
