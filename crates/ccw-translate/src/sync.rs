// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The one poison-tolerant lock helper of ccw-rs.
//!
//! Every crate of the workspace locks its short, synchronous critical sections through
//! [`lock`] ([`read()`] and [`write()`] for a read-mostly lock); css-core keeps a copy over
//! loom's types for its models, which are not `std`'s. It lives here, in the lowest crate
//! that uses `std`, so the mappers, css-core and the backends share it.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `m`; a poisoned lock (a panic while it was held) is taken over.
///
/// Sound only where every critical section leaves the protected state consistent before
/// anything that can panic, which is the rule for every lock of ccw-rs: a panicking test or
/// worker must not turn every later caller's lock into a second panic.
///
/// ```
/// use std::sync::Mutex;
/// let m = Mutex::new(1);
/// *ccw_translate::sync::lock(&m) += 1;
/// assert_eq!(*ccw_translate::sync::lock(&m), 2);
/// ```
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Read access to `m`; a poisoned lock is taken over (see [`lock`]).
pub fn read<T: ?Sized>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write access to `m`; a poisoned lock is taken over (see [`lock`]).
pub fn write<T: ?Sized>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Panics on another thread while `hold` holds a guard of `m`'s lock: poisons it.
    fn poison<M: Send + Sync + 'static>(m: &Arc<M>, hold: fn(&M)) {
        let m2 = m.clone();
        assert!(std::thread::spawn(move || hold(&m2)).join().is_err());
    }

    #[test]
    fn a_poisoned_lock_is_taken_over() {
        let m = Arc::new(Mutex::new(7));
        poison(&m, |m| {
            let _g = m.lock().unwrap();
            panic!("poison it");
        });
        assert!(m.is_poisoned());
        assert_eq!(*lock(&m), 7);

        let rw = Arc::new(RwLock::new(7));
        poison(&rw, |m| {
            let _g = m.write().unwrap();
            panic!("poison it");
        });
        assert!(rw.is_poisoned());
        *write(&rw) += 1;
        assert_eq!(*read(&rw), 8);
    }
}
