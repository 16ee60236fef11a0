//! The one way the crate takes a std mutex. Owns nothing else; uses nothing of the crate.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, taking it back when a panic elsewhere poisoned it. Every std mutex of the crate guards values that
/// are whole between single updates (counters, tables, a cache, a ticker's handle), so what a panicking thread left
/// behind is still good to use, and one panic must not take the rest of a job down with it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
