// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `cargo xtask fuzz <target> [--secs N]`: runs a cargo-fuzz target on the stable toolchain
//! (`--sanitizer none`) for N seconds (default 60), installing cargo-fuzz if it is missing.
//!
//! Adding a target is one line in [`TARGETS`] (plus its `[[bin]]` in `fuzz/Cargo.toml`).

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
];

fn usage() -> String {
    let mut s = String::from("usage: cargo xtask fuzz <target> [--secs N]\n\ntargets:\n");
    for (name, what) in TARGETS {
        s.push_str(&format!("  {name:<12} {what}\n"));
    }
    s
}

/// Parses `<target> [--secs N]`.
fn parse(args: &[String]) -> util::Result<(&'static str, u64)> {
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
            name if target.is_none() => {
                let found = TARGETS.iter().find(|(t, _)| *t == name);
                target = Some(
                    found
                        .map(|(t, _)| *t)
                        .ok_or_else(|| format!("unknown fuzz target `{name}`\n{}", usage()))?,
                );
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

/// Runs one fuzz target for the requested time.
pub(crate) fn run(args: &[String]) -> util::Result {
    let (target, secs) = parse(args)?;
    ensure_cargo_fuzz()?;
    let fuzz = util::root().join("fuzz");
    // New inputs go to the (ignored) corpus; inputs that once crashed, kept in git under
    // `regressions/<target>/`, seed every run so old bugs stay fixed.
    let corpus = format!("corpus/{target}");
    let regressions = format!("regressions/{target}");
    for dir in [&corpus, &regressions] {
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
        assert_eq!(parse(&s(&["translate"])), Ok(("translate", 60)));
        assert_eq!(
            parse(&s(&["translate", "--secs", "300"])),
            Ok(("translate", 300))
        );
        assert_eq!(
            parse(&s(&["--secs", "5", "translate"])),
            Ok(("translate", 5))
        );
        assert!(parse(&s(&[])).is_err());
        assert!(parse(&s(&["nope"])).is_err());
        assert!(parse(&s(&["translate", "--secs"])).is_err());
        assert!(parse(&s(&["translate", "--secs", "x"])).is_err());
        assert!(parse(&s(&["translate", "--secs", "0"])).is_err());
        assert!(parse(&s(&["translate", "extra"])).is_err());
    }
}
