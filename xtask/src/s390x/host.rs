// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Host packages through a private APT configuration.
//!
//! `/etc/apt` and dpkg's architecture list stay untouched: the lane's own `apt.conf` (selected with
//! `APT_CONFIG`) names its own sources list (bookworm, -updates, -backports, -security), its own
//! package lists and archive cache, and the architectures amd64 and s390x, so that s390x packages
//! (busybox, the Rust standard library) can be downloaded and unpacked with `dpkg -x` without
//! becoming installable. Only host tools are installed, and only those missing: naming an
//! installed package in `apt-get install` would upgrade it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::cache::{self, Cache};
use crate::util;

/// Debian suites the lane draws from; qemu-system-s390x and qemu-user come from backports.
const SOURCES: &str = "\
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
";

/// The release every install draws from first. qemu-system-s390x must come from backports
/// (bookworm's qemu-system-misc 7.2 would remove the preinstalled qemu-utils 10.0), and so must
/// its dependencies: naming only the package (`qemu-system-s390x/bookworm-backports`) leaves
/// qemu-system-common and qemu-system-data to resolve from bookworm, which apt refuses on a
/// fresh machine. Likewise libelf-dev must match the libelf1 a machine image already carries,
/// which may be the backports one. `-t` makes the whole transaction prefer backports, and falls
/// back to bookworm for what backports does not carry.
const TARGET_RELEASE: &str = "bookworm-backports";

/// Host tools of the QEMU lane, installed if missing.
pub(crate) const QEMU_LANE: &[&str] = &[
    "qemu-system-s390x",
    // Linker for Rust, compiler for the kernel, and the kernel build's tools.
    "gcc-s390x-linux-gnu",
    "libc6-dev-s390x-cross",
    "flex",
    "bison",
    "libelf-dev",
    "cpio",
    "bc",
];

/// Host tools of the Hercules DASD tests (`dasdinit`, `dasdls`, `cckdcdsk`), installed if
/// missing.
pub(crate) const HERCULES: &[&str] = &["hercules"];

/// The lane's private APT: configuration, lists and downloaded `.deb`s all live in the cache.
pub(crate) struct Apt {
    conf: PathBuf,
    debs: PathBuf,
}

/// Writes the private APT configuration, refreshes its lists once, installs missing host tools.
pub(crate) fn setup(cache: &Cache) -> util::Result<Apt> {
    let apt = Apt::open(cache)?;
    apt.install_missing(QEMU_LANE)?;
    Ok(apt)
}

impl Apt {
    /// Writes the private APT configuration under `cache` and refreshes its lists once.
    pub(crate) fn open(cache: &Cache) -> util::Result<Apt> {
        let dir = cache.dir("apt")?;
        for sub in [
            "lists/partial",
            "archives/partial",
            "cache",
            "etc/sources.list.d",
            "etc/preferences.d",
        ] {
            cache.dir(&format!("apt/{sub}"))?;
        }
        let sources = dir.join("etc/sources.list");
        cache::write_if_changed(&sources, SOURCES)?;
        let d = dir.display();
        let conf_text = format!(
            "Dir::Etc::sourcelist \"{d}/etc/sources.list\";\n\
             Dir::Etc::sourceparts \"{d}/etc/sources.list.d\";\n\
             Dir::Etc::preferencesparts \"{d}/etc/preferences.d\";\n\
             Dir::State::Lists \"{d}/lists\";\n\
             Dir::Cache \"{d}/cache\";\n\
             Dir::Cache::archives \"{d}/archives\";\n\
             APT::Architectures {{ \"amd64\"; \"s390x\"; }};\n\
             APT::Sandbox::User \"root\";\n"
        );
        let conf = dir.join("apt.conf");
        cache::write_if_changed(&conf, &conf_text)?;
        let apt = Apt {
            conf,
            debs: cache.dir("debs")?,
        };
        if !cache.is_done("apt-update", SOURCES) {
            apt.update()?;
            cache.mark_done("apt-update", SOURCES)?;
        } else {
            eprintln!("xtask: package lists cached");
        }
        Ok(apt)
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("APT_CONFIG", &self.conf)
            .env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    }

    fn update(&self) -> util::Result {
        util::run(self.command("apt-get").args(["update", "-q"]))
    }

    /// `apt-get install` of `packages` as the lane runs it (private configuration, backports
    /// first, no recommends).
    fn install_command(&self, packages: &[&str]) -> Command {
        let mut cmd = self.command("apt-get");
        cmd.args([
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "-t",
            TARGET_RELEASE,
        ])
        .args(packages);
        cmd
    }

    /// Installs those of `packages` that are not installed yet.
    pub(crate) fn install_missing(&self, packages: &[&str]) -> util::Result {
        let missing: Vec<&str> = packages
            .iter()
            .copied()
            .filter(|pkg| !is_installed(pkg))
            .collect();
        if missing.is_empty() {
            eprintln!(
                "xtask: host packages already installed: {}",
                packages.join(" ")
            );
            return Ok(());
        }
        util::run(&mut self.install_command(&missing))
    }

    /// Simulates (`apt-get -s`) installing `packages` exactly as [`Apt::install_missing`] does,
    /// on a fresh machine: against this machine's dpkg status with `packages`, and everything
    /// only they pulled in, removed (see [`super::fresh`]). Returns apt's plan; fails with apt's
    /// words if it refuses.
    pub(crate) fn simulate_fresh_install(
        &self,
        packages: &[&str],
        work: &Path,
    ) -> util::Result<String> {
        let status = std::fs::read_to_string(DPKG_STATUS)
            .map_err(|e| format!("cannot read {DPKG_STATUS}: {e}"))?;
        let gone = super::fresh::lane_only(&status, packages);
        std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
        let fresh = work.join("status");
        std::fs::write(&fresh, super::fresh::without(&status, &gone))
            .map_err(|e| format!("cannot write {}: {e}", fresh.display()))?;
        let mut cmd = self.install_command(packages);
        cmd.arg("-s")
            .arg("-o")
            .arg(format!("Dir::State::status={}", fresh.display()));
        capture(&mut cmd)
    }

    /// One field (e.g. `Version`, `Depends`) of the candidate of `pkg` (`name[:arch][=version]`).
    pub(crate) fn field(&self, pkg: &str, field: &str) -> util::Result<String> {
        let out = capture(
            self.command("apt-cache")
                .args(["show", "--no-all-versions", pkg]),
        )?;
        let prefix = format!("{field}: ");
        out.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(str::to_string)
            .ok_or_else(|| format!("apt-cache show {pkg}: no {field} field"))
    }

    /// Downloads `spec` (`name[:arch][=version]` or `name/release`) once; returns the `.deb`.
    pub(crate) fn fetch(&self, spec: &str) -> util::Result<PathBuf> {
        let safe: String = spec
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let dir = self.debs.join(&safe);
        if let Some(deb) = single_deb(&dir) {
            return Ok(deb);
        }
        let tmp = self.debs.join(format!("{safe}.tmp"));
        cache::remove(&tmp)?;
        std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        let download = || {
            util::run(
                self.command("apt-get")
                    .args(["download", "-q", spec])
                    .current_dir(&tmp),
            )
        };
        if download().is_err() {
            // The lists may be stale (a security update replaced the version): refresh, retry once.
            self.update()?;
            download()?;
        }
        cache::remove(&dir)?;
        std::fs::rename(&tmp, &dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        single_deb(&dir).ok_or_else(|| format!("apt-get download {spec} left no single .deb"))
    }

    /// Unpacks the packages `specs` with `dpkg -x` into `cache/name` once (keyed by their files).
    pub(crate) fn unpack(
        &self,
        cache: &Cache,
        name: &str,
        specs: &[String],
    ) -> util::Result<PathBuf> {
        let debs = specs
            .iter()
            .map(|s| self.fetch(s))
            .collect::<util::Result<Vec<_>>>()?;
        let key = debs
            .iter()
            .filter_map(|d| d.file_name().map(|f| f.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join("\n");
        let dest = cache.root().join(name);
        if cache.is_done(name, &key) && dest.is_dir() {
            return Ok(dest);
        }
        let tmp = cache.root().join(format!("{name}.tmp"));
        cache::remove(&tmp)?;
        for deb in &debs {
            util::run(Command::new("dpkg").arg("-x").arg(deb).arg(&tmp))?;
        }
        cache::remove(&dest)?;
        std::fs::rename(&tmp, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        cache.mark_done(name, &key)?;
        Ok(dest)
    }
}

/// Simulates, on a fresh machine, every install the project makes: the QEMU lane's, Hercules',
/// and both in one go. Returns each plan by name; fails naming the set apt refused.
pub(crate) fn check_fresh(apt: &Apt, work: &Path) -> util::Result<Vec<(&'static str, String)>> {
    let both: Vec<&str> = QEMU_LANE.iter().chain(HERCULES).copied().collect();
    let mut plans = Vec::new();
    for (name, set) in [
        ("the QEMU lane", QEMU_LANE),
        ("hercules", HERCULES),
        ("both", both.as_slice()),
    ] {
        let plan = apt
            .simulate_fresh_install(set, work)
            .map_err(|e| format!("a fresh machine cannot install {name}: {e}"))?;
        plans.push((name, plan));
    }
    Ok(plans)
}

/// This machine's dpkg status file.
const DPKG_STATUS: &str = "/var/lib/dpkg/status";

fn is_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Status}", pkg])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout == b"installed")
}

fn single_deb(dir: &Path) -> Option<PathBuf> {
    let debs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    match debs.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// Runs a command and returns its standard output; fails with its standard error.
pub(crate) fn capture(cmd: &mut Command) -> util::Result<String> {
    let line = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not start {line}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{line} failed with {}: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout).map_err(|_| format!("{line}: output is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Why this machine cannot run the simulation, if it cannot.
    fn skip_reason() -> Option<&'static str> {
        if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            return Some("the lanes install amd64 Debian packages");
        }
        if !Path::new(DPKG_STATUS).is_file()
            || capture(Command::new("apt-get").arg("--version")).is_err()
        {
            return Some("no dpkg/apt-get on this machine");
        }
        if !Path::new("/usr/share/keyrings/debian-archive-keyring.gpg").is_file() {
            return Some("not a Debian machine (no debian-archive-keyring)");
        }
        if capture(Command::new("id").arg("-u")).is_ok_and(|u| u.trim() != "0") {
            return Some("not root (the lane's APT lists live in a root-owned cache)");
        }
        None
    }

    /// Issue 13: the lane's exact install, simulated against a fresh machine's dpkg status,
    /// must be accepted by apt. A used machine keeps what earlier runs installed, so a real
    /// install there hides a broken one (qemu-system-s390x's dependencies resolving from
    /// bookworm, libelf-dev against a newer libelf1).
    #[test]
    fn a_fresh_machine_can_install_every_host_package() {
        if let Some(reason) = skip_reason() {
            eprintln!("skipped: {reason}");
            return;
        }
        let cache = Cache::open(&super::super::default_cache()).unwrap();
        let apt = Apt::open(&cache).unwrap();
        let work = std::env::temp_dir().join(format!("ccw-rs-fresh-{}", std::process::id()));
        let plans = check_fresh(&apt, &work);
        let _ = cache::remove(&work);
        let plans = plans.unwrap_or_else(|e| panic!("{e}"));
        for (name, plan) in plans {
            // Every package of the set is in the plan: the simulated machine really lacked it.
            assert!(
                plan.lines().any(|l| l.starts_with("Inst ")),
                "{name}: apt planned no install at all:\n{plan}"
            );
        }
    }
}
