//! An export's record in the state file: its id and columns, the listing's progress (recorded a page at a time
//! with the rows it listed and where the next page is, so a resumed export does not list again what it has), and
//! the snapshot of every profile read (customer, etag, profile JSON, when), written by the recorder with the row's
//! outcome. An apply of the edited export reads the snapshots through [`Snapshots`], a read-only connection.

use super::{Job, JobKind, PlannedRow, StateError, StateFile};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::Path;

/// A profile as an export read it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub customer_id: String,
    pub etag: Option<String>,
    /// The profile JSON exactly as read.
    pub profile: String,
}

/// An export as recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Export {
    /// The short id every `#export` cell of its CSV holds.
    pub id: String,
    /// The catalog columns written, in order.
    pub columns: Vec<String>,
    /// The listing is complete (or the customers came from a file).
    pub listed: bool,
    /// Pages listed so far.
    pub pages: u64,
    /// Where the next page is (JSON of `wire::listing::NextPage`), while the listing is not complete.
    pub next_page: Option<String>,
}

/// A row of an exported CSV: its line, customer, notes (JSON) and the snapshot's profile.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportedRow {
    pub line: u64,
    pub customer_id: String,
    pub notes: Option<String>,
    pub profile: String,
}

impl StateFile {
    /// Records a new export job (no rows yet: the listing adds them a page at a time).
    pub fn create_export(&mut self, out: &str, base_url: &str, export: &Export) -> Result<Job, StateError> {
        let created =
            self.create_job(JobKind::Export, out, &format!("export:{}", export.id), base_url, std::iter::empty())?;
        let job = created.map_err(|error| StateError::RecorderGone(error.to_string()))?;
        self.connection.execute(
            "INSERT INTO exports (job_id, export_id, columns, listed, next_page) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![job.id, export.id, export.columns.join(","), export.listed, export.next_page],
        )?;
        Ok(job)
    }

    /// The export of a job.
    pub fn export_of(&self, job: i64) -> Result<Option<Export>, StateError> {
        let export = self
            .connection
            .query_row(
                "SELECT export_id, columns, listed, pages, next_page FROM exports WHERE job_id = ?1",
                params![job],
                |row| {
                    let columns: String = row.get(1)?;
                    Ok(Export {
                        id: row.get(0)?,
                        columns: columns.split(',').filter(|name| !name.is_empty()).map(String::from).collect(),
                        listed: row.get(2)?,
                        pages: row.get(3)?,
                        next_page: row.get(4)?,
                    })
                },
            )
            .optional()?;
        Ok(export)
    }

    /// Records one page of the listing: its rows and where the next page is (`None`: it was the last), in one
    /// transaction, so a resume continues after the last page recorded. (While the job runs, the recorder does
    /// this: [`super::recorder::RecorderHandle::record_page`].)
    pub fn record_page(&mut self, job: i64, rows: &[PlannedRow], next_page: Option<&str>) -> Result<(), StateError> {
        let transaction = self.connection.transaction()?;
        insert_page(&transaction, job, rows, next_page)?;
        transaction.commit()?;
        Ok(())
    }

    /// The rows listed so far.
    pub fn row_count(&self, job: i64) -> Result<u64, StateError> {
        Ok(self.connection.query_row("SELECT COUNT(*) FROM rows WHERE job_id = ?1", params![job], |row| row.get(0))?)
    }

    /// Every row of the export that has a snapshot, in line order.
    pub fn each_exported(
        &self,
        job: i64,
        mut each: impl FnMut(ExportedRow) -> std::io::Result<()>,
    ) -> Result<std::io::Result<()>, StateError> {
        let mut statement = self.connection.prepare(
            "SELECT rows.line, rows.customer_id, rows.plan, snapshots.profile FROM rows
             JOIN snapshots ON snapshots.job_id = rows.job_id AND snapshots.customer_id = lower(rows.customer_id)
             WHERE rows.job_id = ?1 ORDER BY rows.line",
        )?;
        let mut rows = statement.query(params![job])?;
        while let Some(row) = rows.next()? {
            let exported =
                ExportedRow { line: row.get(0)?, customer_id: row.get(1)?, notes: row.get(2)?, profile: row.get(3)? };
            if let Err(error) = each(exported) {
                return Ok(Err(error));
            }
        }
        Ok(Ok(()))
    }
}

/// A page of the listing, in the caller's transaction: its rows, and the export's progress with where the next
/// page is.
pub(super) fn insert_page(
    transaction: &rusqlite::Transaction<'_>,
    job: i64,
    rows: &[PlannedRow],
    next_page: Option<&str>,
) -> Result<(), rusqlite::Error> {
    let mut insert = transaction.prepare_cached(
        "INSERT OR IGNORE INTO rows (job_id, line, customer_id, status, error, warnings, plan)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for row in rows {
        let status = row.status.name();
        insert.execute(params![job, row.line, row.customer_id, status, row.error, row.warnings, row.plan])?;
    }
    transaction.execute(
        "UPDATE exports SET pages = pages + 1, next_page = ?2, listed = ?3 WHERE job_id = ?1",
        params![job, next_page, next_page.is_none()],
    )?;
    Ok(())
}

/// The snapshots of an export, read from its state file over a read-only connection of their own (the apply that
/// reads them may hold the same file for its own job).
pub struct Snapshots {
    connection: Connection,
    job: i64,
    pub export: Export,
    /// When the export was made.
    pub created_at: String,
    /// The API the export read from.
    pub base_url: String,
}

impl Snapshots {
    /// The export in the state file at `path`, if it holds one (and it is whole: every page listed).
    pub fn open(path: &Path) -> Result<Option<Snapshots>, StateError> {
        let unusable = |error: rusqlite::Error| StateError::Unusable {
            path: path.display().to_string(),
            message: format!("cannot read the export: {error}"),
        };
        if !path.is_file() {
            return Ok(None);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags).map_err(unusable)?;
        connection.busy_timeout(std::time::Duration::from_secs(5)).map_err(unusable)?;
        let found = connection
            .query_row(
                "SELECT jobs.id, jobs.created_at, exports.export_id, exports.columns, exports.listed, exports.pages,
                        jobs.base_url
                 FROM jobs JOIN exports ON exports.job_id = jobs.id WHERE jobs.kind = 'export'",
                [],
                |row| {
                    let columns: String = row.get(3)?;
                    let export = Export {
                        id: row.get(2)?,
                        columns: columns.split(',').filter(|name| !name.is_empty()).map(String::from).collect(),
                        listed: row.get(4)?,
                        pages: row.get(5)?,
                        next_page: None,
                    };
                    Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, export, row.get::<_, String>(6)?))
                },
            )
            .optional();
        // A state file of another kind of job (no `exports` table in an older file): no export there.
        let Ok(found) = found else { return Ok(None) };
        Ok(found.map(|(job, created_at, export, base_url)| Snapshots { connection, job, export, created_at, base_url }))
    }

    /// The snapshot of a customer (id in any case), if the export read it.
    pub fn get(&self, customer_id: &str) -> Result<Option<Snapshot>, StateError> {
        let customer_id = customer_id.to_ascii_lowercase();
        let mut statement = self
            .connection
            .prepare_cached("SELECT etag, profile FROM snapshots WHERE job_id = ?1 AND customer_id = ?2")?;
        let found = statement
            .query_row(params![self.job, customer_id], |row| {
                Ok(Snapshot { customer_id: customer_id.clone(), etag: row.get(0)?, profile: row.get(1)? })
            })
            .optional()?;
        Ok(found)
    }
}
