// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `vfio-guest claim` and `vfio-guest restored`: the device lifecycle in the lane's guest, done
//! by vfio-backend's [`ClaimedSubchannel`] and checked from sysfs by this runner.
//!
//! `claim --busid <id> [--uuid <uuid>] -- <command...>` claims the subchannel that `<id>` names
//! for vfio_ccw, creates the mdev (`<uuid>`, else the subchannel's own or a random one), prints
//! what the lane records (`@@ fact` lines, then `@@ setup-ok`; `@@ setup-fail <why>` when a
//! step fails), runs `<command>` with `CCW_MDEV=<uuid>` and `CCW_SUBCHANNEL=<sch>` in its
//! environment, releases the claim, and checks the subchannel is as it was before (driver,
//! `driver_override`, its children: the ccw device back, no mdev left). One line counts it:
//! `lifecycle: N passed, M failed`.
//!
//! `restored --busid <id> [--expect <text>] [--name <name>] -- <command...>` runs a command
//! that claims the subchannel itself (`ccwctl --vfio <busid> ...`), prints its output, and
//! checks that it succeeded, printed `<text>` (case-insensitive), and left the subchannel as
//! it found it: `<name>: N passed, M failed` (default name `restored`).
//!
//! The I/O subchannel driver finds the ccw device again asynchronously after the subchannel
//! comes back: the state check waits for it (at most [`SETTLE`]).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use ccw_types::{DeviceId, SubchannelId};
use vfio_backend::{ClaimedSubchannel, is_uuid, subchannel_of};

/// How long the subchannel may take to be back as it was after a release.
const SETTLE: Duration = Duration::from_secs(30);

pub(crate) const USAGE: &str = "\
  vfio-guest claim --busid <busid> [--uuid <mdev-uuid>] -- <command...>
  vfio-guest restored --busid <busid> [--expect <text>] [--name <name>] -- <command...>";

/// The parsed arguments of `claim` and `restored`.
#[derive(Debug, PartialEq, Eq)]
struct Args {
    busid: String,
    uuid: Option<String>,
    expect: Option<String>,
    name: Option<String>,
    command: Vec<String>,
}

fn parse(cmd: &str, argv: &[String]) -> Result<Args, String> {
    let mut it = argv.iter();
    let (mut busid, mut uuid, mut expect, mut name) = (None, None, None, None);
    let mut command = Vec::new();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--busid" => busid = Some(value()?),
            "--uuid" if cmd == "claim" => uuid = Some(value()?),
            "--expect" if cmd == "restored" => expect = Some(value()?),
            "--name" if cmd == "restored" => name = Some(value()?),
            "--" => {
                command = it.by_ref().cloned().collect();
                break;
            }
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    let busid = busid.ok_or("--busid is required")?;
    if command.is_empty() {
        return Err(format!("{cmd} needs `-- <command...>`"));
    }
    Ok(Args {
        busid,
        uuid,
        expect,
        name,
        command,
    })
}

/// Counted checks, printed like the conformance runner's cases.
struct Checks {
    name: String,
    passed: u32,
    failed: u32,
}

impl Checks {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            passed: 0,
            failed: 0,
        }
    }

    fn check(&mut self, what: &str, ok: bool, detail: impl std::fmt::Display) -> bool {
        if ok {
            self.passed += 1;
            println!("  ok      {}/{what}", self.name);
        } else {
            self.failed += 1;
            println!("  FAILED  {}/{what}: {detail}", self.name);
        }
        ok
    }

    /// Prints the counted line; the exit status.
    fn finish(&self) -> ExitCode {
        println!(
            "{}: {} passed, {} failed",
            self.name, self.passed, self.failed
        );
        if self.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

/// What sysfs says about a subchannel, read directly (not through the library under test).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    driver: Option<String>,
    driver_override: String,
    /// Its ccw device and mdevs (the child directories named like a bus id or a UUID).
    children: Vec<String>,
}

fn sch_dir(sch: SubchannelId) -> PathBuf {
    Path::new("/sys/bus/css/devices").join(sch.to_string())
}

impl Snapshot {
    fn of(sch: SubchannelId) -> Self {
        let dir = sch_dir(sch);
        let driver = std::fs::read_link(dir.join("driver"))
            .ok()
            .and_then(|l| l.file_name().map(|n| n.to_string_lossy().into_owned()));
        let driver_override = std::fs::read_to_string(dir.join("driver_override"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|e| format!("({e})"));
        let mut children: Vec<String> = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.parse::<DeviceId>().is_ok() || is_uuid(n))
                    .collect()
            })
            .unwrap_or_default();
        children.sort();
        Self {
            driver,
            driver_override,
            children,
        }
    }

    /// Waits until the subchannel is as `self` describes, at most [`SETTLE`]; returns what it
    /// was last.
    fn wait_for(&self, sch: SubchannelId) -> Snapshot {
        let deadline = Instant::now() + SETTLE;
        loop {
            let now = Snapshot::of(sch);
            if now == *self || Instant::now() >= deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Counts one check per part: driver, override, children.
    fn compare(&self, after: &Snapshot, checks: &mut Checks) {
        let show = |d: &Option<String>| d.clone().unwrap_or_else(|| "none".into());
        checks.check(
            "driver-given-back",
            after.driver == self.driver,
            format!(
                "driver {} after, {} before",
                show(&after.driver),
                show(&self.driver)
            ),
        );
        checks.check(
            "override-restored",
            after.driver_override == self.driver_override,
            format!(
                "driver_override `{}` after, `{}` before",
                after.driver_override, self.driver_override
            ),
        );
        checks.check(
            "device-back-no-mdev-left",
            after.children == self.children,
            format!(
                "children {:?} after, {:?} before",
                after.children, self.children
            ),
        );
    }
}

/// The names in `dir`, full paths, sorted (what the shell's `dir/*` gives).
fn entries(dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().display().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `vfio-guest claim` or `vfio-guest restored`; `argv` starts with the command.
pub(crate) fn main(argv: &[String]) -> ExitCode {
    let cmd = argv[0].as_str();
    let args = match parse(cmd, &argv[1..]) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vfio-guest {cmd}: {e}\nusage:\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if cmd == "claim" {
        claim(&args)
    } else {
        restored(&args)
    }
}

fn setup_fail(checks: &mut Checks, what: &str, e: impl std::fmt::Display) -> ExitCode {
    println!("@@ setup-fail {what}: {e}");
    checks.check(what, false, e);
    checks.finish()
}

fn claim(args: &Args) -> ExitCode {
    let mut checks = Checks::new("lifecycle");
    let sch = match subchannel_of(&args.busid) {
        Ok(s) => s,
        Err(e) => return setup_fail(&mut checks, "resolve", e),
    };
    let before = Snapshot::of(sch);
    let mut claim = match ClaimedSubchannel::claim(&args.busid) {
        Ok(c) => c,
        Err(e) => return setup_fail(&mut checks, "claim", e),
    };
    let device = claim
        .device()
        .map_or_else(|| args.busid.clone(), |d| d.to_string());
    println!(
        "@@ fact device={device} subchannel={sch} driver={}",
        claim.original_driver().unwrap_or("none")
    );
    let driver = claim.driver().unwrap_or_else(|| "none".into());
    println!("@@ fact bound={sch} driver={driver}");
    checks.check(
        "claimed",
        driver == "vfio_ccw",
        format!("driver is {driver}"),
    );
    match claim.mdev_type() {
        Ok(t) => println!(
            "@@ fact mdev-type name='{}' device_api={} available_instances={}",
            t.name, t.device_api, t.available_instances
        ),
        Err(e) => return setup_fail(&mut checks, "mdev-type", e),
    }
    let made = match &args.uuid {
        Some(u) => claim.mdev(u).map(|_| u.clone()),
        None => claim.mdev_auto(),
    };
    let uuid = match made {
        Ok(u) => u,
        Err(e) => return setup_fail(&mut checks, "mdev", e),
    };
    let group = claim.iommu_group();
    let cdev = claim.cdev();
    println!(
        "@@ fact mdev={uuid} iommu_group={} cdev={}",
        group
            .as_ref()
            .map_or_else(|e| format!("({e})"), u32::to_string),
        cdev.as_ref().map_or_else(
            |e| format!("({e})"),
            |p| p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        )
    );
    checks.check("mdev-created", group.is_ok(), "no IOMMU group");
    let mut nodes = entries("/dev/vfio");
    nodes.extend(entries("/dev/vfio/devices"));
    if Path::new("/dev/iommu").exists() {
        nodes.push("/dev/iommu".into());
    }
    println!("@@ fact nodes={}", nodes.join(" "));
    println!("@@ setup-ok");
    let status = Command::new(&args.command[0])
        .args(&args.command[1..])
        .env("CCW_MDEV", &uuid)
        .env("CCW_SUBCHANNEL", sch.to_string())
        .stdin(Stdio::null())
        .status();
    checks.check(
        "payloads-ran",
        status.as_ref().is_ok_and(|s| s.success()),
        format!("{}: {status:?}", args.command[0]),
    );
    let released = claim.release();
    checks.check(
        "released",
        released.is_ok(),
        released
            .as_ref()
            .err()
            .map_or(String::new(), |e| e.to_string()),
    );
    let after = before.wait_for(sch);
    before.compare(&after, &mut checks);
    checks.finish()
}

fn restored(args: &Args) -> ExitCode {
    let mut checks = Checks::new(args.name.as_deref().unwrap_or("restored"));
    let sch = match subchannel_of(&args.busid) {
        Ok(s) => s,
        Err(e) => {
            checks.check("resolve", false, e);
            return checks.finish();
        }
    };
    let before = Snapshot::of(sch);
    let out = Command::new(&args.command[0])
        .args(&args.command[1..])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(out) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            print!("{text}");
            checks.check(
                "command",
                out.status.success(),
                format!("{}: {}", args.command[0], out.status),
            );
            if let Some(want) = &args.expect {
                checks.check(
                    "output",
                    text.to_lowercase().contains(&want.to_lowercase()),
                    format!("expected `{want}` in the output"),
                );
            }
        }
        Err(e) => {
            checks.check("command", false, format!("{}: {e}", args.command[0]));
        }
    }
    let after = before.wait_for(sch);
    before.compare(&after, &mut checks);
    checks.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn arguments_parse_and_the_command_follows_the_dashes() {
        let a = parse(
            "claim",
            &argv("--busid 0.0.0120 --uuid u -- /init payloads --x"),
        )
        .unwrap();
        assert_eq!(a.busid, "0.0.0120");
        assert_eq!(a.uuid.as_deref(), Some("u"));
        assert_eq!(a.command, ["/init", "payloads", "--x"]);
        let a = parse(
            "restored",
            &argv("--busid dev:0.0.0005 --expect 3832 --name n -- ccwctl --vfio 0.0.0005"),
        )
        .unwrap();
        assert_eq!(a.expect.as_deref(), Some("3832"));
        assert_eq!(a.name.as_deref(), Some("n"));
        assert_eq!(a.command.len(), 3);
        assert!(parse("claim", &argv("--busid 0.0.0120")).is_err());
        assert!(parse("claim", &argv("-- x")).is_err());
        assert!(parse("claim", &argv("--busid 1 --expect x -- y")).is_err());
        assert!(parse("restored", &argv("--busid 1 --uuid x -- y")).is_err());
        assert!(parse("claim", &argv("--busid")).is_err());
    }

    #[test]
    fn a_changed_subchannel_fails_each_part_it_changed() {
        let before = Snapshot {
            driver: Some("io_subchannel".into()),
            driver_override: "(null)".into(),
            children: vec!["0.0.0005".into()],
        };
        let mut c = Checks::new("t");
        before.compare(&before.clone(), &mut c);
        assert_eq!((c.passed, c.failed), (3, 0));
        let after = Snapshot {
            driver: Some("vfio_ccw".into()),
            driver_override: "vfio_ccw".into(),
            children: vec!["0cc5e000-5390-4000-8000-000000000005".into()],
        };
        let mut c = Checks::new("t");
        before.compare(&after, &mut c);
        assert_eq!((c.passed, c.failed), (0, 3));
    }
}
