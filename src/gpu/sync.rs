//! Locks that outlive a panic: the device's state stays usable (and its errors reportable)
//! after a thread that held a lock panicked.

use std::sync::{Mutex, MutexGuard};

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
