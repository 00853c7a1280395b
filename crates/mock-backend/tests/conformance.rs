// SPDX-License-Identifier: Apache-2.0 OR MIT

//! css-core's backend conformance suite, run on the simulated channel subsystem: the
//! virtio-blk-ccw device at 0.0.0000 (devno 0x0005) of `MockBackend::default_subsystem`.
//! The mock implements the architecture, so nothing is declared unsupported, and afterwards
//! nothing may stay pinned or allocated.

use std::sync::{Arc, Mutex};

use css_core::conformance::{Fixture, TestOutcome, run_all};
use mock_backend::MockBackend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_on_the_mock() {
    let fixture = Fixture::virtio_blk("0.0.0000".parse().unwrap(), 0x0005).named("mock-backend");
    let backend = Arc::new(Mutex::new(None));
    let keep = backend.clone();
    let report = run_all(
        move |mem| {
            let b = Arc::new(MockBackend::default_subsystem(&*mem)?);
            *keep.lock().unwrap() = Some(b.clone());
            Ok(b)
        },
        &fixture,
    )
    .await;
    assert!(report.is_success(), "{report}");
    for g in &report.groups {
        for (name, o) in &g.results {
            if let TestOutcome::Skipped(why) = o {
                eprintln!("note: {}/{name} undecided: {why}", g.name);
            }
        }
    }
    let b = backend.lock().unwrap().clone().unwrap();
    let stats = b.mapping_stats();
    assert!(stats.is_idle(), "leaked mappings: {stats:?}");
}
