//! `pcbulk export` as a job of the same engine: its rows are the partner's customers (listed a page at a time, each
//! page recorded with where the next one is, so a resume lists only what it has not; or the ids of a CSV), each
//! row's task a read ([`crate::engine::Plan::Read`]) whose outcome keeps the profile and its etag as the snapshot.
//! The listing runs beside the reads ([`Source::Arriving`]): a page's rows are read as soon as the recorder has
//! committed it, while the next page is asked for, through the one client and pace.
//! At the end the table (CSV or workbook) is written from the snapshots (`export_file`), in the listing's order.
//!
//! One export per state file (the exported CSV's default state file): a finished export is not made again over
//! itself unless `--restart`, since an edited copy of it is applied against its snapshots.

use super::{Feed, JobError, JobOutcome, Run, base_url_of, export_file};
use crate::client::{self, ApiConfig, CallError, Client};
use crate::engine::arrivals::{self, Announcer};
use crate::engine::{Ending, RunOptions, Source};
use crate::fields::Field;
use crate::input::CustomerId;
use crate::progress::Progress;
use crate::state::export::Export;
use crate::state::recorder::RecorderHandle;
use crate::state::{Job, JobKind, PlannedRow, RowStatus, StateFile, plan};
use crate::wire::listing::{CUSTOMERS_PATH, Collection, NextPage, SIZE_QUERY};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Where the customers come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Customers {
    /// The partner's listing, pages of this size.
    Listing { page_size: usize },
    /// These ids (the `customer_id` column of a CSV, `--customers`), in that order.
    Ids(Vec<String>),
}

/// An export, resolved from the command line.
#[derive(Clone, Debug)]
pub struct ExportConfig {
    /// The table to write: a workbook when the path ends in `.xlsx`, else CSV.
    pub out: PathBuf,
    pub state: PathBuf,
    /// The report of the reads (a row per customer: `unchanged` when read, `failed` with the service's words).
    pub report: PathBuf,
    /// The delimiter of the CSVs written (the export's and the report's): `--delimiter`.
    pub delimiter: u8,
    /// The catalog columns to write, in order.
    pub columns: Vec<&'static Field>,
    pub customers: Customers,
    /// `--restart`: export afresh over an earlier export in the state file.
    pub restart: bool,
    pub api: ApiConfig,
    pub grace: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(
        "state file {state} already holds an export (id {id}, made {at}), and an edited copy of it is applied against \
         its snapshots: give --restart to export afresh (that copy can then no longer be applied three-way), or \
         --state FILE / another --out to keep both"
    )]
    Done { state: String, id: String, at: String },
    #[error("listing the customers failed on page {page}: {error}; run the same command again to resume the listing")]
    Listing { page: u64, error: CallError },
    #[error("listing the customers: the page is not a customer collection: {0}")]
    Page(String),
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

impl From<crate::state::StateError> for ExportError {
    fn from(error: crate::state::StateError) -> ExportError {
        ExportError::Job(JobError::State(error))
    }
}

/// How an export ended.
#[derive(Debug)]
pub struct ExportOutcome {
    pub job: JobOutcome,
    pub export_id: String,
    /// Customers written to the CSV (the rows read); `None` when the run did not finish (nothing written).
    pub written: Option<u64>,
    pub listing_requests: u64,
}

/// Runs an export to its end (or its interruption) and writes the CSV.
pub async fn export(
    config: &ExportConfig,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Result<ExportOutcome, ExportError> {
    let started = Instant::now();
    let mut state = StateFile::open_for_job(&config.state)?;
    let (job, resumed) = existing_or_new(&mut state, config)?;
    let export = state.export_of(job.id)?.ok_or_else(|| ExportError::Page("the export's record is missing".into()))?;
    let client = client::connect(&config.api).map_err(JobError::from)?;
    // The listing runs beside the reads: a page's rows are read while the next page is asked for.
    let (source, feed, listed) = match Listing::to_do(&state, &job, &export, &config.customers)? {
        None => (Source::Plan { state: config.state.clone(), job: job.id, retry_failed: false }, None, None),
        Some(listing) => {
            let (announcer, arrivals) = arrivals::channel();
            let (result, listed) = tokio::sync::oneshot::channel();
            let (client, progress) = (client.clone(), progress.clone());
            let feed: Feed = Box::new(move |recorder, stop| {
                Box::pin(async move {
                    let _ = result.send(listing.run(&client, &recorder, &announcer, &*progress, &stop).await);
                })
            });
            (Source::Arriving { state: config.state.clone(), job: job.id, arrivals }, Some(feed), Some(listed))
        }
    };
    let run = Run {
        source,
        job: job.clone(),
        resumed,
        options: RunOptions {
            mode: crate::engine::Mode::Apply,
            retry_failed: false,
            grace: config.grace,
            preflight: Default::default(),
            guard: Default::default(),
        },
        report: config.report.clone(),
        started,
        watch: None,
        client: Some(client),
        delimiter: config.delimiter,
        feed,
    };
    let outcome = super::execute(state, run, &config.api, progress, cancel).await?;
    // A listing that failed stops the export with its own words (the rows it listed were read first). The feed drops
    // its sender unsent only when it did not run to its end (a panic): the reader then saw the feed gone and ended the
    // job unfinished, so nothing is written and the count of listing calls does not matter.
    let listing_requests = match listed {
        Some(listed) => listed.await.unwrap_or(Ok(0))?,
        None => 0,
    };
    let written = match outcome.ending {
        Ending::Complete => {
            let state = StateFile::open_existing(&config.state)?;
            Some(export_file::write(&state, job.id, &export, &config.out, config.delimiter)?)
        }
        _ => None,
    };
    Ok(ExportOutcome { job: outcome, export_id: export.id, written, listing_requests })
}

/// The export to resume, or a new one.
fn existing_or_new(state: &mut StateFile, config: &ExportConfig) -> Result<(Job, bool), ExportError> {
    let base_url = base_url_of(&config.api);
    if let Some(job) = state.find_job(JobKind::Export)? {
        let export = state.export_of(job.id)?;
        let display = state.path().display().to_string();
        if config.restart {
            state.delete_job(job.id)?;
        } else if job.base_url != base_url {
            let found = job.base_url.clone();
            return Err(JobError::OtherJob { state: display, what: "base URL", found }.into());
        } else if job.finished_at.is_some() && config.out.exists() {
            let id = export.map(|export| export.id).unwrap_or_default();
            return Err(ExportError::Done { state: display, id, at: job.created_at });
        } else {
            state.touch_job(job.id)?;
            return Ok((job, true));
        }
    }
    let columns = config.columns.iter().map(|field| field.name.to_string()).collect();
    let listed = matches!(config.customers, Customers::Ids(_));
    let export = Export { id: new_export_id(), columns, listed, pages: 0, next_page: None };
    let out = std::path::absolute(&config.out).unwrap_or_else(|_| config.out.clone()).display().to_string();
    let job = state.create_export(&out, &base_url, &export)?;
    if let Customers::Ids(ids) = &config.customers {
        let rows: Vec<PlannedRow> =
            ids.iter().enumerate().map(|(index, id)| row(index as u64, id, Map::new())).collect();
        state.record_page(job.id, &rows, None)?;
    }
    Ok((job, false))
}

/// A short random id (8 hex digits, the first a letter) for the `#export` column. The letter first keeps a
/// spreadsheet from reading the id as a number when it opens a CSV (`01234567` → `1234567`, `12e45678` →
/// `1.2E+46`), which would lose the export it names.
fn new_export_id() -> String {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now());
    format!("{:08x}", random as u32 | 0xA000_0000)
}

/// A customer as an export row: its line in the CSV (`index` + 2: the header is line 1), a read as its plan with
/// its notes; an id that is not a GUID is `invalid` (never read).
fn row(index: u64, id: &str, notes: Map<String, Value>) -> PlannedRow {
    let (status, error) = match CustomerId::parse(id.trim()) {
        Some(_) => (RowStatus::Pending, String::new()),
        None => (RowStatus::Invalid, format!("column customer_id: value {id:?}: not a GUID")),
    };
    let plan = (status == RowStatus::Pending).then(|| plan::encode_read(notes));
    PlannedRow {
        line: index + 2,
        customer_id: id.trim().to_ascii_lowercase(),
        status,
        error,
        warnings: String::new(),
        plan,
    }
}

/// The listing still to do: where its next page is, and the line its next row takes.
struct Listing {
    page_size: usize,
    next: Option<NextPage>,
    pages: u64,
    /// Rows listed so far: the next row is line `offset + 2`.
    offset: u64,
}

impl Listing {
    /// The listing left to do (`None`: every page is recorded, or the customers came from a file).
    fn to_do(
        state: &StateFile,
        job: &Job,
        export: &Export,
        customers: &Customers,
    ) -> Result<Option<Listing>, ExportError> {
        let Customers::Listing { page_size } = customers else { return Ok(None) };
        if export.listed {
            return Ok(None);
        }
        let next = match &export.next_page {
            Some(text) => Some(serde_json::from_str(text).map_err(|error| ExportError::Page(error.to_string()))?),
            None => None,
        };
        let offset = state.row_count(job.id)?;
        Ok(Some(Listing { page_size: *page_size, next, pages: export.pages, offset }))
    }

    /// Lists the pages not yet recorded, each committed by the recorder with where the next one is before the
    /// engine is told its rows are there; returns the listing calls made. A page retried after a fault is the same
    /// page (the same continuation), so no customer is skipped or repeated; a stop drops at most the page in flight,
    /// which a resume asks for again.
    async fn run(
        mut self,
        client: &Client,
        recorder: &RecorderHandle,
        announcer: &Announcer,
        progress: &dyn Progress,
        stop: &CancellationToken,
    ) -> Result<u64, ExportError> {
        let mut calls = 0;
        loop {
            let listed = tokio::select! {
                listed = self.next_page(client, recorder, &mut calls) => listed,
                () = stop.cancelled() => return Ok(calls),
            };
            match listed {
                Ok((rows, true)) => {
                    progress.more(rows);
                    announcer.done();
                    return Ok(calls);
                }
                Ok((rows, false)) => {
                    progress.more(rows);
                    announcer.more();
                }
                Err(error) => {
                    announcer.failed(error.to_string());
                    return Err(error);
                }
            }
        }
    }

    /// Lists and records the next page: its rows to read, and whether it was the last.
    async fn next_page(
        &mut self,
        client: &Client,
        recorder: &RecorderHandle,
        calls: &mut u64,
    ) -> Result<(u64, bool), ExportError> {
        let first = [(SIZE_QUERY.to_string(), self.page_size.to_string())];
        let answer = match &self.next {
            Some(page) => client.get_page(&page.path, &page.query, Some(&page.continuation)).await,
            None => client.get_page(CUSTOMERS_PATH, &first, None).await,
        };
        *calls += 1;
        let fetched = answer.map_err(|error| ExportError::Listing { page: self.pages + 1, error })?;
        let page: Collection =
            serde_json::from_value(fetched.body).map_err(|error| ExportError::Page(error.to_string()))?;
        let rows: Vec<PlannedRow> = page
            .items
            .iter()
            .enumerate()
            .map(|(index, item)| row(self.offset + index as u64, &item.id, notes(item)))
            .collect();
        let next = page.next();
        let text = next.as_ref().map(|page| serde_json::to_string(page).unwrap_or_default());
        let (count, to_read) = (rows.len() as u64, rows.iter().filter(|row| row.plan.is_some()).count() as u64);
        recorder.record_page(rows, text).await.map_err(JobError::State)?;
        (self.next, self.pages, self.offset) = (next, self.pages + 1, self.offset + count);
        Ok((to_read, self.next.is_none()))
    }
}

/// The notes the listing gives a row: the company's name and domain.
fn notes(item: &crate::wire::listing::Customer) -> Map<String, Value> {
    let mut notes = Map::new();
    notes.insert("#companyName".into(), item.company_profile.company_name.clone().into());
    notes.insert("#domain".into(), item.company_profile.domain.clone().into());
    notes
}
