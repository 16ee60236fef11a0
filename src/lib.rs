//! pcbulk: apply a CSV of changes to Partner Center customer billing profiles, safely and resumably.

pub mod auth;
pub mod client;
pub mod pace;
pub mod wire;
