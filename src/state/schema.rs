//! The state file's schema, and the checks that refuse a file that is not ours.

use rusqlite::Connection;

/// Bumped on a change to the tables below that an older pcbulk cannot read; an older pcbulk refuses a newer file.
/// A new table needs no bump: `prepare` adds it to older files (every statement is `CREATE ... IF NOT EXISTS`).
pub const VERSION: i64 = 1;

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL UNIQUE,
    csv_path      TEXT NOT NULL,
    csv_hash      TEXT NOT NULL,
    base_url      TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_moved_at TEXT,
    finished_at   TEXT,
    requests      INTEGER NOT NULL DEFAULT 0,
    throttled     INTEGER NOT NULL DEFAULT 0,
    settled_rate  REAL
);
CREATE TABLE IF NOT EXISTS rows (
    job_id         INTEGER NOT NULL,
    line           INTEGER NOT NULL,
    customer_id    TEXT NOT NULL,
    status         TEXT NOT NULL,
    put_sent       INTEGER NOT NULL DEFAULT 0,
    changed_fields TEXT,
    before         TEXT,
    after          TEXT,
    http_status    INTEGER,
    error_code     TEXT,
    error          TEXT,
    attempts       INTEGER,
    request_id     TEXT,
    correlation_id TEXT,
    warnings       TEXT,
    preflight      TEXT,
    suggested_address TEXT,
    updated_at     TEXT,
    plan           TEXT,
    PRIMARY KEY (job_id, line)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS minutes (
    job_id    INTEGER NOT NULL,
    minute    INTEGER NOT NULL,
    requests  INTEGER NOT NULL DEFAULT 0,
    throttled INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, minute)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seconds (
    job_id    INTEGER NOT NULL,
    second    INTEGER NOT NULL,
    width     INTEGER NOT NULL,
    requests  INTEGER NOT NULL DEFAULT 0,
    throttled INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, second)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pace (
    job_id           INTEGER PRIMARY KEY,
    rate             INTEGER NOT NULL,
    seconds          REAL NOT NULL,
    requests         INTEGER NOT NULL,
    last_minute_rate REAL NOT NULL,
    throttled_secs   REAL NOT NULL,
    latency_secs     REAL NOT NULL,
    outage_secs      REAL NOT NULL,
    concurrency      INTEGER NOT NULL,
    peak_in_flight   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS partner_changes (
    id             INTEGER PRIMARY KEY,
    kind           TEXT NOT NULL,
    base_url       TEXT NOT NULL,
    intended_at    TEXT NOT NULL,
    changed_fields TEXT NOT NULL,
    before         TEXT NOT NULL,
    after          TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    finished_at    TEXT,
    http_status    INTEGER,
    error_code     TEXT,
    error          TEXT,
    request_id     TEXT,
    correlation_id TEXT
);
CREATE TABLE IF NOT EXISTS exports (
    job_id       INTEGER PRIMARY KEY,
    export_id    TEXT NOT NULL,
    columns      TEXT NOT NULL,
    listed       INTEGER NOT NULL DEFAULT 0,
    pages        INTEGER NOT NULL DEFAULT 0,
    next_page    TEXT
);
CREATE TABLE IF NOT EXISTS snapshots (
    job_id      INTEGER NOT NULL,
    customer_id TEXT NOT NULL,
    etag        TEXT,
    profile     TEXT NOT NULL,
    read_at     TEXT NOT NULL,
    PRIMARY KEY (job_id, customer_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rows_by_customer ON rows (job_id, lower(customer_id));
CREATE INDEX IF NOT EXISTS partner_changes_by_kind ON partner_changes (kind, id);
";

/// Who opens the file: the job that owns it (makes its tables), or a reader beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Owner,
    Reader,
}

/// Sets the connection up and makes or checks the tables. A file with tables that are not ours, or that is not
/// SQLite at all, is refused and left as it is. The tables are made on every open, so a file made before a table
/// was added gains it.
///
/// A reader (`status`, `report`, from another process while a job runs) never makes the tables: a file still
/// empty is a job starting, said so, and left for the job to make (a reader that made them raced the job's own
/// making, whose switch to WAL then met a lock and stopped the job).
pub fn prepare(connection: &Connection, role: Role) -> Result<(), String> {
    let refused = |detail: String| format!("not a pcbulk state file ({detail}); it is left as it is");
    // First, so every statement below (the switch to WAL too) waits out another process's lock instead of failing.
    connection.busy_timeout(std::time::Duration::from_secs(5)).map_err(|error| error.to_string())?;
    let tables: i64 = connection
        .query_row("SELECT COUNT(*) FROM sqlite_master", [], |row| row.get(0))
        .map_err(|error| refused(error.to_string()))?;
    if tables > 0 {
        let version: String = connection
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |row| row.get(0))
            .map_err(|error| refused(error.to_string()))?;
        if version != VERSION.to_string() {
            return Err(format!("made by another version of pcbulk (schema {version}; this one reads {VERSION})"));
        }
    }
    if tables == 0 && role == Role::Reader {
        return Err("it holds no job yet: a job is starting (try again in a moment)".to_string());
    }
    connection
        .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
        .map_err(|error| error.to_string())?;
    if tables > 0 {
        // Every table is `CREATE ... IF NOT EXISTS`: a file made by an older pcbulk gains the newer tables.
        connection.execute_batch(TABLES).map_err(|error| error.to_string())?;
        add_plan_column(connection).map_err(|error| error.to_string())?;
    } else {
        // One transaction: a process killed half-way through (autocommitted, `meta` made but not its row) left a
        // file that every later run refused as "not a pcbulk state file" (tests/crash.rs).
        let transaction = connection.unchecked_transaction().map_err(|error| error.to_string())?;
        transaction.execute_batch(TABLES).map_err(|error| error.to_string())?;
        transaction
            .execute("INSERT INTO meta (key, value) VALUES ('schema', ?1)", [VERSION.to_string()])
            .map_err(|error| error.to_string())?;
        transaction.commit().map_err(|error| error.to_string())?;
    }
    Ok(())
}

/// A file made before planning recorded each row's changes (`rows.plan`) gains the column; its jobs' plans are
/// filled from their CSV when they resume (`job::fill_plans`), checked against the hash they were planned with.
fn add_plan_column(connection: &Connection) -> rusqlite::Result<()> {
    let present: bool = connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('rows') WHERE name = 'plan')",
        [],
        |row| row.get(0),
    )?;
    if !present {
        connection.execute_batch("ALTER TABLE rows ADD COLUMN plan TEXT")?;
    }
    Ok(())
}
