//! `alert_notification`, simulated: a message submitted with `set_dpf` = 1
//! (a delivery pending flag is wanted when the recipient is unavailable)
//! whose routed recipient ESME was not bound waits for it; when that ESME
//! binds, the recipient counts as "available again" and the submitting
//! account's receiver gets one `alert_notification` per waiting address
//! (source_addr: the recipient, esme_addr: the message's originator,
//! `ms_availability_status` 0, available) before the waiting messages go.
//! Only an explicit `set_dpf` = 1 asks for an alert (the specification's
//! default when the TLV is absent is not applied: ESMEs that never ask
//! mostly do not expect alerts).

use std::sync::Arc;

use bytes::Bytes;
use smpp_proto::pdu::{AlertNotification, COctetString, TlvTag, Tlvs};

use super::Smsc;
use crate::clock::Clock;
use crate::jobs::{Job, BINDING_RETRY};
use crate::store::{Outcome, Record};

/// Waits for a receiver whose bind answer is not out yet, at most this many times.
const READY_TRIES: u32 = 100;

impl<C: Clock> Smsc<C> {
    /// Arms the jobs a bind released; first sends the alerts they owe.
    pub(super) fn resume_with_alerts(self: &Arc<Self>, jobs: Vec<(u64, Job)>) {
        let alerts = self.alerts_owed(&jobs);
        if alerts.is_empty() {
            let now = self.clock.now_ms();
            for (id, job) in jobs {
                self.schedule(now, id, job);
            }
            return;
        }
        let smsc = self.clone();
        tokio::spawn(async move {
            for (account, alert) in alerts {
                smsc.send_alert(&account, alert).await;
            }
            let now = smsc.clock.now_ms();
            for (id, job) in jobs {
                smsc.schedule(now, id, job);
            }
        });
    }

    /// One alert per (submitting account, recipient, originator) among the
    /// released routed messages that asked for one.
    fn alerts_owed(&self, jobs: &[(u64, Job)]) -> Vec<(String, AlertNotification)> {
        let mut alerts: Vec<(String, AlertNotification)> = Vec::new();
        for &(id, job) in jobs {
            if job != Job::Route {
                continue;
            }
            let Some(record) = self.get(id) else { continue };
            let Some(alert) = alert_for(&record) else {
                continue;
            };
            let account = record.account.to_string();
            let seen = alerts.iter().any(|(a, b)| {
                *a == account
                    && b.source_addr == alert.source_addr
                    && b.esme_addr == alert.esme_addr
            });
            if !seen {
                alerts.push((account, alert));
            }
        }
        alerts
    }

    /// Sends an alert to a receiver of `account` (best effort: none bound, none sent).
    async fn send_alert(&self, account: &str, alert: AlertNotification) {
        for _ in 0..READY_TRIES {
            let Some(esme) = self.receiver(account, None) else {
                tracing::debug!(account, "alert_notification not sent: no receiver bound");
                return;
            };
            if esme.ready() {
                if let Err(e) = esme.conn.alert(alert).await {
                    tracing::debug!(account, error = %e, "alert_notification not sent");
                }
                return;
            }
            self.clock.sleep(BINDING_RETRY).await;
        }
    }
}

/// The alert a waiting routed message owes, if it asked for one (`set_dpf` = 1).
fn alert_for(record: &Record) -> Option<AlertNotification> {
    if !record.kind.is_message() || record.outcome != Outcome::Pending {
        return None;
    }
    let tlvs = Tlvs::from_bytes(Bytes::from(record.tlvs.clone())).ok()?;
    if tlvs.set_dpf() != Some(1) {
        return None;
    }
    let recipient = record.dests.first()?;
    let mut out = Tlvs::new();
    out.set_u8(TlvTag::MS_AVAILABILITY_STATUS, 0);
    Some(AlertNotification {
        source_addr_ton: recipient.ton,
        source_addr_npi: recipient.npi,
        source_addr: COctetString::copy_from_str(&recipient.addr),
        esme_addr_ton: record.source.ton,
        esme_addr_npi: record.source.npi,
        esme_addr: COctetString::copy_from_str(&record.source.addr),
        tlvs: out,
    })
}
