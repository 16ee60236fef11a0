//! An OS credential store in memory, for the tests of the store and of `auth` (it can be made unreachable, or made
//! to fail from a given write on, as a store that breaks mid-way would).

use super::CredentialStore;
use crate::secret::Secret;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// An OS credential store in memory: `unreachable` fails the probe (and every call); `fail_sets_from` makes every `set` from that
/// call on (0 = the first) fail, as a store that breaks mid-way would; `fail_gets` makes reads fail.
#[derive(Debug, Default)]
pub(crate) struct Memory {
    pub(crate) entries: Mutex<HashMap<String, String>>,
    pub(crate) unreachable: AtomicBool,
    pub(crate) fail_sets_from: Mutex<Option<usize>>,
    pub(crate) fail_gets: AtomicBool,
    sets: AtomicUsize,
}

impl Memory {
    pub(crate) fn entries(&self) -> HashMap<String, String> {
        self.entries.lock().expect("not poisoned").clone()
    }
}

impl CredentialStore for Memory {
    fn describe(&self) -> &'static str {
        "the test's store"
    }

    fn probe(&self) -> Result<(), String> {
        if self.unreachable.load(Ordering::SeqCst) { Err("no session bus".into()) } else { Ok(()) }
    }

    fn get(&self, account: &str) -> Result<Option<Secret>, String> {
        self.probe()?;
        if self.fail_gets.load(Ordering::SeqCst) {
            return Err("the keyring is locked".into());
        }
        Ok(self.entries.lock().expect("not poisoned").get(account).cloned().map(Secret::new))
    }

    fn set(&self, account: &str, secret: &Secret) -> Result<(), String> {
        self.probe()?;
        let call = self.sets.fetch_add(1, Ordering::SeqCst);
        if self.fail_sets_from.lock().expect("not poisoned").is_some_and(|from| call >= from) {
            return Err("the store broke".into());
        }
        self.entries.lock().expect("not poisoned").insert(account.to_string(), secret.expose().to_string());
        Ok(())
    }

    fn delete(&self, account: &str) -> Result<bool, String> {
        self.probe()?;
        Ok(self.entries.lock().expect("not poisoned").remove(account).is_some())
    }
}
