// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The emulated guest: a busybox initramfs with the payloads, and one guarded QEMU run.
//!
//! The guest has one virtio-blk-ccw disk at device number fe.0.0005 and no network (`-nic none`,
//! else a default virtio-net-ccw device takes subchannel 0.0.0000). Its `/init`
//! (xtask/s390x/init.sh) has `vfio-guest claim` take the disk's subchannel for vfio_ccw and
//! create the mediated device, runs the payloads with it and powers off, which ends QEMU. A timeout guards the run; the verdict comes
//! from the printed lines (see `report`), never from QEMU's exit code.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::cache::{self, Cache};
use super::host::Apt;
use super::rust::Payloads;
use crate::util;

/// The mediated device's UUID inside the guest.
const MDEV_UUID: &str = "0cc5e000-5390-4000-8000-000000000005";
/// Size of the guest's (empty) virtio-blk disk.
const DISK_BYTES: u64 = 64 << 20;

/// What one guest run printed, and whether the timeout guard had to kill QEMU.
pub(crate) struct GuestRun {
    pub(crate) lines: Vec<String>,
    pub(crate) timed_out: bool,
}

/// Assembles `initrd.cpio.gz` (rebuilt every run: the payloads change with the tree).
pub(crate) fn initramfs(cache: &Cache, apt: &Apt, payloads: &Payloads) -> util::Result<PathBuf> {
    let busybox = apt.unpack(
        cache,
        "busybox-s390x",
        &["busybox-static:s390x".to_string()],
    )?;
    let dir = cache.dir("guest")?;
    let stage = dir.join("initramfs");
    cache::remove(&stage)?;
    for sub in ["bin", "etc/ccw-rs", "examples", "proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(stage.join(sub))
            .map_err(|e| format!("{}: {e}", stage.display()))?;
    }
    copy(
        &busybox.join("bin/busybox"),
        &stage.join("bin/busybox"),
        0o755,
    )?;
    copy(
        &util::root().join("xtask/s390x/init.sh"),
        &stage.join("init"),
        0o755,
    )?;
    std::fs::write(stage.join("etc/ccw-rs/uuid"), format!("{MDEV_UUID}\n"))
        .map_err(|e| format!("write uuid: {e}"))?;
    for (name, path) in &payloads.bins {
        copy(path, &stage.join("bin").join(name), 0o755)?;
    }
    for example in &payloads.examples {
        if let Some(name) = example.file_name() {
            copy(example, &stage.join("examples").join(name), 0o644)?;
        }
    }
    let initrd = dir.join("initrd.cpio.gz");
    util::run(
        Command::new("bash")
            .current_dir(&stage)
            .args(["-o", "pipefail", "-c"])
            .arg(format!(
                "find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -1 > '{}'",
                initrd.display()
            )),
    )?;
    let disk = dir.join("disk.img");
    if std::fs::metadata(&disk).map(|m| m.len()).ok() != Some(DISK_BYTES) {
        let f = std::fs::File::create(&disk).map_err(|e| format!("{}: {e}", disk.display()))?;
        f.set_len(DISK_BYTES)
            .map_err(|e| format!("{}: {e}", disk.display()))?;
    }
    Ok(initrd)
}

/// Copies a file and sets its mode (a checkout may not keep the executable bit).
fn copy(from: &Path, to: &Path, mode: u32) -> util::Result {
    std::fs::copy(from, to)
        .and_then(|_| std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)))
        .map_err(|e| format!("copy {} -> {}: {e}", from.display(), to.display()))
}

/// Boots the guest once and collects its console lines, killing QEMU after `timeout`.
pub(crate) fn boot(
    cache: &Cache,
    kernel: &Path,
    initrd: &Path,
    timeout: Duration,
) -> util::Result<GuestRun> {
    let disk = cache.dir("guest")?.join("disk.img");
    let mut cmd = Command::new("qemu-system-s390x");
    cmd.args([
        "-M",
        "s390-ccw-virtio",
        "-cpu",
        "max",
        "-smp",
        "1",
        "-m",
        "1024",
    ])
    .args(["-nographic", "-no-reboot", "-nic", "none"])
    .arg("-kernel")
    .arg(kernel)
    .arg("-initrd")
    .arg(initrd)
    .args(["-append", "console=ttysclp0 panic=-1 quiet"])
    .arg("-drive")
    .arg(format!("file={},if=none,id=d1,format=raw", disk.display()))
    .args(["-device", "virtio-blk-ccw,drive=d1,devno=fe.0.0005"]);
    watch(&mut cmd, "QEMU", timeout)
}

/// Runs an emulator in its own process group, echoes and collects its output lines, and kills
/// the whole group once `timeout` has passed. The verdict never uses the exit code.
pub(crate) fn watch(cmd: &mut Command, what: &str, timeout: Duration) -> util::Result<GuestRun> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    eprintln!("xtask: running {cmd:?} (timeout {} s)", timeout.as_secs());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not start {what}: {e}"))?;

    let (tx, rx) = mpsc::channel::<String>();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|pipe| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).split(b'\n').map_while(Result::ok) {
                if tx
                    .send(String::from_utf8_lossy(&line).into_owned())
                    .is_err()
                {
                    break;
                }
            }
        })
    })
    .collect();
    drop(tx);

    let deadline = Instant::now() + timeout;
    let mut lines = Vec::new();
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                println!("guest| {}", line.trim_end_matches('\r'));
                lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                eprintln!(
                    "xtask s390x: guest still running after {} s: killing {what}'s process group",
                    timeout.as_secs()
                );
                // The child leads its own process group (pgid = its pid): kill all of it, which
                // also closes the pipes and so ends the reader threads.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
                let _ = child.kill();
                break;
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {what}: {e}"))?;
    for r in readers {
        let _ = r.join();
    }
    // Lines that arrived between the timeout and the kill still count.
    lines.extend(rx.try_iter());
    eprintln!("xtask s390x: {what} exited with {status} (not used for the verdict)");
    Ok(GuestRun { lines, timed_out })
}
