//! Outbind (SMPP 3.4 §2.2.1, §4.1.7): for each configured ESME, while no
//! receiver of its account is bound, the server connects to the ESME's
//! listener and sends `outbind` (system_id: ours, password: the configured
//! one); the ESME binds on that connection (receiver, or transceiver in
//! 5.0), authenticated like any bind, and is then an ordinary bound session
//! that gets what waits for its account. An unreachable ESME, or one that
//! closes without binding (or binds as another account: that session is
//! ended), is tried again after 1 s, 2 s, 4 s... up to the target's interval.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use smpp_proto::pdu::{COctetString, Outbind};
use smpp_tokio::ServerHandle;

use super::Smsc;
use crate::clock::Clock;
use crate::config::OutbindTarget;

/// How often a bound account is looked at (to outbind again once it is gone).
const WATCH: Duration = Duration::from_millis(500);
/// How long the ESME has to bind after our outbind.
const BIND_WAIT: Duration = Duration::from_secs(30);
/// The first wait after a failed attempt (then doubling).
const FIRST_RETRY: Duration = Duration::from_secs(1);

impl<C: Clock> Smsc<C> {
    /// Keeps `target` bound through outbinds until the server stops.
    pub(crate) async fn run_outbind(self: Arc<Self>, handle: ServerHandle, target: OutbindTarget) {
        let mut failures = 0u32;
        while !self.stopping.load(Ordering::Acquire) {
            if self.receiver(&target.system_id, None).is_some() {
                // Bound (through us or on its own): look again later.
                failures = 0;
                self.clock.sleep(WATCH).await;
                continue;
            }
            if self.outbind_once(&handle, &target).await {
                failures = 0;
                continue;
            }
            failures = failures.saturating_add(1);
            let wait = FIRST_RETRY
                .saturating_mul(1 << failures.saturating_sub(1).min(16))
                .min(target.interval);
            tracing::debug!(
                system_id = target.system_id,
                address = target.address,
                ?wait,
                "outbind: retrying"
            );
            self.clock.sleep(wait).await;
        }
    }

    /// One outbind: `true` if the ESME bound on it (and the session has
    /// ended since), `false` if it could not be reached or did not bind.
    async fn outbind_once(&self, handle: &ServerHandle, target: &OutbindTarget) -> bool {
        let outbind = Outbind {
            system_id: COctetString::copy_from_str(&self.config.system_id),
            password: COctetString::copy_from_str(&target.password),
            ..Default::default()
        };
        let conn = match handle.outbind(target.address.as_str(), outbind).await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::info!(system_id = target.system_id, address = target.address, error = %e, "outbind failed");
                return false;
            }
        };
        tracing::info!(
            system_id = target.system_id,
            address = target.address,
            "outbind sent"
        );
        // Bound once our bind answer is out (a refused bind leaves it unbound).
        let bound = async {
            while conn.bind_kind().is_none() {
                self.clock.sleep(Duration::from_millis(20)).await;
            }
        };
        let closed = conn.closed();
        tokio::pin!(closed);
        tokio::select! {
            _ = &mut closed => return false,
            _ = self.clock.sleep(BIND_WAIT) => {
                tracing::info!(system_id = target.system_id, "no bind after outbind: closing");
                conn.close();
                return false;
            }
            () = bound => {}
        }
        let bound_as = conn.system_id().unwrap_or_default();
        if bound_as != target.system_id {
            // Another account's session is not what this outbind is for (and
            // outbinding again would open one more each time): end it.
            tracing::warn!(
                expected = target.system_id,
                bound_as,
                "ESME bound as another account after our outbind: unbinding"
            );
            let _ = conn.unbind().await;
            conn.close();
            return false;
        }
        tracing::info!(system_id = target.system_id, "bound through outbind");
        closed.await;
        true
    }
}
