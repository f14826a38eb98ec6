//! The schema, versioned: applied once each, under an advisory lock.

use tokio_postgres::Config;

use super::connect_client;
use crate::store::{StoreError, StoreResult};

/// The advisory lock the migrations run under ("smppgwm1").
const MIGRATION_LOCK: i64 = 0x736d_7070_6777_6d31;

/// The schema's versions, in order: each applied once, in one transaction.
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "gateway store",
        r#"
CREATE TABLE messages (
    id int8 PRIMARY KEY,
    unforwarded bool NOT NULL,
    -- receipt_due_ms while forwarded and not final
    waiting_due int8,
    final_ms int8,
    record bytea NOT NULL
);
CREATE INDEX messages_unforwarded ON messages (id) WHERE unforwarded;
CREATE INDEX messages_waiting ON messages (waiting_due, id) WHERE waiting_due IS NOT NULL;
CREATE INDEX messages_final ON messages (final_ms, id) WHERE final_ms IS NOT NULL;
CREATE TABLE upstream_ids (
    connector bytea NOT NULL,
    upstream_id bytea NOT NULL,
    message int8 NOT NULL,
    PRIMARY KEY (connector, upstream_id)
);
CREATE TABLE receipts_owed (
    seq int8 PRIMARY KEY,
    message int8 NOT NULL,
    account text NOT NULL,
    record bytea NOT NULL
);
CREATE TABLE receipts_held (
    seq int8 PRIMARY KEY,
    connector bytea NOT NULL,
    upstream_id bytea NOT NULL,
    record bytea NOT NULL
);
CREATE TABLE quotas (
    account text COLLATE "C" PRIMARY KEY,
    balance int8,
    sms int8
);
CREATE TABLE accounts (
    system_id text COLLATE "C" PRIMARY KEY,
    record bytea NOT NULL
);
CREATE TABLE settings (
    key text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);
CREATE TABLE batches (
    id int8 PRIMARY KEY,
    account text NOT NULL,
    record bytea NOT NULL
);
CREATE TABLE meta (
    key text PRIMARY KEY,
    value int8 NOT NULL
);
INSERT INTO meta (key, value) VALUES ('max_message_id', 0), ('max_seq', 0);
"#,
    ),
    (
        2,
        "cluster: nodes, what each owns",
        r#"
-- The gateways sharing the database: each a row while it runs (refreshed
-- every second); `ordinal` makes the ids it generates unique.
CREATE TABLE nodes (
    id text COLLATE "C" PRIMARY KEY,
    ordinal int4 NOT NULL UNIQUE,
    started_ms int8 NOT NULL,
    seen_ms int8 NOT NULL,
    -- receiver binds per account it holds: {"account": n}
    binds jsonb NOT NULL DEFAULT '{}'
);
-- The node that forwards a message and watches for its receipt.
ALTER TABLE messages ADD COLUMN node text COLLATE "C";
CREATE INDEX messages_open ON messages (node, id) WHERE final_ms IS NULL;
DROP INDEX messages_unforwarded;
CREATE INDEX messages_unforwarded ON messages (node, id) WHERE unforwarded;
-- The node delivering a receipt (NULL: whichever node the account binds to).
ALTER TABLE receipts_owed ADD COLUMN owner text COLLATE "C";
-- Goes to an HTTP receiver (any node can), not to a bind.
ALTER TABLE receipts_owed ADD COLUMN webhook bool NOT NULL DEFAULT false;
-- What a node claims: the receipts no node delivers, by account.
CREATE INDEX receipts_owed_unowned ON receipts_owed (account, seq)
    WHERE owner IS NULL AND NOT webhook;
CREATE INDEX receipts_owed_owner ON receipts_owed (owner, seq);
-- The node holding an unmatched upstream receipt.
ALTER TABLE receipts_held ADD COLUMN node text COLLATE "C";
-- Quotas never go below zero, whichever node charges: a charge that would
-- fails its transaction (and the message with it).
UPDATE quotas SET balance = 0 WHERE balance < 0;
UPDATE quotas SET sms = 0 WHERE sms < 0;
ALTER TABLE quotas ADD CONSTRAINT quotas_balance_not_negative CHECK (balance >= 0);
ALTER TABLE quotas ADD CONSTRAINT quotas_sms_not_negative CHECK (sms >= 0);
"#,
    ),
];

pub(super) async fn migrate_with(config: &Config) -> StoreResult<Vec<i64>> {
    // Its own connection: the lock goes with it, whatever happens.
    let client = connect_client(config).await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (\
             version int8 PRIMARY KEY, name text NOT NULL, \
             applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
    let done: Vec<i64> = client
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if let Some(newer) = done.iter().find(|v| **v > known) {
        return Err(StoreError::Engine(format!(
            "the database's schema is at version {newer}, newer than this gateway knows \
             ({known}): upgrade the gateway"
        )));
    }
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        client.batch_execute("BEGIN").await?;
        let result = async {
            client.batch_execute(sql).await?;
            client
                .execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    &[version, name],
                )
                .await?;
            client.batch_execute("COMMIT").await
        }
        .await;
        if let Err(e) = result {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(StoreError::Engine(format!(
                "migration {version} ({name}) failed: {e}"
            )));
        }
        tracing::info!(version, name, "database migrated");
        applied.push(*version);
    }
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    Ok(applied)
}
