// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `cargo xtask loom`: the loom models of css-core's locking (io vs interrupt vs close,
//! channel report vs remove, halt vs final interrupt, close vs remove), built with
//! `--cfg loom` in release mode. Extra arguments are passed to the test binary (e.g. a model
//! name).

use crate::util;

/// Runs the loom models.
pub(crate) fn run(args: &[String]) -> util::Result {
    let mut cmd = util::cargo();
    cmd.args([
        "test",
        "-p",
        "css-core",
        "--release",
        "--lib",
        "loom_models",
    ])
    .env("RUSTFLAGS", "--cfg loom")
    // A separate target directory keeps the loom build from invalidating the normal one.
    .env("CARGO_TARGET_DIR", util::root().join("target").join("loom"));
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    util::run(&mut cmd)
}
