//! The database schema and its migrations.
//!
//! Two tables in the connection's schema (the first of its `search_path`, `public` by default):
//! `events`, column for column the SQLite backend's (so rows copy between them unchanged), and
//! `citydb_meta`, a key/value table holding `schema_version` and `hash_format`. Migrations run
//! forward only, all in one transaction, under the advisory lock [`MIGRATE_LOCK_KEY`] so that
//! several processes connecting to a fresh database at once migrate it exactly once.

use tokio_postgres::Client;

use citydb_log::LogError;

use crate::storage_error;

/// The newest schema this build knows. Connecting to a database with a newer one fails with
/// `LogError::NewerFormat` rather than risk misreading it.
pub const SCHEMA_VERSION: u32 = 1;

/// Key of the transaction-scoped advisory lock every append holds from before it reads the tip
/// until after it commits ("cdyb" then 1). Advisory locks are per database.
pub const APPEND_LOCK_KEY: i64 = 0x6364_7962_0000_0001;

/// Key of the advisory lock held while checking and migrating the schema.
pub const MIGRATE_LOCK_KEY: i64 = 0x6364_7962_0000_0002;

/// The LISTEN/NOTIFY channel; every append that writes events notifies its last position.
pub const NOTIFY_CHANNEL: &str = "citydb_log";

/// Each entry migrates from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the log itself. `data` and `metadata` are BYTEA so that the exact appended bytes
    // come back (JSONB would re-serialise them and break the hashes); `data` is NULL once
    // redacted. The CHECKs keep rows decodable; they are not what proves integrity (the hash
    // chain is).
    r#"
    CREATE TABLE events (
        position         BIGINT NOT NULL CHECK (position >= 0),
        stream_id        TEXT   NOT NULL,
        stream_version   BIGINT NOT NULL CHECK (stream_version >= 0),
        event_id         UUID   NOT NULL,
        event_type       TEXT   NOT NULL,
        schema_version   BIGINT NOT NULL CHECK (schema_version BETWEEN 0 AND 4294967295),
        recorded_at      BIGINT NOT NULL,
        data             BYTEA,
        metadata         BYTEA  NOT NULL,
        data_hash        BYTEA  NOT NULL CHECK (octet_length(data_hash) = 32),
        prev_stream_hash BYTEA  NOT NULL CHECK (octet_length(prev_stream_hash) = 32),
        prev_log_hash    BYTEA  NOT NULL CHECK (octet_length(prev_log_hash) = 32),
        hash             BYTEA  NOT NULL CHECK (octet_length(hash) = 32),
        CONSTRAINT events_pkey PRIMARY KEY (position),
        CONSTRAINT events_event_id_key UNIQUE (event_id),
        CONSTRAINT events_by_stream UNIQUE (stream_id, stream_version)
    );
    INSERT INTO citydb_meta (key, value) VALUES ('hash_format', '1');
    "#,
];

/// Name of the unique constraint on event ids: a violation of it is an idempotency conflict.
pub(crate) const EVENT_ID_CONSTRAINT: &str = "events_event_id_key";

/// Checks that the database holds a citydb log (or none yet) and brings its schema up to date.
/// `database` names the database in errors.
pub async fn prepare(client: &Client, database: &str) -> Result<(), LogError> {
    client
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({MIGRATE_LOCK_KEY})"
        ))
        .await
        .map_err(storage_error)?;
    let result = migrate(client, database).await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = client.batch_execute(end).await.map_err(storage_error);
    result.and(ended)
}

async fn migrate(client: &Client, database: &str) -> Result<(), LogError> {
    let row = client
        .query_one(
            "SELECT to_regclass('citydb_meta') IS NOT NULL, to_regclass('events') IS NOT NULL",
            &[],
        )
        .await
        .map_err(storage_error)?;
    let has_meta: bool = row.try_get(0).map_err(storage_error)?;
    let has_events: bool = row.try_get(1).map_err(storage_error)?;
    let not_a_log = |reason: String| LogError::NotACitydbLog {
        path: format!("PostgreSQL database {database}"),
        reason,
    };
    let version = if has_meta {
        let value: Option<String> = client
            .query_opt(
                "SELECT value FROM citydb_meta WHERE key = 'schema_version'",
                &[],
            )
            .await
            .map_err(storage_error)?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(storage_error)?;
        let value = value.ok_or_else(|| not_a_log("citydb_meta has no schema_version".into()))?;
        value
            .parse::<u32>()
            .map_err(|_| not_a_log(format!("its schema version {value:?} is not a number")))?
    } else if has_events {
        // Somebody else's `events` table: not ours to take over.
        return Err(not_a_log(
            "it has an `events` table but no citydb_meta".into(),
        ));
    } else {
        client
            .batch_execute(
                "CREATE TABLE citydb_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 INSERT INTO citydb_meta (key, value) VALUES ('schema_version', '0');",
            )
            .await
            .map_err(storage_error)?;
        0
    };
    if version > SCHEMA_VERSION {
        return Err(LogError::NewerFormat {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        client.batch_execute(sql).await.map_err(storage_error)?;
        let to = (from + 1).to_string();
        client
            .execute(
                "UPDATE citydb_meta SET value = $1 WHERE key = 'schema_version'",
                &[&to],
            )
            .await
            .map_err(storage_error)?;
    }
    Ok(())
}
