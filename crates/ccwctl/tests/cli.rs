// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The `ccwctl` binary end to end on the built-in simulated channel subsystem: every example
//! program, every command, `--json` parsed, and the one-line errors.
#![cfg(feature = "sim")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn ccwctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ccwctl"))
        .args(args)
        .output()
        .expect("the ccwctl binary runs")
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .display()
        .to_string()
}

fn json(args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = ccwctl(&all);
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

fn stderr_line(out: &Output) -> String {
    let s = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(s.lines().count(), 1, "one line expected: {s:?}");
    s.trim_end().to_string()
}

#[test]
fn every_example_runs_and_its_json_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ccw"))
        .collect();
    names.sort();
    assert!(names.len() >= 4, "{names:?}");
    for p in names {
        let path = p.display().to_string();
        let busid = if path.ends_with("sense-id.ccw") {
            "0.0.0000"
        } else {
            "0.0.0001"
        };
        let v = json(&["run", busid, &path]);
        assert_eq!(v["backend"], "simulated");
        assert_eq!(v["subchannel"], busid);
        assert!(v["irb"]["scsw"]["final"].as_bool().unwrap(), "{path}: {v}");
        assert!(v["elapsed_us"].as_u64().is_some());
        // The text form works too.
        let out = ccwctl(&["run", busid, &path]);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("status: SCSW"));
    }
}

#[test]
fn sense_id_example_reads_the_virtio_control_unit() {
    let v = json(&["run", "0.0.0000", &example("sense-id.ccw")]);
    assert_eq!(v["outcome"], "ok");
    assert_eq!(v["irb"]["scsw"]["dstat"], serde_json::json!(["CE", "DE"]));
    assert_eq!(v["last_ccw"], 0);
    let data = &v["data"][0];
    assert!(
        data["hex"].as_str().unwrap().starts_with("ff3832"),
        "{data}"
    );
    assert_eq!(
        v["residual"].as_u64().unwrap() + data["len"].as_u64().unwrap(),
        256
    );
    assert!(
        data["decoded"]
            .as_str()
            .unwrap()
            .starts_with("SENSE ID cu=3832/")
    );
}

#[test]
fn chained_reads_get_the_record_back_whole_and_split() {
    let v = json(&["run", "0.0.0001", &example("chained-reads.ccw")]);
    assert_eq!(v["outcome"], "ok", "{v}");
    assert_eq!(v["last_ccw"], 3);
    assert_eq!(v["orb"]["intparm"], 0x00c0_ffee);
    let data = v["data"].as_array().unwrap();
    let hex_of = |i: usize| data.iter().find(|d| d["ccw"] == i).unwrap()["hex"].clone();
    let record = "HELLO, CHANNEL SUBSYSTEM"
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    assert!(hex_of(1).as_str().unwrap().starts_with(&record));
    assert_eq!(
        format!(
            "{}{}",
            hex_of(2).as_str().unwrap(),
            hex_of(3).as_str().unwrap()
        ),
        record
    );
}

#[test]
fn program_check_example_ends_with_pgm_at_the_second_tic() {
    let v = json(&["run", "0.0.0001", &example("program-check.ccw")]);
    assert_eq!(v["outcome"], "exception");
    assert_eq!(v["irb"]["scsw"]["cstat"], serde_json::json!(["PGM"]));
    assert_eq!(v["last_ccw"], 2);
    assert_eq!(v["ccws"][2]["labels"], serde_json::json!(["second"]));
    // --strict turns an exception into exit status 3.
    let out = ccwctl(&["run", "--strict", "0.0.0001", &example("program-check.ccw")]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn tic_loop_example_finds_the_key_and_reads_the_record() {
    let v = json(&["run", "0.0.0001", &example("tic-loop.ccw")]);
    assert_eq!(v["outcome"], "ok", "{v}");
    assert_eq!(v["last_ccw"], 3);
    assert!(
        v["data"][0]["hex"]
            .as_str()
            .unwrap()
            .starts_with("4b455931")
    );
}

#[test]
fn list_shows_both_default_subchannels() {
    let v = json(&["list"]);
    let subs = v["subchannels"].as_array().unwrap();
    let ids: Vec<_> = subs.iter().map(|s| s["subchannel"].clone()).collect();
    assert_eq!(ids, vec!["0.0.0000", "0.0.0001"]);
    assert_eq!(subs[0]["device"], "0.0.0005");
    assert_eq!(subs[0]["devno"], 5);
    assert!(subs[0]["cu"].as_str().unwrap().starts_with("3832/"));
    assert_eq!(subs[1]["device"], "0.0.0006");
    assert_eq!(subs[1]["pim"], 0x80);
    assert_eq!(subs[1]["chpids"], serde_json::json!(["00"]));
    let text = String::from_utf8_lossy(&ccwctl(&["list"]).stdout).into_owned();
    assert!(text.starts_with("Subchan."), "{text}");
    assert_eq!(text.lines().count(), 3);
}

#[test]
fn sense_id_by_subchannel_and_by_device_number() {
    let a = json(&["sense-id", "0.0.0001"]);
    let b = json(&["sense-id", "0.0.0006"]);
    assert_eq!(a["subchannel"], "0.0.0001");
    assert_eq!(b["subchannel"], "0.0.0001");
    assert_eq!(a["cu_type"], b["cu_type"]);
    assert_eq!(a["bytes"].as_str().unwrap().get(..2), Some("ff"));
    let c = json(&["sense-id", "dev:0.0.0005"]);
    assert_eq!(c["subchannel"], "0.0.0000");
}

#[test]
fn decode_every_block() {
    let cases: &[(&str, &str, &str, Value)] = &[
        ("ccw", "E4200007 00012340", "count", 7.into()),
        ("ccw0", "E4012340 20000007", "cda", 0x12340.into()),
        ("orb", "12345678 00C2FF00 00001000", "lpm", 0xff.into()),
        ("scsw", "00804007 00001008 0C000000", "final", true.into()),
        ("crw", "03440005", "rsid", 5.into()),
        ("senseid", "FF383202 00000000", "cu_type", 0x3832.into()),
        ("sense", "80000000", "byte0", "CMD_REJ".into()),
    ];
    for (block, hex, field, want) in cases {
        let v = json(&["decode", block, hex]);
        assert_eq!(v["block"], *block);
        assert_eq!(&v["fields"][field], want, "{block}: {v}");
    }
    let irb = format!("00804017 00001010 00200000{}", "0".repeat(104));
    let v = json(&["decode", "irb", &irb]);
    assert_eq!(v["fields"]["scsw"]["cstat"], serde_json::json!(["PGM"]));
    let schib = format!("00000000 00810005 80000080{}", "0".repeat(80));
    let v = json(&["decode", "schib", &schib]);
    assert_eq!(v["fields"]["pmcw"]["devno"], 5);
}

#[test]
fn one_line_errors_and_exit_codes() {
    let out = ccwctl(&["sense-id", "0.0.0042"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_line(&out),
        "ccwctl: no subchannel or device 0.0.0042 (see `ccwctl list`)"
    );

    let out = ccwctl(&["sense-id", "zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_line(&out).contains("bad bus id `zero`"));

    let dir = std::env::temp_dir().join(format!("ccwctl-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.ccw");
    std::fs::write(&bad, "read count=8\n  frob\n").unwrap();
    let out = ccwctl(&["run", "0.0.0001", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_line(&out),
        format!(
            "ccwctl: {}:2:3: unknown command `frob` (give other command codes as numbers, e.g. 0x27)",
            bad.display()
        )
    );

    // A program the translator refuses: errno and the program check a CSS would present.
    let rejected = dir.join("rejected.ccw");
    std::fs::write(&rejected, "nop cc\n0x00 count=0\n").unwrap();
    let out = ccwctl(&["run", "0.0.0001", rejected.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let line = stderr_line(&out);
    assert!(line.contains("invalid command code 0x00"), "{line}");
    assert!(line.contains("errno 22"), "{line}");
    assert!(line.contains("PGM"), "{line}");
    std::fs::remove_dir_all(&dir).unwrap();

    let out = ccwctl(&["run", "0.0.0001", "/nonexistent/p.ccw"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("cannot read"));

    let out = ccwctl(&["--vfio", "00000000-0000-0000-0000-000000000000", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("no mdev"));

    // A bus id names a subchannel or a device to claim; --mdev-uuid goes with a bus id only.
    let out = ccwctl(&["--vfio", "sch:0.0.0001", "sense-id", "0.0.0001"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("no subchannel 0.0.0001"));
    let uuid = "00000000-0000-0000-0000-000000000000";
    let out = ccwctl(&["--vfio", uuid, "--mdev-uuid", uuid, "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("--mdev-uuid is for --vfio <busid>"));
    let out = ccwctl(&["--mdev-uuid", uuid, "list"]);
    assert_eq!(out.status.code(), Some(2));

    let out = ccwctl(&["decode", "frob", "00"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_line(&out).contains("unknown block `frob`"));

    // With --json the error is also a JSON object on stdout.
    let out = ccwctl(&["--json", "sense-id", "0.0.0042"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["error"].as_str().unwrap().contains("0.0.0042"));
}

#[test]
fn watch_shows_injected_path_events_and_attention() {
    let out = ccwctl(&[
        "--json",
        "watch",
        "--duration",
        "2",
        "--count",
        "5",
        "--inject-path-event",
        "00",
        "--inject-attention",
        "0.0.0001",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    let crws: Vec<_> = lines.iter().filter(|l| l["event"] == "crw").collect();
    assert_eq!(crws.len(), 4);
    assert_eq!(crws[0]["fields"]["rsc"], 4);
    let attn = lines.iter().find(|l| l["event"] == "interrupt").unwrap();
    assert_eq!(attn["subchannel"], "0.0.0001");
    assert_eq!(attn["fields"]["scsw"]["dstat"], serde_json::json!(["ATTN"]));
    assert_eq!(attn["fields"]["scsw"]["solicited"], false);
}

#[test]
fn watch_ends_after_its_duration_when_nothing_happens() {
    let out = ccwctl(&["watch", "--duration", "0.2"]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
}
