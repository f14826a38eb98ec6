//! The [`Backend`] of the HTTP API over a running [`Smsc`].

use std::sync::Arc;

use smpp_server::metrics::Metrics;
use smpp_server::Smsc;

use super::http::{ApiError, Backend, MoRequest, MoResponse};

/// The HTTP API's view of a running SMSC.
#[derive(Debug)]
pub struct SmscBackend {
    smsc: Arc<Smsc>,
    metrics: Arc<Metrics>,
}

impl SmscBackend {
    /// The backend over `smsc`, exporting `metrics`.
    pub fn new(smsc: Arc<Smsc>, metrics: Arc<Metrics>) -> SmscBackend {
        SmscBackend { smsc, metrics }
    }
}

impl Backend for SmscBackend {
    async fn inject_mo(&self, mo: MoRequest) -> Result<MoResponse, ApiError> {
        let message = mo.short_message()?;
        let tlvs = mo.tlvs()?;
        match self.smsc.inject_mo_message_with(&message, &tlvs).await {
            Ok(message_ids) => Ok(MoResponse { message_ids }),
            Err(status)
                if status == smpp_proto::pdu::CommandStatus::INVALID_DESTINATION_ADDRESS =>
            {
                Err(ApiError::not_found(format!(
                    "no bound ESME receives messages for {}",
                    mo.to
                )))
            }
            Err(status) => Err(ApiError::bad_gateway(format!("not delivered: {status}"))),
        }
    }

    fn message(&self, id: &str) -> Option<serde_json::Value> {
        self.smsc
            .message(id)
            .and_then(|view| serde_json::to_value(view).ok())
    }

    fn metrics(&self) -> String {
        self.metrics.render()
    }

    fn snapshot(&self) -> smpp_server::metrics::Snapshot {
        self.metrics.snapshot()
    }

    fn sessions(&self) -> Vec<smpp_server::SessionView> {
        self.smsc.sessions()
    }

    fn session_connections(
        &self,
    ) -> Vec<(smpp_server::SessionView, Option<smpp_tokio::Connection>)> {
        self.smsc
            .session_connections()
            .into_iter()
            .map(|(s, c)| (s, Some(c)))
            .collect()
    }

    fn unbind_session(&self, id: u64) -> bool {
        self.smsc.unbind_session(id)
    }

    fn search(&self, filter: &smpp_server::MessageFilter, limit: usize) -> Vec<serde_json::Value> {
        self.smsc
            .search(filter, limit)
            .into_iter()
            .filter_map(|view| serde_json::to_value(view).ok())
            .collect()
    }

    fn simulation(&self) -> Option<smpp_server::Simulation> {
        Some(self.smsc.simulation())
    }

    fn set_simulation(&self, simulation: smpp_server::Simulation) -> bool {
        self.smsc.set_simulation(simulation);
        true
    }
}
