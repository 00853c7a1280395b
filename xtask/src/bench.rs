// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `cargo xtask bench [filter] [-- criterion args]`: the criterion benchmarks of `benches/`.
//!
//! Extra arguments go to criterion, e.g. `cargo xtask bench translate` runs only the groups
//! whose name matches `translate`, and `cargo xtask bench translate -- --warm-up-time 1
//! --measurement-time 1` shortens measurement. They reach the bench targets only (`--benches`;
//! the crate's library is `bench = false`), never a libtest harness that would refuse them.
//! Targets are met in these benchmarks, never in timed tests: read medians and ratios from one
//! run, since the machines are shared and noisy.

use std::process::Command;
use std::time::SystemTime;

use crate::{summary, util};

/// Runs the benchmarks, forwarding `args` to criterion, then prints the summary of issue 14's
/// targets from this run's results and writes it to `target/bench-summary.json`.
pub(crate) fn run(args: &[String]) -> util::Result {
    let target = util::root().join("target");
    let criterion = target.join("criterion");
    // Whole seconds: some file systems keep coarse modification times.
    let since = SystemTime::now() - std::time::Duration::from_secs(1);
    let mut cmd = command(util::cargo(), args);
    cmd.env("CRITERION_HOME", &criterion)
        .env("CCW_BENCH_EXTRA", &criterion);
    util::run(&mut cmd)?;
    let medians = summary::read_medians(&criterion, since)?;
    let memory = summary::read_memory(&criterion.join("scale-memory.json"), since);
    let mut rows = summary::evaluate(&medians, memory);
    // P4 needs the s390x guests: the lanes leave their bench lines in target/.
    let mut lanes = Vec::new();
    for lane in ["qemu", "hercules"] {
        if let Ok(text) = std::fs::read_to_string(target.join(format!("s390x-bench-{lane}.txt"))) {
            lanes.extend(text.lines().map(|l| format!("{lane}: {l}")));
        }
    }
    summary::p4_from_lanes(&mut rows, &lanes);
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    println!("\nissue 14 targets (load average {load}):\n");
    print!("{}", summary::render(&rows));
    let out = target.join("bench-summary.json");
    std::fs::write(&out, summary::to_json(&rows, &load))
        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    println!("\nwritten to {}", out.display());
    Ok(())
}

/// `cargo bench` for the bench targets of the `benches` crate, with `args` split at `--` into
/// criterion's filter and criterion's own flags.
fn command(mut cmd: Command, args: &[String]) -> Command {
    cmd.args(["bench", "-p", "benches", "--benches"]);
    let (filter, rest): (Vec<&String>, Vec<&String>) = match args.iter().position(|a| a == "--") {
        Some(i) => (args[..i].iter().collect(), args[i + 1..].iter().collect()),
        None => (args.iter().collect(), Vec::new()),
    };
    if !filter.is_empty() || !rest.is_empty() {
        cmd.arg("--");
        cmd.args(filter);
        cmd.args(rest);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_of(args: &[&str]) -> Vec<String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        command(Command::new("cargo"), &args)
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn criterion_flags_reach_the_bench_targets_only() {
        assert_eq!(
            args_of(&["translate", "--", "--warm-up-time", "1"]),
            [
                "bench",
                "-p",
                "benches",
                "--benches",
                "--",
                "translate",
                "--warm-up-time",
                "1"
            ]
        );
        assert_eq!(args_of(&[]), ["bench", "-p", "benches", "--benches"]);
    }

    #[test]
    fn the_benches_library_is_not_a_bench_target() {
        let manifest =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(
            text.contains("[lib]\nbench = false"),
            "{} must keep `[lib] bench = false`, or criterion's flags reach libtest",
            manifest.display()
        );
    }
}
