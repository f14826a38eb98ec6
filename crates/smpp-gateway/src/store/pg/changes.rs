//! A group of batches folded into the statements that apply it.

use std::collections::BTreeMap;

use tokio_postgres::types::ToSql;
use tokio_postgres::Statement;

use super::{int8, Statements};
use crate::store::{
    BatchRecord, HeldReceipt, MessageRecord, MessageState, Op, OwedReceipt, Quota, StoreResult,
    StoredAccount,
};

/// A statement's parameters, owned.
type Params = Vec<Box<dyn ToSql + Sync + Send>>;

macro_rules! params {
    ($($p:expr),* $(,)?) => {
        vec![$(Box::new($p) as Box<dyn ToSql + Sync + Send>),*]
    };
}

/// What a group of batches changes in the end: per key, its last write
/// (`None`: deleted); per account, its quotas set or the charges summed.
#[derive(Default)]
pub(super) struct Changes {
    messages: BTreeMap<u64, Option<MessageRecord>>,
    ids: BTreeMap<(String, String), Option<u64>>,
    receipts: BTreeMap<u64, Option<OwedReceipt>>,
    held: BTreeMap<u64, Option<HeldReceipt>>,
    accounts: BTreeMap<String, Option<StoredAccount>>,
    settings: BTreeMap<String, Option<String>>,
    batches: BTreeMap<u64, BatchRecord>,
    quotas: BTreeMap<String, QuotaChange>,
    max_id: u64,
    max_seq: u64,
    /// Accounts, settings or quotas set (or credited): the other nodes are
    /// told to read the configuration again.
    config_changed: bool,
}

#[derive(Clone, Copy)]
enum QuotaChange {
    Set(Quota),
    Charge { balance: i64, sms: i64 },
}

/// Checks what the database cannot store (numbers beyond `int8`), so
/// that one bad batch fails alone.
pub(super) fn check(ops: &[Op]) -> StoreResult<()> {
    for op in ops {
        match op {
            Op::PutMessage(r) | Op::DeleteMessage(r) => {
                int8(r.id)?;
                for n in [r.final_ms, r.receipt_due_ms].into_iter().flatten() {
                    int8(n)?;
                }
            }
            Op::MapUpstream { message, .. } => {
                int8(*message)?;
            }
            Op::PutReceipt(r) => {
                int8(r.seq)?;
                int8(r.message)?;
            }
            Op::PutHeld(h) => {
                int8(h.seq)?;
            }
            Op::DeleteReceipt(seq) | Op::DeleteHeld(seq) => {
                int8(*seq)?;
            }
            Op::PutBatch(b) => {
                int8(b.id)?;
            }
            _ => {}
        }
    }
    Ok(())
}

impl Changes {
    pub(super) fn add(&mut self, ops: Vec<Op>) {
        for op in ops {
            match op {
                Op::PutMessage(record) => {
                    self.max_id = self.max_id.max(record.id);
                    self.messages.insert(record.id, Some(record));
                }
                Op::DeleteMessage(record) => {
                    self.messages.insert(record.id, None);
                    if let Some(up) = record.upstream {
                        self.ids.insert((up.connector, up.key), None);
                    }
                }
                Op::MapUpstream {
                    upstream,
                    upstream_id,
                    message,
                } => {
                    self.ids.insert((upstream, upstream_id), Some(message));
                }
                Op::PutReceipt(receipt) => {
                    self.max_seq = self.max_seq.max(receipt.seq);
                    self.receipts.insert(receipt.seq, Some(receipt));
                }
                Op::DeleteReceipt(seq) => {
                    self.receipts.insert(seq, None);
                }
                Op::PutHeld(held) => {
                    self.max_seq = self.max_seq.max(held.seq);
                    self.held.insert(held.seq, Some(held));
                }
                Op::DeleteHeld(seq) => {
                    self.held.insert(seq, None);
                }
                Op::Charge {
                    account,
                    balance,
                    sms,
                } => {
                    // A credit (admin): the other nodes' view of it.
                    self.config_changed |= balance < 0 || sms < 0;
                    let change = match self.quotas.get(&account) {
                        Some(QuotaChange::Set(quota)) => {
                            QuotaChange::Set(quota.minus(balance, sms))
                        }
                        Some(QuotaChange::Charge { balance: b, sms: s }) => QuotaChange::Charge {
                            balance: b.saturating_add(balance),
                            sms: s.saturating_add(sms),
                        },
                        None => QuotaChange::Charge { balance, sms },
                    };
                    self.quotas.insert(account, change);
                }
                Op::SetQuota { account, quota } => {
                    self.config_changed = true;
                    self.quotas.insert(account, QuotaChange::Set(quota));
                }
                Op::PutBatch(batch) => {
                    self.max_id = self.max_id.max(batch.id);
                    self.batches.insert(batch.id, batch);
                }
                Op::PutAccount(account) => {
                    self.config_changed = true;
                    self.accounts
                        .insert(account.system_id.clone(), Some(account));
                }
                Op::DeleteAccount(id) => {
                    self.config_changed = true;
                    self.accounts.insert(id, None);
                }
                Op::PutSetting { key, value } => {
                    self.config_changed = true;
                    self.settings.insert(key, Some(value));
                }
                Op::DeleteSetting(key) => {
                    self.config_changed = true;
                    self.settings.insert(key, None);
                }
            }
        }
    }

    /// The statements that apply the changes, with their parameters; what
    /// it creates belongs to `node`.
    pub(super) fn statements<'s>(
        &self,
        st: &'s Statements,
        node: &str,
    ) -> StoreResult<Vec<(&'s Statement, Params)>> {
        let mut out: Vec<(&Statement, Params)> = Vec::new();
        let mut push = |statement, params: Params| {
            out.push((statement, params));
        };

        let (mut ids, mut unforwarded, mut waiting, mut finals, mut records) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut gone = Vec::new();
        for (id, record) in &self.messages {
            match record {
                Some(r) => {
                    ids.push(int8(*id)?);
                    unforwarded.push(r.state == MessageState::Accepted);
                    let due = r
                        .receipt_due_ms
                        .filter(|_| r.state == MessageState::Forwarded);
                    waiting.push(due.map(int8).transpose()?);
                    finals.push(r.final_ms.map(int8).transpose()?);
                    records.push(postcard::to_stdvec(r)?);
                }
                None => gone.push(int8(*id)?),
            }
        }
        if !ids.is_empty() {
            push(
                &st.upsert_messages,
                params![ids, unforwarded, waiting, finals, records, node.to_owned()],
            );
        }
        if !gone.is_empty() {
            push(&st.delete_messages, params![gone]);
        }

        let (mut connectors, mut keys, mut messages) = (Vec::new(), Vec::new(), Vec::new());
        let (mut gone_connectors, mut gone_keys) = (Vec::new(), Vec::new());
        for ((connector, key), message) in &self.ids {
            match message {
                Some(m) => {
                    connectors.push(connector.as_bytes().to_vec());
                    keys.push(key.as_bytes().to_vec());
                    messages.push(int8(*m)?);
                }
                None => {
                    gone_connectors.push(connector.as_bytes().to_vec());
                    gone_keys.push(key.as_bytes().to_vec());
                }
            }
        }
        if !connectors.is_empty() {
            push(&st.upsert_ids, params![connectors, keys, messages]);
        }
        if !gone_connectors.is_empty() {
            push(&st.delete_ids, params![gone_connectors, gone_keys]);
        }

        let (mut seqs, mut messages, mut accounts, mut records, mut gone) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut webhooks = Vec::new();
        for (seq, receipt) in &self.receipts {
            match receipt {
                Some(r) => {
                    seqs.push(int8(*seq)?);
                    messages.push(int8(r.message)?);
                    accounts.push(r.account.clone());
                    records.push(postcard::to_stdvec(r)?);
                    webhooks.push(r.webhook.is_some());
                }
                None => gone.push(int8(*seq)?),
            }
        }
        if !seqs.is_empty() {
            push(
                &st.upsert_receipts,
                params![seqs, messages, accounts, records, webhooks, node.to_owned()],
            );
        }
        if !gone.is_empty() {
            push(&st.delete_receipts, params![gone]);
        }

        let (mut seqs, mut connectors, mut keys, mut records, mut gone) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (seq, held) in &self.held {
            match held {
                Some(h) => {
                    seqs.push(int8(*seq)?);
                    connectors.push(h.upstream.as_bytes().to_vec());
                    keys.push(h.upstream_id.as_bytes().to_vec());
                    records.push(postcard::to_stdvec(h)?);
                }
                None => gone.push(int8(*seq)?),
            }
        }
        if !seqs.is_empty() {
            push(
                &st.upsert_held,
                params![seqs, connectors, keys, records, node.to_owned()],
            );
        }
        if !gone.is_empty() {
            push(&st.delete_held, params![gone]);
        }

        let (mut names, mut records, mut gone) = (Vec::new(), Vec::new(), Vec::new());
        for (name, account) in &self.accounts {
            match account {
                Some(a) => {
                    names.push(name.clone());
                    records.push(postcard::to_stdvec(a)?);
                }
                None => gone.push(name.clone()),
            }
        }
        if !names.is_empty() {
            push(&st.upsert_accounts, params![names, records]);
        }
        if !gone.is_empty() {
            push(&st.delete_accounts, params![gone]);
        }

        let (mut keys, mut values, mut gone) = (Vec::new(), Vec::new(), Vec::new());
        for (key, value) in &self.settings {
            match value {
                Some(v) => {
                    keys.push(key.clone());
                    values.push(v.as_bytes().to_vec());
                }
                None => gone.push(key.clone()),
            }
        }
        if !keys.is_empty() {
            push(&st.upsert_settings, params![keys, values]);
        }
        if !gone.is_empty() {
            push(&st.delete_settings, params![gone]);
        }

        if !self.batches.is_empty() {
            let (mut ids, mut accounts, mut records) = (Vec::new(), Vec::new(), Vec::new());
            for (id, batch) in &self.batches {
                ids.push(int8(*id)?);
                accounts.push(batch.account.clone());
                records.push(postcard::to_stdvec(batch)?);
            }
            push(&st.upsert_batches, params![ids, accounts, records]);
        }

        let (mut set, mut set_balance, mut set_sms) = (Vec::new(), Vec::new(), Vec::new());
        let (mut charged, mut balances, mut sms) = (Vec::new(), Vec::new(), Vec::new());
        for (account, change) in &self.quotas {
            match *change {
                QuotaChange::Set(q) => {
                    set.push(account.clone());
                    set_balance.push(q.balance);
                    set_sms.push(q.sms);
                }
                QuotaChange::Charge { balance, sms: s } => {
                    charged.push(account.clone());
                    balances.push(balance);
                    sms.push(s);
                }
            }
        }
        if !set.is_empty() {
            push(&st.set_quotas, params![set, set_balance, set_sms]);
        }
        if !charged.is_empty() {
            // A charge to an account without quotas leaves it unlimited
            // (a row of NULLs, as the other stores keep).
            push(&st.add_quotas, params![charged.clone()]);
            push(&st.charge_quotas, params![charged, balances, sms]);
        }

        if self.max_id > 0 {
            push(
                &st.raise_meta,
                params!["max_message_id".to_owned(), int8(self.max_id)?],
            );
        }
        if self.max_seq > 0 {
            push(
                &st.raise_meta,
                params!["max_seq".to_owned(), int8(self.max_seq)?],
            );
        }
        if self.config_changed {
            // Sent at commit, once per group.
            push(
                &st.notify,
                params![super::CONFIG_CHANNEL.to_owned(), node.to_owned()],
            );
        }
        Ok(out)
    }
}
