//! The in-memory backend: the same semantics as the durable one, lost on exit.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use super::{
    BatchRecord, GatewayStore, HeldReceipt, MessageRecord, MessageState, Op, OwedReceipt, Quota,
    StoreFuture, StoredAccount,
};

#[derive(Debug, Default)]
struct Tables {
    messages: HashMap<u64, MessageRecord>,
    unforwarded: BTreeSet<u64>,
    /// (final_ms, id) of final messages.
    finals: BTreeSet<(u64, u64)>,
    /// (receipt_due_ms, id) of forwarded messages waiting for a receipt.
    waiting: BTreeSet<(u64, u64)>,
    ids: HashMap<(String, String), u64>,
    receipts: BTreeMap<u64, OwedReceipt>,
    held: BTreeMap<u64, HeldReceipt>,
    max_id: u64,
    max_seq: u64,
    quotas: BTreeMap<String, Quota>,
    batches: HashMap<u64, BatchRecord>,
    accounts: BTreeMap<String, StoredAccount>,
    settings: BTreeMap<String, String>,
}

/// Everything in memory (for `--memory` and tests).
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl GatewayStore for MemoryStore {
    fn write(&self, ops: Vec<Op>) -> StoreFuture<'_, ()> {
        let mut t = self.lock();
        for op in ops {
            match op {
                Op::PutMessage(record) => {
                    t.max_id = t.max_id.max(record.id);
                    if record.state == MessageState::Accepted {
                        t.unforwarded.insert(record.id);
                    } else {
                        t.unforwarded.remove(&record.id);
                    }
                    if let Some(at) = record.final_ms {
                        t.finals.insert((at, record.id));
                    }
                    if let Some(due) = record.receipt_due_ms {
                        if record.state == MessageState::Forwarded {
                            t.waiting.insert((due, record.id));
                        } else {
                            t.waiting.remove(&(due, record.id));
                        }
                    }
                    t.messages.insert(record.id, record);
                }
                Op::MapUpstream {
                    upstream,
                    upstream_id,
                    message,
                } => {
                    t.ids.insert((upstream, upstream_id), message);
                }
                Op::PutReceipt(receipt) => {
                    t.max_seq = t.max_seq.max(receipt.seq);
                    t.receipts.insert(receipt.seq, receipt);
                }
                Op::DeleteReceipt(seq) => {
                    t.receipts.remove(&seq);
                }
                Op::PutHeld(held) => {
                    t.max_seq = t.max_seq.max(held.seq);
                    t.held.insert(held.seq, held);
                }
                Op::DeleteHeld(seq) => {
                    t.held.remove(&seq);
                }
                Op::Charge {
                    account,
                    balance,
                    sms,
                } => {
                    let quota = t.quotas.entry(account).or_default();
                    *quota = quota.minus(balance, sms);
                }
                Op::PutBatch(batch) => {
                    t.max_id = t.max_id.max(batch.id);
                    t.batches.insert(batch.id, batch);
                }
                Op::PutAccount(account) => {
                    t.accounts.insert(account.system_id.clone(), account);
                }
                Op::DeleteAccount(id) => {
                    t.accounts.remove(&id);
                }
                Op::PutSetting { key, value } => {
                    t.settings.insert(key, value);
                }
                Op::DeleteSetting(key) => {
                    t.settings.remove(&key);
                }
                Op::SetQuota { account, quota } => {
                    t.quotas.insert(account, quota);
                }
                Op::DeleteMessage(record) => {
                    t.messages.remove(&record.id);
                    t.unforwarded.remove(&record.id);
                    if let Some(at) = record.final_ms {
                        t.finals.remove(&(at, record.id));
                    }
                    if let Some(due) = record.receipt_due_ms {
                        t.waiting.remove(&(due, record.id));
                    }
                    if let Some(up) = record.upstream {
                        t.ids.remove(&(up.connector, up.key));
                    }
                }
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn message(&self, id: u64) -> StoreFuture<'_, Option<MessageRecord>> {
        let found = self.lock().messages.get(&id).cloned();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn lookup<'a>(
        &'a self,
        upstream: &'a str,
        upstream_id: &'a str,
    ) -> StoreFuture<'a, Option<u64>> {
        let key = (upstream.to_owned(), upstream_id.to_owned());
        let found = self.lock().ids.get(&key).copied();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn unforwarded(&self) -> StoreFuture<'_, Vec<MessageRecord>> {
        let t = self.lock();
        let found = t
            .unforwarded
            .iter()
            .filter_map(|id| t.messages.get(id).cloned())
            .collect();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn overdue(&self, now_ms: u64, limit: usize) -> StoreFuture<'_, Vec<MessageRecord>> {
        let t = self.lock();
        let found = t
            .waiting
            .range(..(now_ms, 0))
            .take(limit)
            .filter_map(|(_, id)| t.messages.get(id).cloned())
            .collect();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn finished_before(&self, cutoff_ms: u64, limit: usize) -> StoreFuture<'_, Vec<MessageRecord>> {
        let t = self.lock();
        let found = t
            .finals
            .range(..(cutoff_ms, 0))
            .take(limit)
            .filter_map(|(_, id)| t.messages.get(id).cloned())
            .collect();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn receipts_owed(&self) -> StoreFuture<'_, Vec<OwedReceipt>> {
        let found = self.lock().receipts.values().cloned().collect();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn held(&self) -> StoreFuture<'_, Vec<HeldReceipt>> {
        let found = self.lock().held.values().cloned().collect();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn max_message_id(&self) -> StoreFuture<'_, u64> {
        let max = self.lock().max_id;
        Box::pin(std::future::ready(Ok(max)))
    }

    fn max_seq(&self) -> StoreFuture<'_, u64> {
        let max = self.lock().max_seq;
        Box::pin(std::future::ready(Ok(max)))
    }

    fn accounts(&self) -> StoreFuture<'_, Vec<StoredAccount>> {
        let found = self.lock().accounts.values().cloned().collect();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn recent<'a>(
        &'a self,
        scan: usize,
        limit: usize,
        matches: &'a (dyn Fn(&MessageRecord) -> bool + Send + Sync),
    ) -> StoreFuture<'a, Vec<MessageRecord>> {
        let tables = self.lock();
        let mut ids: Vec<u64> = tables.messages.keys().copied().collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let found = ids
            .iter()
            .take(scan)
            .filter_map(|id| tables.messages.get(id))
            .filter(|r| matches(r))
            .take(limit)
            .cloned()
            .collect();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn settings(&self) -> StoreFuture<'_, Vec<(String, String)>> {
        let found = self
            .lock()
            .settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn batch(&self, id: u64) -> StoreFuture<'_, Option<BatchRecord>> {
        let found = self.lock().batches.get(&id).cloned();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn quotas(&self) -> StoreFuture<'_, Vec<(String, Quota)>> {
        let quotas = self
            .lock()
            .quotas
            .iter()
            .map(|(a, q)| (a.clone(), *q))
            .collect();
        Box::pin(std::future::ready(Ok(quotas)))
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}
