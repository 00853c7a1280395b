// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `cargo xtask test`: every test of the workspace (unit, integration, doc tests), on the mock
//! backend. Benchmarks are compiled in test mode too, so they cannot rot.

use crate::util;

/// Runs the whole test suite.
pub(crate) fn run(args: &[String]) -> util::Result {
    util::no_args("test", args)?;
    util::run(util::cargo().args(["test", "--workspace", "--all-targets"]))?;
    // `--all-targets` skips doc tests; run them separately.
    util::run(util::cargo().args(["test", "--workspace", "--doc"]))?;
    Ok(())
}
