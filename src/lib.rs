//! pcbulk: apply a CSV of changes to Partner Center customer billing profiles, safely and resumably.

pub mod wire;
