//! The errors of the sandbox's library API (starting it, seeding it, driving it through its handle).
//!
//! Errors the sandbox *answers* to clients are HTTP responses, built in `respond`, not these.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {message}", path.display())]
    SeedFile { path: PathBuf, message: String },
    #[error("seed profile {index}: {message}")]
    SeedProfile { index: usize, message: String },
    #[error("invalid faults: {0}")]
    Faults(String),
    #[error("no customer with id {0}")]
    UnknownCustomer(String),
    #[error("cannot set {path} on customer {customer_id}: a value on the way is not an object")]
    Path { customer_id: String, path: String },
}
