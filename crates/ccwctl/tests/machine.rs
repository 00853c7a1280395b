// SPDX-License-Identifier: Apache-2.0 OR MIT

//! `ccwctl --machine FILE`: the example machine files of `examples/machines/` run through the
//! binary, a hand-written ECKD program reads a 3390's volume label from its image, and a
//! malformed machine file fails with one `file:line: reason` line.
#![cfg(feature = "sim")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn ccwctl_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ccwctl"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the ccwctl binary runs")
}

fn ok_json(dir: &Path, args: &[&str]) -> Value {
    let out = ccwctl_in(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/machines")
}

/// A scratch directory holding copies of the example machine files and programs.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("ccwctl-machine-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["default.machine", "dasd.machine", "read-vol1.ccw"] {
            std::fs::copy(examples().join(f), dir.join(f)).unwrap();
        }
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_default_machine_file_is_the_built_in_machine() {
    let s = Scratch::new("default");
    let built_in = ok_json(&s.0, &["--json", "list"]);
    let from_file = ok_json(&s.0, &["--json", "--machine", "default.machine", "list"]);
    assert_eq!(built_in["subchannels"], from_file["subchannels"]);
    assert!(built_in.get("machine").is_none());
    assert_eq!(from_file["machine"]["chpids"][0]["type"], "32");
}

#[test]
fn a_3390_on_its_image_lists_and_runs_a_hand_written_program() {
    let s = Scratch::new("dasd");
    let init = ccwctl_in(
        &s.0,
        &[
            "dasd",
            "init",
            "volume.img",
            "--volser",
            "VOL001",
            "--cylinders",
            "10",
        ],
    );
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );

    let list = ok_json(&s.0, &["--json", "--machine", "dasd.machine", "list"]);
    let schs = list["subchannels"].as_array().unwrap();
    assert_eq!(schs.len(), 3);
    let dasd = &schs[2];
    assert_eq!(dasd["subchannel"], "0.0.0002");
    assert_eq!(dasd["device"], "0.0.0190");
    assert_eq!(dasd["cu"], "3990/e9");
    assert_eq!(dasd["dev"], "3390/02");
    assert_eq!(dasd["pim"], 0xC0);
    assert_eq!(dasd["chpids"], serde_json::json!(["40", "41"]));
    let types: Vec<(&str, &str)> = list["machine"]["chpids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["chpid"].as_str().unwrap(), c["type"].as_str().unwrap()))
        .collect();
    assert_eq!(types, [("00", "32"), ("40", "1b"), ("41", "1b")]);
    assert_eq!(list["machine"]["devices"][2]["image"], "volume.img");

    let text = ccwctl_in(&s.0, &["--machine", "dasd.machine", "list"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("channel paths: 00 (type 32), 40 (type 1b), 41 (type 1b)"),
        "{text}"
    );

    let run = ok_json(
        &s.0,
        &[
            "--json",
            "--machine",
            "dasd.machine",
            "run",
            "0.0.0190",
            "read-vol1.ccw",
        ],
    );
    assert_eq!(run["outcome"], "ok", "{run}");
    assert_eq!(run["subchannel"], "0.0.0002");
    let data = run["data"][0]["hex"].as_str().unwrap();
    // Key "VOL1", then the label: "VOL1" + volser "VOL001" in EBCDIC.
    assert!(data.starts_with("e5d6d3f1e5d6d3f1e5d6d3f0f0f1"), "{data}");
    assert_eq!(run["data"][0]["len"], 84);
}

#[test]
fn a_malformed_machine_file_fails_with_file_and_line() {
    let s = Scratch::new("bad");
    std::fs::write(
        s.0.join("dup.machine"),
        "chpid 00 type=32\n0005 test chpids=00\n0005 virtio-blk-ccw chpids=00\n",
    )
    .unwrap();
    let out = ccwctl_in(&s.0, &["--machine", "dup.machine", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "ccwctl: dup.machine:3: duplicate device number 0005 (first on line 2)"
    );
    // The 3390's image is checked when the file is read: no volume.img was created here.
    let out = ccwctl_in(&s.0, &["--machine", "dasd.machine", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("ccwctl: dasd.machine:14: image volume.img:"),
        "{err}"
    );
    // A file that is no CKD image is caught when the simulator opens it, on the same line.
    std::fs::write(s.0.join("volume.img"), b"not a CKD image").unwrap();
    let out = ccwctl_in(&s.0, &["--machine", "dasd.machine", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("ccwctl: dasd.machine:14: image volume.img:"),
        "{err}"
    );
    // --machine and --vfio exclude each other; dasd brings its own 3390.
    let out = ccwctl_in(&s.0, &["--machine", "dasd.machine", "--vfio", "x", "list"]);
    assert_eq!(out.status.code(), Some(2));
    let out = ccwctl_in(
        &s.0,
        &["--machine", "default.machine", "dasd", "rdc", "volume.img"],
    );
    assert_eq!(out.status.code(), Some(2));
}
