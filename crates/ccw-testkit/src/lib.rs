// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Test support shared by the ccw-rs test suites. It is a dev-dependency only: no library or
//! binary of the workspace links it.
//!
//! # Property tests
//!
//! Every `proptest!` block of the workspace takes its configuration from [`proptest_config`]:
//!
//! ```
//! use ccw_testkit::proptest_config;
//! use proptest::prelude::*;
//!
//! proptest! {
//!     #![proptest_config(proptest_config(64))]
//!     #[test]
//!     fn addition_commutes(a in any::<u32>(), b in any::<u32>()) {
//!         prop_assert_eq!(a.wrapping_add(b), b.wrapping_add(a));
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! It differs from proptest's default in two ways:
//! - The committed `*.proptest-regressions` file beside a test is read and its seeds replayed
//!   first, as usual, but a new failure is **never written** into the source tree (a CI run or
//!   a newcomer's first `cargo xtask test` must not leave a dirty checkout). The failing seed is
//!   printed instead, as the line to add to that file to keep it.
//! - `PROPTEST_CASES` overrides the suite's own case count, so an audit can run every property
//!   with, say, `PROPTEST_CASES=100000`.

use std::any::Any;
use std::fmt::Debug;

use proptest::test_runner::{Config, FailurePersistence, FileFailurePersistence, PersistedSeed};

/// The environment variable that overrides the case count, as in proptest itself.
pub const CASES_VAR: &str = "PROPTEST_CASES";

/// The proptest configuration of this workspace: `cases` cases unless `PROPTEST_CASES` says
/// otherwise, committed seeds replayed, new failures printed and never written to disk.
pub fn proptest_config(cases: u32) -> Config {
    let cases = std::env::var(CASES_VAR)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: Some(Box::new(ReadOnlySeeds)),
        ..Config::default()
    }
}

/// A [`FailurePersistence`] that replays the seeds committed beside a test source file
/// (`foo.rs` -> `foo.proptest-regressions`) and prints, never saves, new failures.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadOnlySeeds;

/// Where the seed files lie: beside the test source, as proptest's default does.
const SEED_FILES: FileFailurePersistence =
    FileFailurePersistence::SourceParallel("proptest-regressions");

impl FailurePersistence for ReadOnlySeeds {
    fn load_persisted_failures2(&self, source_file: Option<&'static str>) -> Vec<PersistedSeed> {
        SEED_FILES.load_persisted_failures2(source_file)
    }

    fn save_persisted_failure2(
        &mut self,
        source_file: Option<&'static str>,
        seed: PersistedSeed,
        shrunken_value: &dyn Debug,
    ) {
        let file = source_file.map_or_else(
            || "the test's .proptest-regressions file".to_string(),
            |s| {
                format!(
                    "{}",
                    std::path::Path::new(s)
                        .with_extension("proptest-regressions")
                        .display()
                )
            },
        );
        eprintln!(
            "proptest: failing seed (not written; add this line to {file} to replay it):\n\
             {seed} # shrinks to {shrunken_value:?}"
        );
    }

    fn box_clone(&self) -> Box<dyn FailurePersistence> {
        Box::new(*self)
    }

    fn eq(&self, other: &dyn FailurePersistence) -> bool {
        other.as_any().downcast_ref::<Self>() == Some(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_failure_is_reported_and_not_written() {
        let mut config = proptest_config(64);
        config.source_file = Some(file!());
        // This file has no seed file beside it: nothing to replay.
        assert!(
            ReadOnlySeeds
                .load_persisted_failures2(Some(file!()))
                .is_empty()
        );
        let mut runner = proptest::test_runner::TestRunner::new(config);
        let result = runner.run(&(0u32..1000), |x| {
            prop_assert!(x < 10);
            Ok(())
        });
        assert!(result.is_err(), "the property must fail");
        let written =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.proptest-regressions");
        assert!(
            !written.exists(),
            "a failure was written to {}",
            written.display()
        );
    }

    #[test]
    fn the_case_count_is_the_suites_unless_overridden() {
        let want = std::env::var(CASES_VAR)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(17);
        assert_eq!(proptest_config(17).cases, want);
        assert!(proptest_config(17).failure_persistence.is_some());
    }

    proptest! {
        #![proptest_config(proptest_config(8))]
        #[test]
        fn the_config_drives_a_real_property(x in any::<u16>()) {
            prop_assert_eq!(u32::from(x) * 2 / 2, u32::from(x));
        }
    }
}
