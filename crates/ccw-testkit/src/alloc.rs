// SPDX-License-Identifier: Apache-2.0 OR MIT

//! A global allocator that counts the allocations of each thread, for the tests that hold the
//! I/O path to its allocation budget (issue 14: zero per warm I/O is the target).
//!
//! A test binary installs it once and reads the calling thread's count around the code it
//! measures (the test harness's other threads do not count):
//!
//! ```
//! use ccw_testkit::alloc::{CountingAlloc, allocations};
//!
//! // In a test file: `#[global_allocator] static GLOBAL: CountingAlloc = CountingAlloc;`
//! let before = allocations();
//! let v = vec![1u8; 16];
//! drop(v);
//! // Without `CountingAlloc` installed (as in this example) nothing is counted.
//! assert!(allocations() >= before);
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Allocations (including reallocations) made by this thread.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: a thread's last frees and allocations may come after its locals are gone.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

/// Allocations (alloc, alloc_zeroed, realloc) made by the calling thread so far, while
/// [`CountingAlloc`] is the global allocator.
pub fn allocations() -> u64 {
    ALLOCS.try_with(Cell::get).unwrap_or(0)
}

/// The system allocator, counting each thread's allocations (see [`allocations`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours, passed through.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours, passed through.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
