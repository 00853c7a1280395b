// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `cargo xtask bench [criterion args]`: the criterion benchmarks of `benches/`.
//!
//! Extra arguments go to criterion, e.g. `cargo xtask bench translate` runs only the groups
//! whose name matches `translate`, and `cargo xtask bench -- --quick` shortens measurement.
//! Targets are met in these benchmarks, never in timed tests: read medians and ratios from one
//! run, since the machines are shared and noisy.

use crate::util;

/// Runs the benchmarks, forwarding `args` to criterion.
pub(crate) fn run(args: &[String]) -> util::Result {
    let mut cmd = util::cargo();
    cmd.args(["bench", "-p", "benches"]);
    let (filter, rest): (Vec<&String>, Vec<&String>) = match args.iter().position(|a| a == "--") {
        Some(i) => (args[..i].iter().collect(), args[i + 1..].iter().collect()),
        None => (args.iter().collect(), Vec::new()),
    };
    if !filter.is_empty() || !rest.is_empty() {
        cmd.arg("--");
        cmd.args(filter);
        cmd.args(rest);
    }
    util::run(&mut cmd)
}
