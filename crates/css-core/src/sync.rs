// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The synchronization primitives of css-core: `std` normally, loom's under `--cfg loom` so
//! the locking of the driver and the registry can be model-checked (`cargo xtask loom`).
//!
//! Every lock here is synchronous and is never held across an `.await`: the guards are not
//! `Send`, so the compiler rejects a future that keeps one across a suspension point of a
//! spawned task.

#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard, RwLock};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// Poison-tolerant locking: the workspace's one helper ([`ccw_translate::sync`]); loom's
/// types are not `std`'s, so the loom build has its own below.
#[cfg(not(loom))]
pub(crate) use ccw_translate::sync::{lock, read, write};
/// Locks `m` (loom's mutex); a poisoned lock is taken over.
#[cfg(loom)]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Read access to a registry lock (loom's); a poisoned lock is taken over.
#[cfg(loom)]
pub(crate) fn read<T>(m: &RwLock<T>) -> loom::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}
/// Write access to a registry lock (loom's); a poisoned lock is taken over.
#[cfg(loom)]
pub(crate) fn write<T>(m: &RwLock<T>) -> loom::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}
