// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `cargo xtask s390x`: the s390x lane. On a Debian 12 x86 machine it
//!
//! 1. sets up everything it needs (QEMU s390x, the cross toolchain, a guest kernel with vfio_ccw,
//!    Rust for s390x, a busybox initramfs), cached under `$CCW_RS_CACHE` (default
//!    `/var/cache/ccw-rs`) with stamp files so a second run skips finished steps;
//! 2. runs the workspace's unit tests for `s390x-unknown-linux-gnu` under qemu-user (big-endian);
//!    (not with `--lane`, which runs that lane alone, unless `--unit` is given);
//! 3. boots the guest in one or both lanes (`--lane qemu|hercules`, default both, QEMU first):
//!    - QEMU: a virtio-blk-ccw subchannel bound to vfio_ccw (the ABI on a synchronous emulated
//!      channel subsystem);
//!    - Hercules (`hercules`): a 3390 DASD bound to vfio_ccw, whose programs run in device
//!      threads as on a real channel: halt and clear of running programs, data chaining, IDALs
//!      and ECKD programs (see `hercules`);
//!
//!    and, with the device taken by `vfio-guest claim` (vfio-backend's lifecycle API: claim,
//!    mdev, give back, checked), runs the lane's own probe, the vfio-guest crate's `vfio-guest`
//!    (css-conformance on both VFIO APIs with the lane's fixture, kernel torture, bench) and
//!    `ccwctl --vfio <mdev>`; then `ccwctl --vfio <busid>`, which claims and gives back by
//!    itself;
//! 4. prints every suite's `N passed, M failed` line, the bench medians, and per-step timings, and
//!    fails on any failure or timeout (a known emulator defect is reported apart: QEMU's
//!    multi-IDAW transfer, Hercules 3.13's halt completion; so is the kernel-torture group: its
//!    failures are kernel findings).
//!
//! The facts it relies on (packages, kernel options, boot line, binding) are recorded in
//! `s390x-guest.md` of the project's shared reference; each submodule cites what it implements.

mod cache;
mod fresh;
mod guest;
mod hercules;
mod host;
mod kernel;
mod report;
mod rust;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::util;

/// Command-line options of `cargo xtask s390x`.
#[derive(Debug)]
struct Options {
    cache: PathBuf,
    unit: bool,
    guest: bool,
    lanes: Vec<report::Lane>,
    timeout: Duration,
}

const USAGE: &str = "usage: cargo xtask s390x [--lane qemu|hercules] [--unit|--no-unit] [--no-guest] [--timeout SECS] [--cache DIR]
  --lane L       run this lane only (default: the unit tests, then both lanes, QEMU first);
                 the unit tests under qemu-user belong to no lane: add --unit to run them too
  --unit         run the unit tests under qemu-user (the default without --lane)
  --no-unit      skip the unit tests under qemu-user
  --no-guest     skip booting the emulated guest
  --timeout SECS guard for each guest run (default 600)
  --cache DIR    download and build cache (default $CCW_RS_CACHE or /var/cache/ccw-rs)";

impl Options {
    fn parse(args: &[String]) -> util::Result<Self> {
        let mut opts = Options {
            cache: default_cache(),
            unit: true,
            guest: true,
            lanes: vec![report::Lane::Qemu, report::Lane::Hercules],
            timeout: Duration::from_secs(600),
        };
        // `--unit` / `--no-unit` as given; without either, the unit tests run unless one lane
        // was picked (they are lane-independent: `--lane L` is that lane's run alone).
        let mut unit: Option<bool> = None;
        let mut one_lane = false;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--unit" => unit = Some(true),
                "--no-unit" => unit = Some(false),
                "--no-guest" => opts.guest = false,
                "--lane" => {
                    one_lane = true;
                    opts.lanes = vec![match it.next().map(String::as_str) {
                        Some("qemu") => report::Lane::Qemu,
                        Some("hercules") => report::Lane::Hercules,
                        Some(other) => {
                            return Err(format!(
                                "--lane: unknown lane `{other}` (qemu or hercules)\n{USAGE}"
                            ));
                        }
                        None => return Err("--lane needs qemu or hercules".to_string()),
                    }];
                }
                "--timeout" => {
                    let v = it.next().ok_or("--timeout needs a value")?;
                    let secs: u64 = v
                        .parse()
                        .map_err(|_| format!("--timeout: `{v}` is not a number of seconds"))?;
                    opts.timeout = Duration::from_secs(secs);
                }
                "--cache" => {
                    opts.cache = it.next().ok_or("--cache needs a directory")?.into();
                }
                "-h" | "--help" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
            }
        }
        opts.unit = unit.unwrap_or(!one_lane);
        // Both off would run nothing and still report "all passed".
        if !opts.unit && !opts.guest {
            return Err(format!(
                "--no-unit and --no-guest together leave nothing to run\n{USAGE}"
            ));
        }
        Ok(opts)
    }
}

/// The cache directory: `$CCW_RS_CACHE`, or `/var/cache/ccw-rs`.
fn default_cache() -> PathBuf {
    std::env::var_os("CCW_RS_CACHE")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/var/cache/ccw-rs"), PathBuf::from)
}

const HOST_TOOLS_USAGE: &str = "usage: cargo xtask host-tools <install <qemu|hercules> | check-fresh>
  install qemu      install the QEMU lane's missing host packages (what `cargo xtask s390x` does first)
  install hercules  install Hercules' DASD tools if missing (the DASD interop tests use them)
  check-fresh       simulate both installs on a fresh machine (apt-get -s against this machine's
                    dpkg status with those packages and what only they pulled in removed)";

/// `cargo xtask host-tools`: the host packages the lanes and tests need, through the lane's
/// private APT configuration, installed only where missing.
pub(crate) fn host_tools(args: &[String]) -> util::Result {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cache = cache::Cache::open(&default_cache())?;
    match args.as_slice() {
        ["install", set] => {
            let packages = match *set {
                "qemu" => host::QEMU_LANE,
                "hercules" => host::HERCULES,
                other => return Err(format!("unknown package set `{other}`\n{HOST_TOOLS_USAGE}")),
            };
            host::Apt::open(&cache)?.install_missing(packages)
        }
        ["check-fresh"] => {
            let apt = host::Apt::open(&cache)?;
            for (name, plan) in host::check_fresh(&apt, &cache.dir("fresh-check")?)? {
                let installs = plan.lines().filter(|l| l.starts_with("Inst ")).count();
                println!(
                    "host-tools: fresh install of {name}: apt accepts it ({installs} packages)"
                );
            }
            Ok(())
        }
        _ => Err(HOST_TOOLS_USAGE.to_string()),
    }
}

/// Wall time of each step, printed at the end.
#[derive(Default)]
struct Timings(Vec<(&'static str, Duration)>);

impl Timings {
    fn step<T>(
        &mut self,
        name: &'static str,
        f: impl FnOnce() -> util::Result<T>,
    ) -> util::Result<T> {
        eprintln!("\n== s390x: {name}");
        let start = Instant::now();
        let out = f();
        let took = start.elapsed();
        eprintln!("== s390x: {name}: {:.1} s", took.as_secs_f64());
        self.0.push((name, took));
        out.map_err(|e| format!("{name}: {e}"))
    }

    fn print(&self) {
        println!("s390x timings:");
        let mut total = Duration::ZERO;
        for (name, took) in &self.0 {
            println!("  {name:<28} {:>7.1} s", took.as_secs_f64());
            total += *took;
        }
        println!("  {:<28} {:>7.1} s", "total", total.as_secs_f64());
    }
}

/// Runs the lane; see the module documentation.
pub(crate) fn run(args: &[String]) -> util::Result {
    let opts = Options::parse(args)?;
    let cache = cache::Cache::open(&opts.cache)?;
    eprintln!("xtask s390x: cache {}", cache.root().display());
    let mut t = Timings::default();
    let mut failures: Vec<String> = Vec::new();

    let result = (|| -> util::Result {
        let apt = t.step("host packages", || host::setup(&cache))?;
        let tools = t.step("rust for s390x + qemu-user", || {
            rust::Toolchain::setup(&cache, &apt)
        })?;
        if opts.unit {
            let summary = t.step("unit tests under qemu-user", || tools.unit_tests())?;
            println!("{summary}");
            if !summary.is_success() {
                failures.push(format!("unit tests under qemu-user: {}", summary.total()));
            }
        }
        if opts.guest {
            if opts.lanes.contains(&report::Lane::Hercules) {
                t.step("host packages: hercules", || {
                    apt.install_missing(host::HERCULES)
                })?;
            }
            let bz = t.step("guest kernel", || kernel::build(&cache, &apt))?;
            let payloads = t.step("guest payloads", || tools.guest_payloads())?;
            let initrd = t.step("guest initramfs", || {
                guest::initramfs(&cache, &apt, &payloads)
            })?;
            for lane in &opts.lanes {
                let lane = *lane;
                let run = match lane {
                    report::Lane::Qemu => t.step("qemu: guest run", || {
                        guest::boot(&cache, &bz, &initrd, opts.timeout)
                    })?,
                    report::Lane::Hercules => {
                        let (cnf, rc) = t.step("hercules: image + configuration", || {
                            hercules::prepare(&cache, &bz, &initrd)
                        })?;
                        t.step("hercules: guest run", || {
                            hercules::boot(&cnf, &rc, opts.timeout)
                        })?
                    }
                };
                let rep = report::GuestReport::parse(lane, &run.lines);
                print!("{}", rep.summary());
                // For `cargo xtask bench`'s P4 row (xtask/src/summary.rs).
                if !rep.bench.is_empty() {
                    let out = util::root()
                        .join("target")
                        .join(format!("s390x-bench-{}.txt", lane.name()));
                    let _ = std::fs::create_dir_all(util::root().join("target"));
                    std::fs::write(&out, rep.bench.join("\n") + "\n")
                        .map_err(|e| format!("{}: {e}", out.display()))?;
                }
                failures.extend(
                    rep.failures(&payloads.expected_steps(lane), run.timed_out)
                        .into_iter()
                        .map(|f| format!("{} lane: {f}", lane.name())),
                );
                if lane == report::Lane::Hercules && !run.timed_out {
                    let checks = t.step("hercules: host checks of the image", || {
                        hercules::host_checks(&cache)
                    })?;
                    let passed = checks.iter().filter(|c| c.ok).count();
                    for c in &checks {
                        let verdict = if c.ok { "ok  " } else { "FAIL" };
                        println!("  host {verdict} {}: {}", c.name, c.detail);
                        if !c.ok {
                            failures.push(format!(
                                "hercules lane: host check {}: {}",
                                c.name, c.detail
                            ));
                        }
                    }
                    println!(
                        "hercules host checks: {passed} passed, {} failed",
                        checks.len() - passed
                    );
                    if payloads.vfio_guest {
                        let d = t.step("hercules: differential check (mock replay)", || {
                            hercules::differential(&cache, &run.lines)
                        })?;
                        for l in d.output.iter().filter(|l| !l.starts_with("model ")) {
                            println!("  {l}");
                        }
                        if !d.ok {
                            failures.push(format!(
                                "hercules lane: differential check: {}",
                                d.summary
                                    .as_deref()
                                    .unwrap_or("the replay printed no summary")
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    })();
    t.print();
    result?;
    if failures.is_empty() {
        println!("s390x: all passed");
        Ok(())
    } else {
        Err(format!(
            "{} failure(s):\n  {}",
            failures.len(),
            failures.join("\n  ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_parse_flags_and_values() {
        let o = Options::parse(&args(&["--no-unit", "--timeout", "30", "--cache", "/x"])).unwrap();
        assert!(!o.unit);
        assert!(o.guest);
        assert_eq!(o.timeout, Duration::from_secs(30));
        assert_eq!(o.cache, PathBuf::from("/x"));
    }

    #[test]
    fn lanes_default_to_both_and_can_be_picked() {
        let both = Options::parse(&[]).unwrap();
        assert_eq!(both.lanes, [report::Lane::Qemu, report::Lane::Hercules]);
        assert!(both.unit, "without --lane the unit tests run");
        let h = Options::parse(&args(&["--lane", "hercules"])).unwrap();
        assert_eq!(h.lanes, [report::Lane::Hercules]);
        assert!(!h.unit, "one lane is that lane's run alone");
        let hu = Options::parse(&args(&["--lane", "hercules", "--unit"])).unwrap();
        assert!(hu.unit && hu.guest);
        assert!(!Options::parse(&args(&["--no-unit"])).unwrap().unit);
        let q = Options::parse(&args(&["--lane", "qemu", "--no-unit"])).unwrap();
        assert_eq!(q.lanes, [report::Lane::Qemu]);
        assert!(Options::parse(&args(&["--lane"])).is_err());
        assert!(Options::parse(&args(&["--lane", "kvm"])).is_err());
    }

    #[test]
    fn options_reject_bad_input() {
        assert!(Options::parse(&args(&["--timeout"])).is_err());
        assert!(Options::parse(&args(&["--timeout", "soon"])).is_err());
        assert!(Options::parse(&args(&["--frobnicate"])).is_err());
        assert!(Options::parse(&args(&["--no-unit", "--no-guest"])).is_err());
    }
}
