//! pcbulk: apply a CSV of changes to Partner Center customer billing profiles, safely and resumably.
//!
//! The map of the crate, in the order a row travels:
//!
//! - [`input`] reads the CSV into typed change rows (streaming, one reused record buffer), or a workbook's sheet.
//! - [`fields`] is the catalog of the fields a row may change, with each field's rule.
//! - [`merge`] is pure: a profile as read plus a row's changes gives the profile to write, or "no change".
//! - [`undo`] is pure too: a profile as read plus the changes a job wrote gives the restore, or a conflict.
//! - [`pace`] holds the request rate (a governor limiter, adaptive on 429) and the concurrency bound.
//! - [`client`] makes the API calls: headers, retries, error classification; [`auth`] supplies tokens.
//! - [`outage`] notices a service-wide outage and turns retries into one slow probe at a time.
//! - `write` owns the protocol of writing one profile safely (GET, merge, intent, PUT with If-Match, settle), for
//!   the engine's rows and `partner set|undo` alike.
//! - [`engine`] is orchestration only: a reader feeds rows to a fixed set of workers that write each through `write`.
//! - [`job`] identifies a job (CSV hash, base URL, kind), plans or resumes it, runs the engine, writes the report;
//!   [`job::rollback`] is the job that undoes an apply, planned from the apply's rows in the state file.
//! - [`preflight`] is pure: a country's rules and a merged profile give the rules it breaks.
//! - [`budget`] is pure: the error budget of a run (`--max-failures N` or `P%`).
//! - [`progress`] shows the engine's events: a bar on a terminal, plain lines in logs, nothing in tests.
//! - [`state`] is the SQLite state file: jobs, every row's outcome, before/after values; one owner thread.
//! - [`timeline`] samples requests and 429s per second while a job runs, for the summary's pace chart, whose
//!   bucket width [`buckets`] picks from the job's length.
//! - [`summary`] sums a job up from the state file: JSON (`schemas/report-v1.json`) and a self-contained HTML page.
//! - [`validate`] is the offline check of a CSV (`pcbulk validate`).
//! - [`report`] writes the result report (formula-safe CSV or a workbook, mode 0600, renamed into place when whole)
//!   through [`table`], which writes every table a person opens in a spreadsheet: CSV with a byte-order mark, or
//!   `.xlsx`.
//! - [`wire`] holds what travels on the wire: headers, paths, error and token bodies. It is the only
//!   module the engine shares with the sandbox.
//! - [`partner`] reads and changes the partner's own four profiles (`pcbulk partner get|set`), with an audit trail.
//! - [`signin`] is `pcbulk login`: the browser (PKCE) and device code flows, and the kept sign-in that [`auth`]
//!   renews (a 0600 file, its refresh token replaced under a lock when the service rotates it).
//! - [`sandbox`] is a Partner Center stand-in on 127.0.0.1 for rehearsals and for every test.
//! - `sync` is the crate's one way to take a mutex (a poisoned lock taken back).
//! - [`cli`] parses the command line and resolves it once into the typed configurations above.

pub mod auth;
pub mod buckets;
pub mod budget;
pub mod cli;
pub mod client;
pub mod control;
pub mod edited;
pub mod engine;
pub mod fields;
pub mod files;
pub mod http;
pub mod input;
pub mod job;
pub mod merge;
pub mod notify;
pub mod outage;
pub mod outputs;
pub mod pace;
pub mod partner;
pub mod preflight;
pub mod progress;
pub mod report;
pub mod sandbox;
pub mod secret;
pub mod signin;
pub mod state;
pub mod summary;
mod sync;
pub mod table;
pub mod threeway;
pub mod timeline;
pub mod undo;
pub mod validate;
pub mod wire;
pub mod words;
pub(crate) mod write;

#[cfg(test)]
mod architecture {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// Each top-level module and the top-level modules its code names (`crate::x`), comments left out.
    fn imports() -> BTreeMap<String, BTreeSet<String>> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut pending = vec![root.clone()];
        while let Some(path) = pending.pop() {
            if path.is_dir() {
                pending.extend(std::fs::read_dir(&path).unwrap().map(|entry| entry.unwrap().path()));
                continue;
            }
            if path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
            let module = relative.split(['/', '.']).next().unwrap().to_string();
            if module == "lib" || module == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let names = graph.entry(module.clone()).or_default();
            for line in text.lines().filter(|line| !line.trim_start().starts_with("//")) {
                for (at, _) in line.match_indices("crate::") {
                    let name: String =
                        line[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    if !name.is_empty() && name != module {
                        names.insert(name);
                    }
                }
            }
        }
        graph
    }

    /// Arrows only point down: no module reaches itself through the modules it names (STYLE: small leaf modules).
    #[test]
    fn the_import_graph_has_no_cycle() {
        let graph = imports();
        assert!(graph.len() > 20, "the modules were found: {graph:?}");
        fn visit(
            node: &str,
            graph: &BTreeMap<String, BTreeSet<String>>,
            path: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) -> Option<Vec<String>> {
            if let Some(at) = path.iter().position(|seen| seen == node) {
                let mut cycle = path[at..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            if !done.insert(node.to_string()) {
                return None;
            }
            path.push(node.to_string());
            for next in graph.get(node).into_iter().flatten() {
                if let Some(cycle) = visit(next, graph, path, done) {
                    return Some(cycle);
                }
            }
            path.pop();
            None
        }
        let mut done = BTreeSet::new();
        for module in graph.keys() {
            let cycle = visit(module, &graph, &mut Vec::new(), &mut done);
            assert!(cycle.is_none(), "an import cycle: {}", cycle.unwrap_or_default().join(" -> "));
        }
    }
}
