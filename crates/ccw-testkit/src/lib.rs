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
//!     // In a test file this function carries `#[test]`; here the example calls it.
//!     fn addition_commutes(a in any::<u32>(), b in any::<u32>()) {
//!         prop_assert_eq!(a.wrapping_add(b), b.wrapping_add(a));
//!     }
//! }
//!
//! addition_commutes();
//! ```
//!
//! It differs from proptest's default in two ways:
//! - The committed `*.proptest-regressions` file beside a test is read and its seeds replayed
//!   first, as usual, but a new failure is **never written** into the source tree (a CI run or
//!   a newcomer's first `cargo xtask test` must not leave a dirty checkout). The failing seed is
//!   printed instead, as the line to add to that file to keep it.
//! - `PROPTEST_CASES` overrides the suite's own case count, so an audit can run every property
//!   with, say, `PROPTEST_CASES=100000`.

pub mod alloc;

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

/// Where the seed files lie: beside the test source (`tests/foo.rs` ->
/// `tests/foo.proptest-regressions`), where this workspace commits them. (proptest's default,
/// `SourceParallel`, looks for a `lib.rs` above the source and, for an integration test,
/// falls back to this same place with a warning.)
const SEED_FILES: FileFailurePersistence =
    FileFailurePersistence::WithSource("proptest-regressions");

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

    /// A scratch directory with a "source file" and its committed seed file.
    fn scratch(name: &str) -> (std::path::PathBuf, &'static str) {
        let dir = std::env::temp_dir().join(format!("ccw-testkit-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let source = dir.join("case.rs");
        std::fs::write(&source, "// a test source\n").unwrap();
        let source: &'static str =
            Box::leak(source.to_string_lossy().into_owned().into_boxed_str());
        (dir, source)
    }

    #[test]
    fn committed_seeds_are_read_from_beside_the_source() {
        let (dir, source) = scratch("read");
        assert!(
            ReadOnlySeeds
                .load_persisted_failures2(Some(source))
                .is_empty()
        );
        let seeds = dir.join("case.proptest-regressions");
        std::fs::write(
            &seeds,
            "# a comment\ncc 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef # shrinks to x = 1\n",
        )
        .unwrap();
        assert_eq!(
            ReadOnlySeeds.load_persisted_failures2(Some(source)).len(),
            1
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failure_is_reported_and_not_written() {
        let (dir, source) = scratch("write");
        let mut config = proptest_config(64);
        config.source_file = Some(source);
        let mut runner = proptest::test_runner::TestRunner::new(config);
        let result = runner.run(&(0u32..1000), |x| {
            prop_assert!(x < 10);
            Ok(())
        });
        assert!(result.is_err(), "the property must fail");
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            files,
            ["case.rs"],
            "a failure was written beside the source"
        );
        std::fs::remove_dir_all(&dir).unwrap();
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
