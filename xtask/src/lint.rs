// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `cargo xtask lint`: formatting, clippy on every target with warnings denied, rustdoc with
//! warnings denied, and generated documents up to date (`cargo xtask docs`).

use crate::util;

/// Runs every lint; the first failure stops the run.
pub(crate) fn run(args: &[String]) -> util::Result {
    util::no_args("lint", args)?;
    crate::docs::check()?;
    util::run(util::cargo().args(["fmt", "--all", "--check"]))?;
    util::run(util::cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    util::run(
        util::cargo()
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    Ok(())
}
