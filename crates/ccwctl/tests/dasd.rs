// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `ccwctl dasd` end to end: the binary on a fresh image, JSON output parsed.
#![cfg(feature = "sim")]

use std::path::PathBuf;
use std::process::Command;

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("ccwctl-dasd-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `ccwctl --json dasd ARGS`; returns (exit code, parsed stdout or null, stderr).
fn ccwctl(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ccwctl"))
        .arg("--json")
        .arg("dasd")
        .args(args)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn init_format_write_read_rdc() {
    let dir = Scratch::new("flow");
    let img = dir.0.join("v.3390");
    let img = img.to_str().unwrap();

    let (rc, j, err) = ccwctl(&[
        "init",
        img,
        "--model",
        "3390-9",
        "--volser",
        "vol009",
        "--cylinders",
        "2",
    ]);
    assert_eq!(rc, 0, "{err}");
    assert_eq!(j["volser"], "VOL009");
    assert_eq!(j["cylinders"], 2);
    assert_eq!(j["model"], "3390-9");

    let (rc, j, err) = ccwctl(&["rdc", img]);
    assert_eq!(rc, 0, "{err}");
    assert_eq!(j["cu_type"], "3990");
    assert_eq!(j["dev_type"], "3390");
    assert_eq!(j["dev_model"], "02"); // a 2-cylinder image presents as the smallest model
    assert_eq!(j["cylinders"], 2);
    assert_eq!(j["tracks_per_cylinder"], 15);

    let (rc, j, err) = ccwctl(&["format", img, "--blksize", "2048", "--cylinders", "1"]);
    assert_eq!(rc, 0, "{err}");
    assert_eq!(j["tracks"], 15);
    assert_eq!(j["records_per_track"], 21);

    let data = dir.0.join("in.bin");
    std::fs::write(&data, b"hello, 3390").unwrap();
    let (rc, j, err) = ccwctl(&[
        "write",
        img,
        "1",
        "14",
        "21",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert_eq!(rc, 0, "{err}");
    assert_eq!(j["bytes"], 2048);

    let out = dir.0.join("out.bin");
    let (rc, j, err) = ccwctl(&["read", img, "1", "14", "21", "--out", out.to_str().unwrap()]);
    assert_eq!(rc, 0, "{err}");
    assert_eq!(j["data_len"], 2048);
    let back = std::fs::read(&out).unwrap();
    assert_eq!(&back[..11], b"hello, 3390");
    assert!(back[11..].iter().all(|&b| b == 0));

    // The label track survived the format; its VOL1 key reads back.
    let (rc, j, _) = ccwctl(&["read", img, "0", "0", "3"]);
    assert_eq!(rc, 0);
    assert_eq!(j["key"], "e5d6d3f1");
}

#[test]
fn errors_are_typed_and_named() {
    let dir = Scratch::new("err");
    let img = dir.0.join("v.3390");
    let img = img.to_str().unwrap();
    let (rc, _, err) = ccwctl(&["init", img, "--volser", "TOOLONG1", "--cylinders", "1"]);
    assert_eq!(rc, 2, "{err}");
    assert!(err.contains("volser"), "{err}");
    let (rc, _, err) = ccwctl(&[
        "init",
        img,
        "--model",
        "3390-3",
        "--volser",
        "E1",
        "--cylinders",
        "1",
    ]);
    assert_eq!(rc, 0, "{err}");
    // Unformatted track 0/1 has only R0: record 1 does not exist.
    let (rc, _, err) = ccwctl(&["read", img, "0", "1", "1"]);
    assert_eq!(rc, 1);
    assert!(err.contains("no record 1"), "{err}");
    // Outside the volume.
    let (rc, _, err) = ccwctl(&["read", img, "5", "0", "1"]);
    assert_eq!(rc, 2);
    assert!(err.contains("outside the volume"), "{err}");
    // Not an image.
    std::fs::write(dir.0.join("junk"), b"not a disk").unwrap();
    let (rc, _, err) = ccwctl(&["rdc", dir.0.join("junk").to_str().unwrap()]);
    assert_eq!(rc, 1);
    assert!(err.contains("CKD"), "{err}");
    // An existing image is not overwritten.
    let (rc, _, err) = ccwctl(&["init", img, "--volser", "E2", "--cylinders", "1"]);
    assert_eq!(rc, 1);
    assert!(err.contains("exists"), "{err}");
}

/// Runs `ccwctl --json --vfio MDEV dasd ARGS`.
fn ccwctl_vfio(mdev: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ccwctl"))
        .args(["--json", "--vfio", mdev, "dasd"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `--vfio` is accepted for `rdc`, `read` and `write` (the image is then left out): the
/// command goes to the vfio backend, which here finds no such device (exit 1, not a usage
/// error). An image and --vfio together, `init`/`format` with --vfio, and neither an image
/// nor --vfio are usage errors.
#[test]
fn vfio_shape() {
    let missing = "/nonexistent/ccw-rs-no-such-mdev";
    for args in [
        &["rdc"][..],
        &["read", "0", "0", "3"],
        &["write", "0", "1", "1", "--fill", "40"],
    ] {
        let (rc, err) = ccwctl_vfio(missing, args);
        assert_eq!(rc, 1, "{args:?}: {err}");
        assert!(err.contains("ccw-rs-no-such-mdev"), "{args:?}: {err}");
    }
    // A bus id is claimed through sysfs: this machine has no such device (nor a css bus).
    let (rc, err) = ccwctl_vfio("dev:0.0.0120", &["rdc"]);
    assert_eq!(rc, 1, "{err}");
    assert!(err.contains("no ccw device 0.0.0120"), "{err}");
    let (rc, err) = ccwctl_vfio("0.0.012x", &["rdc"]);
    assert_eq!(rc, 1, "{err}");
    assert!(err.contains("`0.0.012x` is not a bus id"), "{err}");
    let (rc, err) = ccwctl_vfio(missing, &["rdc", "some.3390"]);
    assert_eq!(rc, 2, "{err}");
    assert!(err.contains("not both"), "{err}");
    let (rc, err) = ccwctl_vfio(missing, &["format", "some.3390"]);
    assert_eq!(rc, 2, "{err}");
    let (rc, _, err) = ccwctl(&["rdc"]);
    assert_eq!(rc, 2, "{err}");
    assert!(err.contains("--vfio"), "{err}");
    let (rc, _, err) = ccwctl(&["read", "0", "0", "x"]);
    assert_eq!(rc, 2, "{err}");
}
