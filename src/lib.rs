//! pcbulk: apply a CSV of changes to Partner Center customer billing profiles, safely and resumably.
//!
//! The map of the crate, in the order a row travels:
//!
//! - [`input`] reads the CSV into typed change rows (streaming, one reused record buffer).
//! - [`fields`] is the catalog of the fields a row may change, with each field's rule.
//! - [`merge`] is pure: a profile as read plus a row's changes gives the profile to write, or "no change".
//! - [`undo`] is pure too: a profile as read plus the changes a job wrote gives the restore, or a conflict.
//! - [`pace`] holds the request rate (a governor limiter, adaptive on 429) and the concurrency bound.
//! - [`client`] makes the API calls: headers, retries, error classification; [`auth`] supplies tokens.
//! - [`outage`] notices a service-wide outage and turns retries into one slow probe at a time.
//! - [`engine`] is orchestration only: a reader feeds rows to a fixed set of workers that GET, merge and PUT.
//! - [`job`] identifies a job (CSV hash, base URL, kind), plans or resumes it, runs the engine, writes the report;
//!   [`job::rollback`] is the job that undoes an apply, planned from the apply's rows in the state file.
//! - [`preflight`] is pure: a country's rules and a merged profile give the rules it breaks.
//! - [`budget`] is pure: the error budget of a run (`--max-failures N` or `P%`).
//! - [`progress`] shows the engine's events: a bar on a terminal, plain lines in logs, nothing in tests.
//! - [`state`] is the SQLite state file: jobs, every row's outcome, before/after values; one owner thread.
//! - [`timeline`] samples requests and 429s per minute while a job runs, for the summary.
//! - [`summary`] sums a job up from the state file: JSON (`schemas/report-v1.json`) and a self-contained HTML page.
//! - [`validate`] is the offline check of a CSV (`pcbulk validate`).
//! - [`report`] writes the result report (formula-safe CSV, mode 0600, renamed into place when whole).
//! - [`wire`] holds what travels on the wire: headers, paths, error and token bodies. It is the only
//!   module the engine shares with the sandbox.
//! - [`partner`] reads and changes the partner's own four profiles (`pcbulk partner get|set`), with an audit trail.
//! - [`signin`] is `pcbulk login`: the browser (PKCE) and device code flows, and the kept sign-in that [`auth`]
//!   renews (a 0600 file, its refresh token replaced under a lock when the service rotates it).
//! - [`sandbox`] is a Partner Center stand-in on 127.0.0.1 for rehearsals and for every test.
//! - `sync` is the crate's one way to take a mutex (a poisoned lock taken back).
//! - [`cli`] parses the command line and resolves it once into the typed configurations above.

pub mod auth;
pub mod budget;
pub mod cli;
pub mod client;
pub mod engine;
pub mod fields;
pub mod files;
pub mod input;
pub mod job;
pub mod merge;
pub mod outage;
pub mod outputs;
pub mod pace;
pub mod partner;
pub mod preflight;
pub mod progress;
pub mod report;
pub mod sandbox;
pub mod signin;
pub mod state;
pub mod summary;
mod sync;
pub mod timeline;
pub mod undo;
pub mod validate;
pub mod wire;
