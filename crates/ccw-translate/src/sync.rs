// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The one poison-tolerant lock helper of ccw-rs.
//!
//! Every crate of the workspace locks its short, synchronous critical sections through
//! [`lock`] (css-core keeps a copy over loom's mutex for its models). It lives here, in the
//! lowest crate that uses `std`, so the mappers, css-core and the backends share it.

use std::sync::{Mutex, MutexGuard, PoisonError};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_is_taken_over() {
        let m = std::sync::Arc::new(Mutex::new(7));
        let m2 = m.clone();
        let r = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("poison it");
        })
        .join();
        assert!(r.is_err() && m.is_poisoned());
        assert_eq!(*lock(&m), 7);
    }
}
