//! pcbulk: apply a CSV of changes to Partner Center customer billing profiles, safely and resumably.
//!
//! Modules: `wire` (what travels between a client and Partner Center: headers, paths, error and token shapes) and
//! `sandbox` (a Partner Center stand-in on 127.0.0.1 for rehearsals and tests; it shares only `wire` with the rest).

pub mod sandbox;
pub mod wire;
