//! The OS credential store, through the `keyring` crate: the macOS Keychain, the Windows Credential Manager, the
//! Secret Service of a Linux (or BSD) desktop, reached over D-Bus by `zbus` with pure-Rust crypto (no libdbus, no
//! system package at build time).
//!
//! Each call runs on a thread of its own and is given [`CALL_WITHIN`]: a store that never answers (a locked keyring
//! whose unlock prompt nobody sees, a session bus that hangs) is an unreachable store, not a hung command; and the
//! Secret Service backend's own runtime never runs inside the caller's. Errors are put in words here, never with the
//! bytes of an entry (`keyring::Error::BadEncoding` holds them).

use super::store::CredentialStore;
use crate::secret::Secret;
use std::time::Duration;

/// The longest wait for one call to the OS store.
const CALL_WITHIN: Duration = Duration::from_secs(20);

/// The service name of pcbulk's entries in the OS store.
const SERVICE: &str = "pcbulk sign-in";

/// The OS credential store of this platform, when pcbulk is built with one.
pub fn platform() -> Option<Box<dyn CredentialStore>> {
    if cfg!(any(
        target_os = "macos",
        target_os = "windows",
        target_os = "linux",
        target_os = "freebsd",
        target_os = "openbsd"
    )) {
        Some(Box::new(OsStore))
    } else {
        // keyring's default elsewhere is an in-memory mock, which would lose the sign-in at exit.
        None
    }
}

/// The platform's store, as `keyring` picks it.
#[derive(Debug)]
struct OsStore;

impl CredentialStore for OsStore {
    fn describe(&self) -> &'static str {
        if cfg!(target_os = "macos") {
            "the macOS Keychain"
        } else if cfg!(windows) {
            "the Windows Credential Manager"
        } else {
            "the Secret Service"
        }
    }

    fn probe(&self) -> Result<(), String> {
        // Reading an entry that is not there reaches the store without changing it.
        match bounded(|| entry("pcbulk probe")?.get_password().map(drop)) {
            Ok(()) | Err(Failed::Absent) => Ok(()),
            Err(Failed::Other(reason)) => Err(reason),
        }
    }

    fn get(&self, account: &str) -> Result<Option<Secret>, String> {
        let account = account.to_string();
        match bounded(move || entry(&account)?.get_password()) {
            Ok(value) => Ok(Some(Secret::new(value))),
            Err(Failed::Absent) => Ok(None),
            Err(Failed::Other(reason)) => Err(reason),
        }
    }

    fn set(&self, account: &str, secret: &Secret) -> Result<(), String> {
        let (account, value) = (account.to_string(), secret.clone());
        bounded(move || entry(&account)?.set_password(value.expose())).map_err(Failed::reason)
    }

    fn delete(&self, account: &str) -> Result<bool, String> {
        let account = account.to_string();
        match bounded(move || entry(&account)?.delete_credential()) {
            Ok(()) => Ok(true),
            Err(Failed::Absent) => Ok(false),
            Err(Failed::Other(reason)) => Err(reason),
        }
    }
}

fn entry(account: &str) -> keyring::Result<keyring::Entry> {
    keyring::Entry::new(SERVICE, account)
}

/// Why a call did not do what it asked.
enum Failed {
    /// No such entry.
    Absent,
    Other(String),
}

impl Failed {
    fn reason(self) -> String {
        match self {
            Failed::Absent => "no such entry".into(),
            Failed::Other(reason) => reason,
        }
    }
}

/// Runs one call on a thread of its own, waiting at most [`CALL_WITHIN`] (the thread is left behind when it hangs).
fn bounded<T: Send + 'static>(call: impl FnOnce() -> keyring::Result<T> + Send + 'static) -> Result<T, Failed> {
    let (sender, receiver) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new().name("os-credential-store".into()).spawn(move || {
        // The receiver may be gone after a timeout: nobody waits for the answer then.
        let _ = sender.send(call());
    });
    if let Err(error) = spawned {
        return Err(Failed::Other(format!("cannot start a thread: {error}")));
    }
    match receiver.recv_timeout(CALL_WITHIN) {
        Ok(answer) => answer.map_err(words),
        Err(_) => Err(Failed::Other(format!("no answer within {} s", CALL_WITHIN.as_secs()))),
    }
}

/// An error of the store in words, without an entry's contents.
fn words(error: keyring::Error) -> Failed {
    use keyring::Error;
    let reason = match error {
        Error::NoEntry => return Failed::Absent,
        Error::PlatformFailure(source) | Error::NoStorageAccess(source) => one_line(&source.to_string()),
        Error::BadEncoding(_) => "its entry is not text".into(),
        Error::TooLong(name, limit) => format!("{name} is longer than the store allows ({limit})"),
        Error::Invalid(name, reason) => format!("{name} is invalid: {reason}"),
        Error::Ambiguous(found) => format!("{} entries match", found.len()),
        other => one_line(&other.to_string()),
    };
    Failed::Other(reason)
}

/// A platform's message on one line, at most 200 characters.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(200).collect()
}
