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

/// Host tools installed if missing: (package, release to take it from).
const HOST_PACKAGES: &[(&str, Option<&str>)] = &[
    // bookworm's qemu-system-misc 7.2 would remove the preinstalled qemu-utils 10.0 (backports).
    ("qemu-system-s390x", Some("bookworm-backports")),
    // Linker for Rust, compiler for the kernel, and the kernel build's tools.
    ("gcc-s390x-linux-gnu", None),
    ("libc6-dev-s390x-cross", None),
    ("flex", None),
    ("bison", None),
    ("libelf-dev", None),
    ("cpio", None),
    ("bc", None),
];

/// The lane's private APT: configuration, lists and downloaded `.deb`s all live in the cache.
pub(crate) struct Apt {
    conf: PathBuf,
    debs: PathBuf,
}

/// Writes the private APT configuration, refreshes its lists once, installs missing host tools.
pub(crate) fn setup(cache: &Cache) -> util::Result<Apt> {
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
        eprintln!("xtask s390x: package lists cached");
    }
    apt.install_missing()?;
    Ok(apt)
}

impl Apt {
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("APT_CONFIG", &self.conf)
            .env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    }

    fn update(&self) -> util::Result {
        util::run(self.command("apt-get").args(["update", "-q"]))
    }

    fn install_missing(&self) -> util::Result {
        let missing: Vec<String> = HOST_PACKAGES
            .iter()
            .filter(|(pkg, _)| !is_installed(pkg))
            .map(|(pkg, release)| match release {
                Some(r) => format!("{pkg}/{r}"),
                None => pkg.to_string(),
            })
            .collect();
        if missing.is_empty() {
            eprintln!("xtask s390x: host packages already installed");
            return Ok(());
        }
        util::run(
            self.command("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(&missing),
        )
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
            "{line} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout).map_err(|_| format!("{line}: output is not UTF-8"))
}
