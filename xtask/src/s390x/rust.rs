// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Rust for `s390x-unknown-linux-gnu`, the unit tests under qemu-user, and the guest payloads.
//!
//! rustup cannot add targets on these machines, so the lane uses Debian's `rustc-web` together with
//! the prebuilt `libstd-rust-web-dev:s390x` of the same version (1.85 in bookworm, which is also
//! the workspace's MSRV), all unpacked with `dpkg -x` into the cache; apt's multiarch install of
//! them fails on version skew. rustc finds its sysroot next to its binary and needs its libLLVM on
//! `LD_LIBRARY_PATH`, so cargo gets a small wrapper script as `RUSTC`. Binaries are linked static
//! (`+crt-static`) with `s390x-linux-gnu-gcc`, and run by the static `qemu-s390x` from backports'
//! `qemu-user`.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::cache::{self, Cache};
use super::host::{self, Apt};
use super::report::{self, Lane};
use crate::util;

/// The Rust target of the lane.
pub(crate) const TARGET: &str = "s390x-unknown-linux-gnu";
/// Packages whose integration tests run the workspace's own binaries as child processes: qemu-user
/// emulates one process and cannot exec a second s390x binary (that needs a binfmt_misc
/// registration, a host-wide change the lane does not make). Their lib and bin tests still run.
const LIB_AND_BIN_TESTS_ONLY: &[(&str, &str)] = &[(
    "ccwctl",
    "tests/cli.rs spawns the ccwctl binary, which qemu-user cannot exec without binfmt_misc",
)];
/// The in-guest runner (crate vfio-guest, binary `vfio-guest`): conformance, kernel torture,
/// bench. Shipped to the guest as /bin/vfio-guest.
pub(crate) const VFIO_GUEST_MAIN: &str = "crates/vfio-guest/src/main.rs";
/// Cases per proptest property under emulation (proptest's default of 256 is slow under TCG).
const PROPTEST_CASES: &str = "32";

/// The cross toolchain: a rustc wrapper, qemu-user, and a cargo target directory in the cache.
pub(crate) struct Toolchain {
    rustc: PathBuf,
    qemu_user: PathBuf,
    target_dir: PathBuf,
    payload_dir: PathBuf,
}

/// What goes into the guest besides busybox and /init.
pub(crate) struct Payloads {
    /// (name in the guest's /bin, file on the host).
    pub(crate) bins: Vec<(String, PathBuf)>,
    /// Example channel programs for `ccwctl run`, copied to the guest's /examples.
    pub(crate) examples: Vec<PathBuf>,
    /// Whether the vfio-guest crate's `vfio-guest` is among `bins`.
    pub(crate) vfio_guest: bool,
    /// Whether `ccwctl` is among `bins`.
    pub(crate) ccwctl: bool,
}

impl Payloads {
    /// The guest steps that must run on `lane` given these payloads (see xtask/s390x/init.sh).
    /// On Hercules the conformance suite must run too (with its 3390 fixture): a `vfio-guest`
    /// without `--fixture` makes the lane fail, not pass with the suite skipped.
    pub(crate) fn expected_steps(&self, lane: Lane) -> Vec<&'static str> {
        let mut steps = vec!["probe-legacy", "probe-cdev"];
        if self.vfio_guest {
            // `vfio-guest claim` takes the device (through vfio-backend's lifecycle API) and
            // runs the payloads inside this step.
            steps.push("lifecycle");
            steps.extend(["vfio-info", "conformance-legacy", "conformance-cdev"]);
            if lane == Lane::Qemu {
                steps.push("bench");
            } else {
                steps.extend(["differential", "bench-dasd"]);
            }
            // vcss over the passed-through device: a Linux guest's bring-up on both APIs (the
            // host's device number, then a remapped one), and on the 3390 the IPL of the
            // chain the host wrote into the image.
            steps.extend(["vcss-bringup-legacy", "vcss-bringup-cdev"]);
            if lane == Lane::Hercules {
                steps.push("vcss-ipl");
            }
        }
        // This tree's ccwctl has `--vfio`: when it is in the guest, init.sh skipping its checks
        // (no `--vfio` in its help, no vfio backend) is a failure, not a pass.
        if self.ccwctl {
            steps.push("ccwctl-sense-id");
            // `ccwctl --vfio <busid>` claims and gives back by itself (checked by
            // `vfio-guest restored`, so only with vfio-guest in the guest).
            if self.vfio_guest {
                steps.push("ccwctl-busid");
                if lane == Lane::Hercules {
                    steps.push("ccwctl-busid-dasd-rdc");
                }
            }
            if !self.examples.is_empty() {
                steps.push("ccwctl-example");
            }
            if lane == Lane::Hercules {
                steps.push("ccwctl-dasd-rdc");
            }
        }
        steps
    }
}

/// The result of the unit tests under qemu-user.
pub(crate) struct UnitSummary {
    /// (test binary as cargo names it, passed, failed).
    suites: Vec<(String, u64, u64)>,
    passed: u64,
    failed: u64,
    binaries: usize,
    cargo_ok: bool,
}

impl UnitSummary {
    /// Whether cargo succeeded and no test failed.
    pub(crate) fn is_success(&self) -> bool {
        self.cargo_ok && self.failed == 0 && self.binaries > 0
    }
}

impl UnitSummary {
    /// The closing line alone.
    pub(crate) fn total(&self) -> String {
        let note = match (self.cargo_ok, self.binaries) {
            (false, _) => " (cargo failed: see its output above)",
            (true, 0) => " (no test binary ran)",
            _ => "",
        };
        format!(
            "s390x unit tests (qemu-user, {} test binaries): {} passed, {} failed{note}",
            self.binaries, self.passed, self.failed
        )
    }
}

impl std::fmt::Display for UnitSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, passed, failed) in &self.suites {
            writeln!(f, "  s390x unit {name}: {passed} passed, {failed} failed")?;
        }
        f.write_str(&self.total())
    }
}

impl Toolchain {
    /// Unpacks rustc-web, the s390x standard library, libLLVM and qemu-user (once).
    pub(crate) fn setup(cache: &Cache, apt: &Apt) -> util::Result<Self> {
        // The s390x standard library decides the version; everything else must match it exactly.
        let version = apt.field("libstd-rust-web-dev:s390x", "Version")?;
        let major_minor: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
        let runtime = format!("libstd-rust-web-{major_minor}");
        let depends = apt.field(&format!("{runtime}={version}"), "Depends")?;
        let llvm = depends
            .split([',', '|'])
            .map(|d| d.split_whitespace().next().unwrap_or(""))
            .find(|d| d.starts_with("libllvm"))
            .ok_or_else(|| format!("{runtime} {version} names no libllvm in Depends: {depends}"))?
            .to_string();
        let specs = vec![
            format!("rustc-web={version}"),
            format!("{runtime}={version}"),
            format!("libstd-rust-web-dev={version}"),
            format!("libstd-rust-web-dev:s390x={version}"),
            llvm,
        ];
        let root = apt.unpack(cache, "rust-s390x", &specs)?;
        let rustc = cache.dir("bin")?.join("rustc-s390x");
        let script = format!(
            "#!/bin/sh\n# Written by cargo xtask s390x: Debian rustc-web unpacked in the lane's cache.\n\
             LD_LIBRARY_PATH={lib}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}} exec {bin} \"$@\"\n",
            lib = root.join("usr/lib/x86_64-linux-gnu").display(),
            bin = root.join("usr/bin/rustc").display(),
        );
        cache::write_if_changed(&rustc, &script)?;
        std::fs::set_permissions(&rustc, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", rustc.display()))?;
        let v = host::capture(Command::new(&rustc).arg("--version"))?;
        eprintln!("xtask s390x: {}", v.trim());

        let qemu = apt.unpack(
            cache,
            "qemu-user",
            &["qemu-user/bookworm-backports".to_string()],
        )?;
        let qemu_user = qemu.join("usr/bin/qemu-s390x");
        if !qemu_user.is_file() {
            return Err(format!(
                "{} missing after unpacking qemu-user",
                qemu_user.display()
            ));
        }
        Ok(Self {
            rustc,
            qemu_user,
            target_dir: cache.dir(&checkout_target(&util::root()))?,
            payload_dir: cache.dir("payload")?,
        })
    }

    /// cargo for the s390x target: our rustc, linker, static linking, qemu-user as runner.
    fn cargo(&self) -> Command {
        let mut cmd = util::cargo();
        let t = TARGET.to_uppercase().replace('-', "_");
        cmd.env("RUSTC", &self.rustc)
            .env("CARGO_TARGET_DIR", &self.target_dir)
            .env(format!("CARGO_TARGET_{t}_LINKER"), "s390x-linux-gnu-gcc")
            .env(
                format!("CARGO_TARGET_{t}_RUSTFLAGS"),
                "-C target-feature=+crt-static",
            )
            .env(format!("CARGO_TARGET_{t}_RUNNER"), &self.qemu_user)
            .env("PROPTEST_CASES", PROPTEST_CASES)
            // Global flags or wrappers from the environment would replace or bypass the above.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTC_WRAPPER")
            .env_remove("RUSTC_WORKSPACE_WRAPPER")
            .arg("--color=never");
        cmd
    }

    /// Runs the workspace's lib, bin and integration tests for s390x under qemu-user.
    pub(crate) fn unit_tests(&self) -> util::Result<UnitSummary> {
        eprintln!(
            "xtask s390x: testing every workspace crate except xtask (host tool) and benches \
             (criterion); doc tests are not run; PROPTEST_CASES={PROPTEST_CASES} under emulation"
        );
        let mut summary = UnitSummary {
            suites: Vec::new(),
            passed: 0,
            failed: 0,
            binaries: 0,
            cargo_ok: true,
        };
        let mut all = vec!["--workspace", "--exclude", "xtask", "--exclude", "benches"];
        for (package, why) in LIB_AND_BIN_TESTS_ONLY {
            all.extend(["--exclude", package]);
            eprintln!("xtask s390x: {package}: integration tests skipped under qemu-user: {why}");
        }
        self.cargo_test(
            &[&all, &["--lib", "--bins", "--tests"][..]].concat(),
            &mut summary,
        )?;
        for (package, _) in LIB_AND_BIN_TESTS_ONLY {
            if util::root().join("crates").join(package).is_dir() {
                self.cargo_test(&["-p", package, "--lib", "--bins"], &mut summary)?;
            }
        }
        Ok(summary)
    }

    /// One `cargo test --target s390x... <args>`, its results added to `summary`.
    fn cargo_test(&self, args: &[&str], summary: &mut UnitSummary) -> util::Result {
        let mut cmd = self.cargo();
        cmd.args(["test", "--no-fail-fast", "--target", TARGET])
            .args(args);
        eprintln!("xtask: running {cmd:?}");
        // cargo names each test binary (`Running ...`) on stderr and libtest prints its results on
        // stdout: one pipe for both keeps them in order, so every result line gets its binary.
        let mut merged = Command::new("sh");
        merged
            .args(["-c", "exec \"$@\" 2>&1", "sh"])
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .current_dir(util::root())
            .stdout(Stdio::piped());
        for (key, value) in cmd.get_envs() {
            match value {
                Some(v) => merged.env(key, v),
                None => merged.env_remove(key),
            };
        }
        let mut child = merged
            .spawn()
            .map_err(|e| format!("could not start cargo test: {e}"))?;
        let mut current = String::new();
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines() {
                let line = line.map_err(|e| format!("reading cargo test output: {e}"))?;
                println!("{line}");
                if let Some(running) = line.trim().strip_prefix("Running ") {
                    // `Running tests/x.rs (target/.../x-hash)`: keep the source and binary name.
                    let (src, bin) = running.split_once(" (").unwrap_or((running, ""));
                    let file = bin.rsplit('/').next().unwrap_or("").trim_end_matches(')');
                    let name = file.rsplit_once('-').map_or(file, |(k, _)| k);
                    current = format!("{name} {src}");
                }
                if let Some((p, f)) = report::parse_cargo_test_result(&line) {
                    summary.suites.push((std::mem::take(&mut current), p, f));
                    summary.passed += p;
                    summary.failed += f;
                    summary.binaries += 1;
                }
            }
        }
        let ok = child
            .wait()
            .map_err(|e| format!("cargo test: {e}"))?
            .success();
        summary.cargo_ok &= ok;
        Ok(())
    }

    /// Builds what the guest runs: the lane's probe always; the vfio-guest crate's `vfio-guest` and
    /// `ccwctl` when this tree has them.
    pub(crate) fn guest_payloads(&self) -> util::Result<Payloads> {
        let root = util::root();
        let mut bins = Vec::new();

        let probe = self.payload_dir.join("ccw-probe");
        util::run(
            Command::new(&self.rustc)
                .args(["--edition", "2024", "-D", "warnings", "--target", TARGET])
                .args([
                    "-C",
                    "linker=s390x-linux-gnu-gcc",
                    "-C",
                    "target-feature=+crt-static",
                ])
                .args(["-C", "opt-level=2", "-C", "strip=symbols", "-o"])
                .arg(&probe)
                .arg(root.join("xtask/s390x/probe.rs")),
        )?;
        bins.push(("ccw-probe".to_string(), probe));

        let vfio_guest = root.join(VFIO_GUEST_MAIN).is_file();
        if vfio_guest {
            bins.push((
                "vfio-guest".into(),
                self.build_bin("vfio-guest", "vfio-guest")?,
            ));
        } else {
            eprintln!(
                "xtask s390x: no {VFIO_GUEST_MAIN} in this tree: conformance and bench will be skipped"
            );
        }
        let ccwctl = root.join("crates/ccwctl/src/main.rs").is_file();
        if ccwctl {
            bins.push(("ccwctl".into(), self.build_bin("ccwctl", "ccwctl")?));
        }
        let examples = [
            "examples/sense-id.ccw",
            "crates/ccwctl/examples/sense-id.ccw",
        ]
        .iter()
        .map(|p| root.join(p))
        .filter(|p| p.is_file())
        .take(1)
        .collect();
        Ok(Payloads {
            bins,
            examples,
            vfio_guest,
            ccwctl,
        })
    }

    /// `cargo build --release` of one binary for s390x; returns its path.
    fn build_bin(&self, package: &str, bin: &str) -> util::Result<PathBuf> {
        util::run(self.cargo().args([
            "build",
            "--release",
            "--target",
            TARGET,
            "-p",
            package,
            "--bin",
            bin,
        ]))?;
        let path: &Path = &self.target_dir.join(TARGET).join("release").join(bin);
        if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(format!(
                "cargo built {package} but {} is missing",
                path.display()
            ))
        }
    }
}

/// The cache's cargo target directory for the checkout at `root`: one per checkout.
///
/// Several checkouts (git worktrees, a CI clone) share one cache. With one target directory
/// between them, cargo keeps each checkout's compiled units apart, but a unit it finds fresh is
/// not copied to `release/<bin>` again, so a checkout could ship the binary another checkout
/// built last. A directory per checkout costs each new checkout one build of the dependencies.
fn checkout_target(root: &Path) -> String {
    let key: String = root
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("targets/{}", key.trim_matches('_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_checkout_builds_in_its_own_target_directory() {
        assert_eq!(
            checkout_target(Path::new("/work/main")),
            "targets/work_main"
        );
        assert_eq!(
            checkout_target(Path::new("/tmp/ci-clone")),
            "targets/tmp_ci-clone"
        );
        assert_ne!(
            checkout_target(Path::new("/work/wt/a")),
            checkout_target(Path::new("/work/wt/b"))
        );
    }

    #[test]
    fn a_ccwctl_payload_makes_its_guest_checks_required() {
        let mut p = Payloads {
            bins: Vec::new(),
            examples: Vec::new(),
            vfio_guest: false,
            ccwctl: false,
        };
        assert_eq!(p.expected_steps(Lane::Qemu), ["probe-legacy", "probe-cdev"]);
        p.ccwctl = true;
        assert!(p.expected_steps(Lane::Qemu).contains(&"ccwctl-sense-id"));
        assert!(!p.expected_steps(Lane::Qemu).contains(&"ccwctl-example"));
        p.examples.push(PathBuf::from("examples/sense-id.ccw"));
        assert!(p.expected_steps(Lane::Qemu).contains(&"ccwctl-example"));
        // On Hercules the conformance suite is required too (with the 3390 fixture); the bench
        // is QEMU's.
        p.vfio_guest = true;
        let h = p.expected_steps(Lane::Hercules);
        assert!(h.contains(&"conformance-legacy") && h.contains(&"conformance-cdev"));
        // The DASD driver runs against the real 3390 on Hercules only.
        assert!(h.contains(&"ccwctl-dasd-rdc"));
        // The lifecycle API takes the device; ccwctl claims by bus id and gives it back.
        assert!(h.contains(&"lifecycle") && h.contains(&"ccwctl-busid-dasd-rdc"));
        let q = p.expected_steps(Lane::Qemu);
        assert!(q.contains(&"lifecycle") && q.contains(&"ccwctl-busid"));
        assert!(!q.contains(&"ccwctl-busid-dasd-rdc"));
        assert!(!p.expected_steps(Lane::Qemu).contains(&"ccwctl-dasd-rdc"));
        assert!(!h.contains(&"bench"));
        assert!(p.expected_steps(Lane::Qemu).contains(&"bench"));
        // vcss's bring-up runs in both lanes, its IPL on the 3390 only.
        assert!(h.contains(&"vcss-bringup-legacy") && h.contains(&"vcss-ipl"));
        let q = p.expected_steps(Lane::Qemu);
        assert!(q.contains(&"vcss-bringup-cdev") && !q.contains(&"vcss-ipl"));
        p.vfio_guest = false;
        // A guest that skipped them (`@@ skip ccwctl: ...`) then fails.
        let lines: Vec<String> = [
            "@@ setup-ok",
            "@@ skip ccwctl: this ccwctl has no --vfio option yet",
            "@@ done",
        ]
        .map(String::from)
        .to_vec();
        let f = report::GuestReport::parse(Lane::Qemu, &lines)
            .failures(&p.expected_steps(Lane::Qemu), false);
        assert!(
            f.iter().any(|x| x.contains("ccwctl-sense-id did not run")),
            "{f:?}"
        );
    }
}
