// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The Hercules lane: the same guest kernel and initramfs as the QEMU lane, booted under Hercules
//! 3.13 with one emulated 3390 DASD, whose subchannel the guest binds to vfio_ccw.
//!
//! QEMU runs a whole channel program synchronously inside SSCH and mishandles data chaining and
//! multi-IDAW transfers; Hercules executes programs in device threads (with `nosyncio`) and
//! emulates ECKD DASD, so only here do halt and clear of a running program, data chaining, IDAL
//! transfers and real DASD programs meet the real driver.
//!
//! The configuration follows `hercules-guest.md` of the shared reference: IPL from host files
//! through a `.ins` file (kernel, the parmarea's initrd start and size, the command line, the
//! initrd), the 3215 integrated console (`conmode=3215 condev=0x0009`; the SCLP consoles lose
//! output under Hercules 3.13), and an automatic-operator rule that quits Hercules when the
//! guest's `poweroff -f` stops its CPU. The disk is made fresh each run by `dasdinit -linux`;
//! the host writes a known record and a tiny IPL record chain (xtask/s390x/ipl_chain.rs, which
//! the guest loads through vcss with QEMU's firmware method) before boot and checks the record
//! the guest wrote after it, then `dasdls` and `cckdcdsk` must accept the image.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::cache::{self, Cache};
use super::guest::{self, GuestRun};
use crate::util;

mod records {
    include!("../../s390x/dasd_records.rs");
}
use records::{READ_AT, READ_SEED, RECORD_LEN, WRITE_AT, WRITE_SEED, pattern};

mod ipl_chain {
    include!("../../s390x/ipl_chain.rs");
}

/// Device number of the DASD (subchannel 0.0.0001 in the guest; the console is 0.0.0000).
pub(crate) const DASD_DEVNO: u16 = 0x0120;
/// Device number of the 3215 integrated console.
const CONSOLE_DEVNO: u16 = 0x0009;
/// Cylinders of the image (17 MB): enough for every record the lane touches.
pub(crate) const CYLINDERS: u32 = 20;
/// Volume serial `dasdinit` writes.
pub(crate) const VOLSER: &str = "LNX001";
/// Heads per cylinder of a 3390.
const HEADS: u64 = 15;
/// Bytes per track in a Hercules CKD image of a 3390, and the image's header.
const TRACK_LEN: u64 = 56832;
const IMAGE_HEADER: u64 = 512;
/// Where the initrd is loaded (its address goes into the parmarea's initrd_start).
const INITRD_ADDR: u32 = 0x0400_0000;
/// Kernel command line: the 3215 console, no reboot loop, and the lane for /init.
pub(crate) const CMDLINE: &str =
    "console=ttyS0 conmode=3215 condev=0x0009 panic=-1 quiet ccw_lane=hercules";
/// Image file name inside the lane's directory.
const IMAGE: &str = "disk0120.3390";
/// A copy of the image as it was before boot: the differential check replays the guest's DASD
/// programs on mock-backend's ECKD model over it.
const PRE_IMAGE: &str = "disk0120.pre.3390";
/// The guest's answer lines of the differential check, for the host replay.
const GUEST_ANSWERS: &str = "differential.guest";

/// `hercules.cnf` for a run in `dir` (the image lives there).
pub(crate) fn config(dir: &Path) -> util::Result<String> {
    let image = dir.join(IMAGE);
    let image = image
        .to_str()
        .filter(|s| !s.contains(char::is_whitespace))
        .ok_or_else(|| {
            format!(
                "{}: Hercules' configuration cannot name a path with white space",
                image.display()
            )
        })?;
    Ok(format!(
        "# Written by cargo xtask s390x --lane hercules (see xtask/src/s390x/hercules.rs).\n\
         OSTAILOR   LINUX\n\
         ARCHMODE   z/Arch\n\
         MAINSIZE   1024\n\
         NUMCPU     1\n\
         MAXCPU     1\n\
         CPUSERIAL  000611\n\
         CPUMODEL   2097\n\
         LPARNAME   HERCULES\n\
         PANRATE    SLOW\n\
         DEVTMAX    8\n\
         LOGOPT     NOTIMESTAMP\n\
         {CONSOLE_DEVNO:04X}       3215-C  /\n\
         {DASD_DEVNO:04X}       3390    {image} nosyncio\n"
    ))
}

/// The `.ins` file: one `file address` pair a line, names relative to the `.ins` itself.
/// Addresses: kernel at 0; the low words of the parmarea's `initrd_start` (0x10408) and
/// `initrd_size` (0x10410); the command line at 0x10480; the initrd at `INITRD_ADDR`.
pub(crate) fn ins() -> String {
    format!(
        "kernel.img 0x00000000\n\
         initrd.off 0x0001040c\n\
         initrd.siz 0x00010414\n\
         parmfile 0x00010480\n\
         initrd.gz 0x{INITRD_ADDR:08x}\n"
    )
}

/// The automatic-operator script (`HERCULES_RC`): quit when the guest's CPU stops itself (the end
/// of `poweroff -f`), then IPL from the `.ins` file.
pub(crate) fn rc(ins: &Path) -> String {
    format!(
        "hao tgt SIGP Stop \\(05\\)\nhao cmd quit\nipl {}\n",
        ins.display()
    )
}

/// The parmfile: the command line, NUL-terminated.
pub(crate) fn parmfile() -> Vec<u8> {
    let mut v = CMDLINE.as_bytes().to_vec();
    v.push(0);
    v
}

/// Offset of the data of record `r` (>= 1) of (cyl, head) in the image, as `dasdinit -linux`
/// lays a track out: track header (5 bytes), R0 (count 8 + data 8), then per record count (8)
/// and data (`RECORD_LEN`).
pub(crate) fn record_offset((cyl, head, r): (u16, u16, u8)) -> u64 {
    let track = u64::from(cyl) * HEADS + u64::from(head);
    IMAGE_HEADER
        + track * TRACK_LEN
        + 5
        + 16
        + u64::from(r.saturating_sub(1)) * (8 + RECORD_LEN as u64)
        + 8
}

/// The count field `dasdinit` wrote in front of a record's data: CCHH R KL DL.
pub(crate) fn count_field((cyl, head, r): (u16, u16, u8)) -> [u8; 8] {
    let c = cyl.to_be_bytes();
    let h = head.to_be_bytes();
    let d = (RECORD_LEN as u16).to_be_bytes();
    [c[0], c[1], h[0], h[1], r, 0, d[0], d[1]]
}

/// The full record of `seed`'s pattern.
pub(crate) fn record(seed: u8) -> Vec<u8> {
    (0..RECORD_LEN).map(|i| pattern(seed, i)).collect()
}

/// Offset and length of the data of record `r` of cylinder 0 head 0, found by walking the
/// track's count fields from its home address (track 0 has keyed records of several lengths).
pub(crate) fn track0_record(image: &[u8], r: u8) -> util::Result<(usize, usize)> {
    let mut at = IMAGE_HEADER as usize + 5;
    let end = IMAGE_HEADER as usize + TRACK_LEN as usize;
    while at + 8 <= end {
        let count = image.get(at..at + 8).ok_or("image too short for track 0")?;
        if count == [0xFF; 8] {
            break;
        }
        if count[..4] != [0; 4] {
            return Err(format!(
                "track 0: count field {count:02x?} names another track (not a CKD image)"
            ));
        }
        let (kl, dl) = (
            usize::from(count[5]),
            usize::from(u16::from_be_bytes([count[6], count[7]])),
        );
        if count[4] == r {
            return Ok((at + 8 + kl, dl));
        }
        at += 8 + kl + dl;
    }
    Err(format!("track 0 has no record {r}"))
}

/// Writes the IPL record chain into track 0, each record's data in place: the chain keeps the
/// lengths `dasdinit -linux` gave them, so the track's layout does not change.
pub(crate) fn install_ipl_chain(image: &mut [u8]) -> util::Result {
    for (r, data) in ipl_chain::ipl_records() {
        let (off, len) = track0_record(image, r)?;
        if len != data.len() {
            return Err(format!(
                "track 0 record {r} holds {len} data bytes, the IPL chain needs {} (not a \
                 `dasdinit -linux` layout)",
                data.len()
            ));
        }
        image[off..off + len].copy_from_slice(&data);
    }
    Ok(())
}

/// Reads the record at `at` from an image, after checking its count field (so a layout other
/// than the one `record_offset` assumes is an error, not a wrong comparison).
pub(crate) fn read_record(image: &[u8], at: (u16, u16, u8)) -> util::Result<&[u8]> {
    let off = record_offset(at) as usize;
    let count = image
        .get(off - 8..off)
        .ok_or_else(|| format!("image too short for record {at:?}"))?;
    if count != count_field(at) {
        return Err(format!(
            "record {at:?}: count field {count:02x?} in the image, expected {:02x?} (not a \
             `dasdinit -linux` layout)",
            count_field(at)
        ));
    }
    image
        .get(off..off + RECORD_LEN)
        .ok_or_else(|| format!("image too short for record {at:?}"))
}

/// Everything Hercules needs in `dir`: a fresh image with the known record, the configuration,
/// the IPL files and the operator script. Returns the configuration and script paths.
pub(crate) fn prepare(
    cache: &Cache,
    kernel: &Path,
    initrd: &Path,
) -> util::Result<(PathBuf, PathBuf)> {
    // The kernel is the QEMU lane's; its console here is the 3215 (on by default in Kconfig).
    let config_path = cache.dir("kernel")?.join("linux/.config");
    if let Ok(config) = std::fs::read_to_string(&config_path) {
        if !config.lines().any(|l| l == "CONFIG_TN3215_CONSOLE=y") {
            return Err(format!(
                "the guest kernel ({}) has no CONFIG_TN3215_CONSOLE: nothing would be printed under Hercules",
                config_path.display()
            ));
        }
    }
    let dir = cache.dir("hercules")?;
    let image = dir.join(IMAGE);
    cache::remove(&image)?;
    let (ok, out) = run_tool(
        Command::new("dasdinit")
            .current_dir(&dir)
            .args(["-linux", IMAGE, "3390", VOLSER])
            .arg(CYLINDERS.to_string()),
    );
    if !ok || !out.contains("successfully") {
        return Err(format!("dasdinit failed:\n{}", last_lines(&out)));
    }
    let mut bytes = std::fs::read(&image).map_err(|e| format!("{}: {e}", image.display()))?;
    read_record(&bytes, READ_AT)?;
    read_record(&bytes, WRITE_AT)?;
    let off = record_offset(READ_AT) as usize;
    bytes[off..off + RECORD_LEN].copy_from_slice(&record(READ_SEED));
    install_ipl_chain(&mut bytes)?;
    std::fs::write(&image, &bytes).map_err(|e| format!("{}: {e}", image.display()))?;
    std::fs::write(dir.join(PRE_IMAGE), &bytes).map_err(|e| format!("{PRE_IMAGE}: {e}"))?;

    let write = |name: &str, data: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, data).map_err(|e| format!("{}: {e}", p.display()))
    };
    std::fs::copy(kernel, dir.join("kernel.img")).map_err(|e| format!("copy kernel: {e}"))?;
    std::fs::copy(initrd, dir.join("initrd.gz")).map_err(|e| format!("copy initrd: {e}"))?;
    let initrd_len = std::fs::metadata(initrd)
        .map_err(|e| format!("{}: {e}", initrd.display()))?
        .len();
    let initrd_len =
        u32::try_from(initrd_len).map_err(|_| "the initrd is larger than 4 GiB".to_string())?;
    write("initrd.off", &INITRD_ADDR.to_be_bytes())?;
    write("initrd.siz", &initrd_len.to_be_bytes())?;
    write("parmfile", &parmfile())?;
    let ins_path = dir.join("linux.ins");
    write("linux.ins", ins().as_bytes())?;
    let cnf = dir.join("hercules.cnf");
    write("hercules.cnf", config(&dir)?.as_bytes())?;
    let rc_path = dir.join("hercules.rc");
    write("hercules.rc", rc(&ins_path).as_bytes())?;
    Ok((cnf, rc_path))
}

/// Boots Hercules once (daemon mode: it reads no commands from stdin) and collects the console.
pub(crate) fn boot(cnf: &Path, rc: &Path, timeout: Duration) -> util::Result<GuestRun> {
    let mut cmd = Command::new("hercules");
    cmd.env("HERCULES_RC", rc).arg("-d").arg("-f").arg(cnf);
    if let Some(dir) = cnf.parent() {
        cmd.current_dir(dir);
    }
    guest::watch(&mut cmd, "Hercules", timeout)
}

/// One host-side check after the guest powered off.
pub(crate) struct HostCheck {
    pub(crate) name: &'static str,
    pub(crate) ok: bool,
    pub(crate) detail: String,
}

/// Checks the image after the run: the record the guest wrote, `dasdls`, and `cckdcdsk`.
///
/// `cckdcdsk` checks compressed (CCKD) images only and says so (with exit code 0) for a plain
/// CKD image such as the lane's. So the lane compresses a copy with `ckd2cckd`, which reads every
/// track of the image, and checks that copy with `cckdcdsk -3 -ro` (maximal checking, read-only).
pub(crate) fn host_checks(cache: &Cache) -> util::Result<Vec<HostCheck>> {
    let dir = cache.dir("hercules")?;
    let image = dir.join(IMAGE);
    let bytes = std::fs::read(&image).map_err(|e| format!("{}: {e}", image.display()))?;
    let mut out = Vec::new();

    let (ok, detail) = match read_record(&bytes, WRITE_AT) {
        Ok(got) => match got
            .iter()
            .zip(record(WRITE_SEED))
            .position(|(a, b)| *a != b)
        {
            None => (
                true,
                format!(
                    "record c{}h{}r{} holds the guest's {RECORD_LEN} bytes",
                    WRITE_AT.0, WRITE_AT.1, WRITE_AT.2
                ),
            ),
            Some(i) => (
                false,
                format!(
                    "record c{}h{}r{}: byte {i} is {:02x}, the guest wrote {:02x}",
                    WRITE_AT.0,
                    WRITE_AT.1,
                    WRITE_AT.2,
                    got[i],
                    pattern(WRITE_SEED, i)
                ),
            ),
        },
        Err(e) => (false, e),
    };
    out.push(HostCheck {
        name: "image-holds-guest-write",
        ok,
        detail,
    });

    let (ok, detail) = match read_record(&bytes, READ_AT) {
        Ok(got) => (
            got == record(READ_SEED).as_slice(),
            format!(
                "record c{}h{}r{} unchanged",
                READ_AT.0, READ_AT.1, READ_AT.2
            ),
        ),
        Err(e) => (false, e),
    };
    out.push(HostCheck {
        name: "image-read-record-intact",
        ok,
        detail,
    });

    let ls = run_tool(Command::new("dasdls").current_dir(&dir).arg(IMAGE));
    let want = format!("VOLSER={VOLSER}");
    out.push(HostCheck {
        name: "dasdls",
        ok: ls.0 && ls.1.contains(&want),
        detail: format!(
            "{} (want {want})",
            ls.1.lines()
                .find(|l| l.contains("VOLSER"))
                .unwrap_or(ls.1.trim())
        ),
    });

    let copy = dir.join("disk0120.cckd");
    cache::remove(&copy)?;
    let conv = run_tool(
        Command::new("ckd2cckd")
            .current_dir(&dir)
            .arg(IMAGE)
            .arg(&copy),
    );
    let converted = conv.0 && conv.1.contains("successfully completed");
    out.push(HostCheck {
        name: "ckd2cckd",
        ok: converted,
        detail: if converted {
            "compressed copy made (every track read)".to_string()
        } else {
            last_lines(&conv.1)
        },
    });
    if converted {
        let chk = run_tool(Command::new("cckdcdsk").args(["-3", "-ro"]).arg(&copy));
        // cckdcdsk prints nothing for a clean image; anything it says is a finding.
        let clean = chk.0 && chk.1.trim().is_empty();
        out.push(HostCheck {
            name: "cckdcdsk",
            ok: clean,
            detail: if clean {
                "cckdcdsk -3 -ro on the compressed copy: clean (the image itself is plain CKD, \
                 which cckdcdsk does not check)"
                    .to_string()
            } else {
                last_lines(&chk.1)
            },
        });
    }
    cache::remove(&copy)?;
    Ok(out)
}

/// The guest's answer lines of the differential check (`diff <program> ...`, printed by
/// `vfio-guest differential`).
pub(crate) fn differential_answers(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.trim_matches(|c: char| c == '\r' || c.is_whitespace()))
        .filter(|l| l.starts_with("diff "))
        .map(str::to_string)
        .collect()
}

/// The outcome of the differential check: the summary line, and every line the host replay
/// printed.
pub(crate) struct Differential {
    pub(crate) summary: Option<String>,
    pub(crate) ok: bool,
    pub(crate) output: Vec<String>,
}

/// The host side of the differential check: `vfio-guest replay` (built for the host with the
/// simulator) runs the same DASD programs on mock-backend's ECKD model over the pre-boot copy
/// of the image and compares its answers with the guest's. It fails on a difference that no
/// named defect explains.
pub(crate) fn differential(cache: &Cache, guest_lines: &[String]) -> util::Result<Differential> {
    let dir = cache.dir("hercules")?;
    let answers = differential_answers(guest_lines);
    if answers.is_empty() {
        return Err("the guest printed no differential answers (`diff ...` lines)".to_string());
    }
    let file = dir.join(GUEST_ANSWERS);
    std::fs::write(&file, answers.join("\n") + "\n")
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(util::root())
        .args([
            "run",
            "-q",
            "-p",
            "vfio-guest",
            "--features",
            "replay",
            "--",
        ])
        .arg("replay")
        .arg("--image")
        .arg(dir.join(PRE_IMAGE))
        .arg("--guest")
        .arg(&file)
        .output()
        .map_err(|e| format!("could not run cargo for the replay: {e}"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let output: Vec<String> = text.lines().map(str::to_string).collect();
    let summary = output
        .iter()
        .find(|l| l.starts_with("differential: "))
        .cloned();
    Ok(Differential {
        ok: out.status.success() && summary.is_some(),
        summary,
        output,
    })
}

/// Runs a Hercules utility; returns whether it succeeded (exit 0 and no Hercules error message:
/// the utilities report some errors, e.g. unreadable tracks, and still exit 0) and its output
/// (stdout + stderr).
fn run_tool(cmd: &mut Command) -> (bool, String) {
    match cmd.output() {
        Ok(o) => {
            let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            (o.status.success() && !has_hercules_error(&text), text)
        }
        Err(e) => (false, format!("could not start {cmd:?}: {e}")),
    }
}

/// Whether `text` holds a Hercules error message (`HHCxxnnnE`).
pub(crate) fn has_hercules_error(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| {
        let b = w.as_bytes();
        b.len() == 9
            && w.starts_with("HHC")
            && b[3..5].iter().all(u8::is_ascii_uppercase)
            && b[5..8].iter().all(u8::is_ascii_digit)
            && b[8] == b'E'
    })
}

/// The last lines of a tool's output (progress counters are long and uninteresting).
fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_offsets_follow_the_dasdinit_layout() {
        // Measured in an image made by `dasdinit -linux x.3390 3390 LNX001 20`.
        assert_eq!(record_offset((0, 2, 1)), 512 + 2 * 56832 + 29);
        assert_eq!(record_offset((0, 3, 1)), 512 + 3 * 56832 + 29);
        assert_eq!(record_offset((1, 0, 2)), 512 + 15 * 56832 + 29 + 4104);
        assert_eq!(count_field((0, 2, 1)), [0, 0, 0, 2, 1, 0, 0x10, 0]);
    }

    /// Track 0 as `dasdinit -linux` lays it out (measured in a lane image): R0, keyed IPL1
    /// (24), IPL2 (144) and VOL1 (80), then 4096-byte records.
    fn dasdinit_track0() -> Vec<u8> {
        let mut t = vec![0u8; IMAGE_HEADER as usize + 5];
        let mut rec = |r: u8, key: &[u8], dl: u16| {
            let d = dl.to_be_bytes();
            t.extend_from_slice(&[0, 0, 0, 0, r, key.len() as u8, d[0], d[1]]);
            t.extend_from_slice(key);
            t.extend(std::iter::repeat_n(0xEE, usize::from(dl)));
        };
        rec(0, &[], 8);
        rec(1, &[0xC9, 0xD7, 0xD3, 0xF1], 24);
        rec(2, &[0xC9, 0xD7, 0xD3, 0xF2], 144);
        rec(3, &[0xE5, 0xD6, 0xD3, 0xF1], 80);
        for r in 4..=12 {
            rec(r, &[], 4096);
        }
        t.extend_from_slice(&[0xFF; 8]);
        t.resize(IMAGE_HEADER as usize + TRACK_LEN as usize, 0);
        t
    }

    #[test]
    fn the_ipl_chain_goes_into_track_0_in_place() {
        let mut image = dasdinit_track0();
        // The offsets measured in a lane image.
        assert_eq!(track0_record(&image, 1).unwrap(), (545, 24));
        assert_eq!(track0_record(&image, 4).unwrap(), (825, 4096));
        assert!(
            track0_record(&image, 13)
                .unwrap_err()
                .contains("no record 13")
        );
        let before = image.clone();
        install_ipl_chain(&mut image).unwrap();
        let changed: Vec<usize> = (0..image.len())
            .filter(|&i| image[i] != before[i])
            .collect();
        let (first, last) = (changed[0], changed[changed.len() - 1]);
        let (r5, _) = track0_record(&image, 5).unwrap();
        assert!(first >= 545 && last < r5 + 4096, "{first}..{last}");
        // R3, the volume label, untouched.
        let (r3, _) = track0_record(&image, 3).unwrap();
        assert_eq!(image[r3..r3 + 80], before[r3..r3 + 80]);
        // IPL1: the PSW, READ DATA of IPL2 (CC, SLI, 144 bytes) to 0x2000, TIC to it.
        assert_eq!(
            image[545..569],
            [
                0, 8, 0, 0, 0x80, 1, 0, 0, 0x06, 0, 0x20, 0, 0x60, 0, 0, 0x90, 0x08, 0, 0x20, 0, 0,
                0, 0, 0
            ]
        );
        // A track whose records have other lengths is refused, not rewritten.
        let mut other = dasdinit_track0();
        other[IMAGE_HEADER as usize + 5 + 16 + 7] = 23;
        assert!(install_ipl_chain(&mut other).is_err());
    }

    #[test]
    fn reading_a_record_checks_its_count_field() {
        let mut image = vec![0u8; record_offset(READ_AT) as usize + RECORD_LEN];
        assert!(
            read_record(&image, READ_AT)
                .unwrap_err()
                .contains("count field")
        );
        let off = record_offset(READ_AT) as usize;
        image[off - 8..off].copy_from_slice(&count_field(READ_AT));
        image[off..].copy_from_slice(&record(READ_SEED));
        assert_eq!(
            read_record(&image, READ_AT).unwrap(),
            record(READ_SEED).as_slice()
        );
        assert!(
            read_record(&image[..off + 10], READ_AT)
                .unwrap_err()
                .contains("too short")
        );
    }

    #[test]
    fn patterns_are_position_dependent_and_differ_by_seed() {
        let a = record(READ_SEED);
        let b = record(WRITE_SEED);
        assert_ne!(a, b);
        // A transfer shifted by the data-chaining split (100) or an IDAW boundary (0x800) must
        // not match.
        assert_ne!(a[100..200], a[0..100]);
        assert_ne!(a[0x800..0x900], a[0..0x100]);
        assert_ne!(a[0..4096 - 100], a[100..]);
    }

    #[test]
    fn differential_answers_are_the_diff_lines() {
        let lines: Vec<String> = [
            "@@ begin differential",
            "diff rdc cpa=00001008 cnt=0000 ds=0c cs=00 sense=- data=00\r",
            "  diff not-at-start",
            "differential programs: 1 answered, 0 could not run",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            differential_answers(&lines),
            [
                "diff rdc cpa=00001008 cnt=0000 ds=0c cs=00 sense=- data=00",
                "diff not-at-start"
            ]
        );
    }

    #[test]
    fn hercules_error_messages_are_recognised() {
        assert!(has_hercules_error(
            "HHCCU999E d.3390: not a compressed dasd file"
        ));
        assert!(has_hercules_error(
            "x\nHHCDC008E 0120 null track substituted\n"
        ));
        assert!(!has_hercules_error(
            "HHCDC010I ckd2cckd successfully completed."
        ));
        assert!(!has_hercules_error("d.3390: VOLSER=LNX001"));
    }

    /// The whole host side with Hercules' real tools: a prepared image has the known record
    /// and passes `dasdls` and `cckdcdsk`, and the host check notices that no guest wrote it.
    #[test]
    fn prepared_image_passes_the_tools_and_the_missing_write_is_noticed() {
        if Command::new("dasdinit").arg("-h").output().is_err() {
            let msg = "Hercules' dasdinit not found: `cargo xtask host-tools install hercules`";
            assert!(std::env::var_os("CCW_REQUIRE_HERCULES").is_none(), "{msg}");
            eprintln!("SKIPPED: {msg}");
            return;
        }
        let root = std::env::temp_dir().join(format!("xtask-hercules-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let cache = Cache::open(&root).unwrap();
        let kernel = root.join("bzImage");
        let initrd = root.join("initrd.cpio.gz");
        std::fs::write(&kernel, b"kernel").unwrap();
        std::fs::write(&initrd, [0u8; 1000]).unwrap();
        let (cnf, rc_path) = prepare(&cache, &kernel, &initrd).unwrap();
        let dir = cnf.parent().unwrap();
        assert_eq!(
            std::fs::read(dir.join("initrd.siz")).unwrap(),
            1000u32.to_be_bytes()
        );
        assert_eq!(std::fs::read(dir.join("initrd.off")).unwrap(), [4, 0, 0, 0]);
        assert!(
            std::fs::read_to_string(&rc_path)
                .unwrap()
                .contains("linux.ins")
        );
        let image = std::fs::read(dir.join(IMAGE)).unwrap();
        assert_eq!(
            read_record(&image, READ_AT).unwrap(),
            record(READ_SEED).as_slice()
        );
        // The IPL chain sits in track 0's records, the volume label (R3) beside it intact.
        for (r, data) in ipl_chain::ipl_records() {
            let (off, len) = track0_record(&image, r).unwrap();
            assert_eq!(&image[off..off + len], data.as_slice(), "R{r}");
        }
        let (off, len) = track0_record(&image, 3).unwrap();
        assert_eq!(
            (len, &image[off - 4..off]),
            (80, &[0xE5, 0xD6, 0xD3, 0xF1][..])
        );

        let checks = host_checks(&cache).unwrap();
        let by = |n: &str| checks.iter().find(|c| c.name == n).unwrap();
        assert!(
            !by("image-holds-guest-write").ok,
            "no guest wrote the record"
        );
        for name in ["image-read-record-intact", "dasdls", "ckd2cckd", "cckdcdsk"] {
            assert!(by(name).ok, "{name}: {}", by(name).detail);
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn config_names_console_dasd_and_nosyncio() {
        let c = config(Path::new("/var/cache/ccw-rs/hercules")).unwrap();
        assert!(c.contains("\n0009       3215-C  /\n"), "{c}");
        assert!(
            c.contains("\n0120       3390    /var/cache/ccw-rs/hercules/disk0120.3390 nosyncio\n"),
            "{c}"
        );
        assert!(
            c.contains("OSTAILOR   LINUX") && c.contains("CPUMODEL   2097"),
            "{c}"
        );
        assert!(config(Path::new("/tmp/with space")).is_err());
    }

    #[test]
    fn ipl_files_match_the_parmarea() {
        let ins = ins();
        let lines: Vec<&str> = ins.lines().collect();
        assert_eq!(
            lines,
            [
                "kernel.img 0x00000000",
                "initrd.off 0x0001040c",
                "initrd.siz 0x00010414",
                "parmfile 0x00010480",
                "initrd.gz 0x04000000",
            ]
        );
        let p = parmfile();
        assert_eq!(p.last(), Some(&0));
        let line = std::str::from_utf8(&p[..p.len() - 1]).unwrap();
        assert!(line.contains("conmode=3215 condev=0x0009") && line.contains("ccw_lane=hercules"));
        assert!(p.len() < 896, "the parmarea's command line has 896 bytes");
        let rc = rc(Path::new("/d/linux.ins"));
        assert_eq!(
            rc,
            "hao tgt SIGP Stop \\(05\\)\nhao cmd quit\nipl /d/linux.ins\n"
        );
    }
}
