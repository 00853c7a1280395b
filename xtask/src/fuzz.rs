// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `cargo xtask fuzz <target|all> [--secs N]`: runs a cargo-fuzz target (or each in turn) on
//! the stable toolchain (`--sanitizer none`) for N seconds each (default 60), installing
//! cargo-fuzz if it is missing.
//!
//! Corpora: `fuzz/seeds/<target>/` (committed seeds), `fuzz/regressions/<target>/` (committed
//! inputs that once crashed) and `fuzz/corpus/<target>/` (ignored; where new inputs go).
//!
//! Adding a target is one line in [`TARGETS`] (plus its `[[bin]]` in `fuzz/Cargo.toml` and a
//! seed or two).

use crate::util;

/// Fuzz targets in `fuzz/fuzz_targets/`: name and what it exercises.
const TARGETS: &[(&str, &str)] = &[
    (
        "translate",
        "ccw-translate over arbitrary guest memory images and ORBs",
    ),
    (
        "program",
        "ccwctl's program-file parser and assembler over arbitrary text",
    ),
    (
        "decode",
        "every ccw-types block from arbitrary bytes, with encode round trips",
    ),
    (
        "channel",
        "arbitrary programs and ORBs on every mock device model, with faults",
    ),
    (
        "dasd-image",
        "arbitrary and corrupted CKD images and journals, opened, read, written",
    ),
    (
        "vcss",
        "guest I/O instruction sequences against the guest-facing channel subsystem",
    ),
];

fn usage() -> String {
    let mut s = String::from(
        "usage: cargo xtask fuzz <target|all> [--secs N]\n\ntargets (`all` runs each in turn):\n",
    );
    for (name, what) in TARGETS {
        s.push_str(&format!("  {name:<12} {what}\n"));
    }
    s
}

/// Parses `<target|all> [--secs N]`; `all` is every target in order.
fn parse(args: &[String]) -> util::Result<(Vec<&'static str>, u64)> {
    let mut target = None;
    let mut secs = 60;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--secs" => {
                let v = it
                    .next()
                    .ok_or_else(|| format!("--secs needs a value\n{}", usage()))?;
                // libFuzzer reads -max_total_time=0 as "no limit": refuse it rather than
                // fuzz forever.
                secs =
                    v.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                        format!("--secs: `{v}` is not a positive number of seconds")
                    })?;
            }
            "all" if target.is_none() => {
                target = Some(TARGETS.iter().map(|(t, _)| *t).collect());
            }
            name if target.is_none() => {
                let found = TARGETS.iter().find(|(t, _)| *t == name);
                target = Some(vec![found.map(|(t, _)| *t).ok_or_else(|| {
                    format!("unknown fuzz target `{name}`\n{}", usage())
                })?]);
            }
            other => return Err(format!("unexpected argument `{other}`\n{}", usage())),
        }
    }
    let target = target.ok_or_else(usage)?;
    Ok((target, secs))
}

/// Installs cargo-fuzz unless `cargo fuzz` already works.
fn ensure_cargo_fuzz() -> util::Result {
    let ok = util::cargo()
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Ok(());
    }
    util::run(util::cargo().args(["install", "cargo-fuzz", "--locked"]))
}

/// Runs the fuzz targets asked for, each for the requested time; stops at the first that
/// fails.
pub(crate) fn run(args: &[String]) -> util::Result {
    let (targets, secs) = parse(args)?;
    ensure_cargo_fuzz()?;
    for target in targets {
        run_one(target, secs)?;
    }
    Ok(())
}

/// Runs one fuzz target for `secs` seconds.
fn run_one(target: &str, secs: u64) -> util::Result {
    let fuzz = util::root().join("fuzz");
    // New inputs go to the (ignored) corpus, the first directory; committed seeds and inputs
    // that once crashed (`regressions/<target>/`) start every run, so old bugs stay fixed.
    let corpus = format!("corpus/{target}");
    let seeds = format!("seeds/{target}");
    let regressions = format!("regressions/{target}");
    for dir in [&corpus, &seeds, &regressions] {
        std::fs::create_dir_all(fuzz.join(dir))
            .map_err(|e| format!("cannot create fuzz/{dir}: {e}"))?;
    }
    util::run(util::cargo().current_dir(&fuzz).args([
        "fuzz",
        "run",
        target,
        "--sanitizer",
        "none",
        &corpus,
        &seeds,
        &regressions,
        "--",
        &format!("-max_total_time={secs}"),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_target_and_seconds() {
        assert_eq!(parse(&s(&["translate"])), Ok((vec!["translate"], 60)));
        assert_eq!(
            parse(&s(&["translate", "--secs", "300"])),
            Ok((vec!["translate"], 300))
        );
        assert_eq!(
            parse(&s(&["--secs", "5", "translate"])),
            Ok((vec!["translate"], 5))
        );
        assert_eq!(
            parse(&s(&["all", "--secs", "7"])),
            Ok((TARGETS.iter().map(|(t, _)| *t).collect(), 7))
        );
        assert_eq!(parse(&s(&["all"])).unwrap().0.len(), 6);
        assert!(parse(&s(&["all", "translate"])).is_err());
        assert!(parse(&s(&[])).is_err());
        assert!(parse(&s(&["nope"])).is_err());
        assert!(parse(&s(&["translate", "--secs"])).is_err());
        assert!(parse(&s(&["translate", "--secs", "x"])).is_err());
        assert!(parse(&s(&["translate", "--secs", "0"])).is_err());
        assert!(parse(&s(&["translate", "extra"])).is_err());
    }
}
