// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `cargo xtask lint`: formatting, clippy on every target with warnings denied, rustdoc with
//! warnings denied, generated documents up to date (`cargo xtask docs`), and the fuzz targets
//! (their own workspace under `fuzz/`) formatted and clippy-clean, so that an API change that
//! breaks a target is caught here rather than at the next fuzzing run.

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
    let fuzz = util::root().join("fuzz/Cargo.toml");
    let fuzz = fuzz.to_str().ok_or("the fuzz manifest path is not UTF-8")?;
    util::run(util::cargo().args(["fmt", "--manifest-path", fuzz, "--check"]))?;
    util::run(util::cargo().args([
        "clippy",
        "--manifest-path",
        fuzz,
        "--bins",
        "--",
        "-D",
        "warnings",
    ]))?;
    Ok(())
}
