// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Interoperability of the ECKD 3390 model with the real peer: Hercules' DASD utilities
//! (Debian package `hercules`: `dasdinit`, `dasdls`, `dasdcopy`, `cckdcdsk`).
//!
//! - an image made by `dasdinit` is read by our model (VOL1 at cylinder 0 head 0 record 3);
//! - an image our model created and wrote through ECKD channel programs is accepted by
//!   Hercules: `dasdls` lists the data set our VTOC describes, `dasdcopy` converts it to a
//!   compressed image that `cckdcdsk -3` (full track-image check) passes, and converting it
//!   back yields exactly our tracks.
//!
//! The tools are looked up in `$HERCULES_BIN` and then on `PATH`. Without them the tests print
//! why and pass vacuously, unless `CCW_REQUIRE_HERCULES=1` (set by `.ci/run` once it installed
//! the package) turns their absence into a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use ccw_dasd::EckdProgram;
use ccw_types::eckd::{TrackAddr, ascii_to_ebcdic};
use mock_backend::dasd::{CkdImage, CreateOptions, Eckd, Model3390, parse_vol1};

mod common;
use common::{Scratch, run_direct};

/// The directory holding Hercules' DASD tools, or `None` (after saying why) if absent.
fn hercules() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("HERCULES_BIN")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    let found = dirs.into_iter().find(|d| d.join("dasdinit").is_file());
    if found.is_none() {
        let msg = "Hercules DASD tools (dasdinit, dasdls, dasdcopy, cckdcdsk) not found: \
                   install Debian's `hercules` package (apt-get install -y hercules)";
        assert!(std::env::var_os("CCW_REQUIRE_HERCULES").is_none(), "{msg}");
        eprintln!("SKIPPED: {msg}");
    }
    found
}

/// Runs a tool; success means exit status 0 and no Hercules error message (`HHCxxnnnE`):
/// `dasdcopy` reports unreadable tracks as `HHCDC008E ... null track substituted` and still
/// exits 0.
fn run(bin: &Path, tool: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin.join(tool)).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let error_msg = text
        .lines()
        .any(|l| l.starts_with("HHC") && l.as_bytes().get(8) == Some(&b'E'));
    (out.status.success() && !error_msg, text)
}

fn ebcdic(s: &str, len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = s.bytes().map(ascii_to_ebcdic).collect();
    v.resize(len, 0x40);
    v
}

#[test]
fn dasdinit_image_is_read_by_our_model() {
    let Some(bin) = hercules() else { return };
    let dir = Scratch::new("init");
    let path = dir.file("herc.3390");
    let p = path.to_str().unwrap();
    let (ok, text) = run(&bin, "dasdinit", &["-lfs", p, "3390-1", "HERC01", "3"]);
    assert!(ok, "dasdinit failed: {text}");

    let img = CkdImage::open(&path, false).unwrap();
    assert_eq!(img.cylinders(), 3);
    assert_eq!(img.volser().unwrap().as_deref(), Some("HERC01"));
    // Every track parses.
    for t in 0..img.tracks() {
        img.read_track(TrackAddr::from_index(t)).unwrap();
    }

    // Through the device: dasd_eckd's label read (DE, LR read data R3, Read Key and Data).
    let mut dev = Eckd::new(img, 0x0190);
    let out = run_direct(
        &EckdProgram::read_key_data(TrackAddr::new(0, 0), 3, 4, 80),
        &mut dev,
    )
    .unwrap();
    assert_eq!(&out[0][..4], &ebcdic("VOL1", 4)[..]);
    assert_eq!(parse_vol1(&out[0][4..]).as_deref(), Some("HERC01"));
    // And the counts of track 0 as the volume analysis reads them.
    let counts = run_direct(&EckdProgram::read_counts(TrackAddr::new(0, 0), 3), &mut dev).unwrap();
    let recs: Vec<u8> = counts.iter().map(|c| c[4]).collect();
    assert_eq!(recs, [1, 2, 3]);
    // Our model writes to a Hercules-made image, and Hercules still reads it.
    let t = TrackAddr::new(2, 4);
    run_direct(
        &EckdProgram::format_track(t, &vec![vec![0x5A; 4096]; 3]),
        &mut dev,
    )
    .unwrap();
    drop(dev);
    let (ok, text) = run(
        &bin,
        "dasdcopy",
        &["-q", "-z", p, dir.file("c.cckd").to_str().unwrap()],
    );
    assert!(ok, "dasdcopy rejected the image we wrote to: {text}");
}

/// F4 (VTOC) and F1 (data set) DSCBs: 44-byte key + 96-byte data.
fn vtoc_records(volser: &str, dsname: &str, cyls: u16) -> Vec<(Vec<u8>, Vec<u8>)> {
    let vtoc = TrackAddr::new(0, 1);
    let mut f4 = vec![0u8; 96];
    f4[0] = 0xF4; // DS4IDFMT
    f4[1..6].copy_from_slice(&[0, 0, 0, 1, 2]); // DS4HPCHR: last F1 at 0/1/R2
    f4[6..8].copy_from_slice(&48u16.to_be_bytes()); // DS4DSREC: free DSCBs
    f4[15] = 1; // DS4NOEXT
    f4[18..20].copy_from_slice(&cyls.to_be_bytes()); // DS4DEVSZ
    f4[20..22].copy_from_slice(&15u16.to_be_bytes());
    f4[22..24].copy_from_slice(&58786u16.to_be_bytes()); // DS4DEVTK
    f4[30] = 50; // DS4DEVDT: DSCBs per track
    // DS4VTOCE (DSCB offset 105): the VTOC extent, cylinder 0 head 1 only.
    let e = 105 - 44;
    f4[e] = 0x01;
    f4[e + 2..e + 6].copy_from_slice(&vtoc.to_cchh());
    f4[e + 6..e + 10].copy_from_slice(&vtoc.to_cchh());
    let mut f1 = vec![0u8; 96];
    f1[0] = 0xF1; // DS1FMTID
    f1[1..7].copy_from_slice(&ebcdic(volser, 6));
    f1[7..9].copy_from_slice(&1u16.to_be_bytes()); // volume sequence
    vec![(vec![0x04; 44], f4), (ebcdic(dsname, 44), f1)]
}

#[test]
fn image_written_by_our_model_is_accepted_by_hercules() {
    let Some(bin) = hercules() else { return };
    let dir = Scratch::new("ours");
    let path = dir.file("ours.3390");
    let p = path.to_str().unwrap();
    let opts = CreateOptions {
        cylinders: Some(3),
        volser: Some("OURS01".into()),
    };
    let img = CkdImage::create(&path, Model3390::M1, &opts).unwrap();
    let mut dev = Eckd::new(img, 0x0191);

    // A VTOC on cylinder 0 head 1 describing one data set; VOL1 points at it.
    let vtoc = TrackAddr::new(0, 1);
    run_direct(
        &EckdProgram::format_track_keyed(vtoc, &vtoc_records("OURS01", "CCWRS.TEST.DATA", 3)),
        &mut dev,
    )
    .unwrap();
    let t0 = TrackAddr::new(0, 0);
    let mut vol1 = run_direct(&EckdProgram::read_data(t0, 3, 1, 80), &mut dev)
        .unwrap()
        .remove(0);
    vol1[11..16].copy_from_slice(&[0, 0, 0, 1, 1]); // VTOC at CCHHR 0/1/1
    run_direct(&EckdProgram::write_data(t0, 3, &[vol1]), &mut dev).unwrap();
    // Data tracks: 12 x 4 KiB records per track, as dasdfmt lays a 4 KiB-block volume out.
    for head in 0..3 {
        let t = TrackAddr::new(1, head);
        let recs: Vec<Vec<u8>> = (1..=12u8).map(|r| vec![r ^ head as u8; 4096]).collect();
        run_direct(&EckdProgram::format_track(t, &recs), &mut dev).unwrap();
    }
    drop(dev);

    // dasdls walks VOL1 -> F4 DSCB -> VTOC extent and lists the data set.
    let (ok, text) = run(&bin, "dasdls", &[p]);
    assert!(ok, "dasdls failed: {text}");
    assert!(text.contains("VOLSER=OURS01"), "{text}");
    assert!(text.contains("CCWRS.TEST.DATA"), "{text}");

    // dasdcopy reads every track through Hercules' CKD handler; cckdcdsk -3 checks every
    // track image of the result.
    let cckd = dir.file("ours.cckd");
    let (ok, text) = run(&bin, "dasdcopy", &["-q", "-z", p, cckd.to_str().unwrap()]);
    assert!(ok, "dasdcopy failed: {text}");
    let (ok, text) = run(&bin, "cckdcdsk", &["-3", "-ro", cckd.to_str().unwrap()]);
    assert!(ok, "cckdcdsk found problems: {text}");
    // Our model refuses the compressed image clearly ...
    let err = CkdImage::open(&cckd, true).unwrap_err();
    assert!(err.to_string().contains("compressed"), "{err}");
    // ... and Hercules' conversion back yields exactly our tracks.
    let back = dir.file("back.3390");
    let (ok, text) = run(
        &bin,
        "dasdcopy",
        &[
            "-q",
            "-o",
            "CKD",
            "-lfs",
            cckd.to_str().unwrap(),
            back.to_str().unwrap(),
        ],
    );
    assert!(ok, "dasdcopy back failed: {text}");
    let ours = CkdImage::open(&path, true).unwrap();
    let theirs = CkdImage::open(&back, true).unwrap();
    assert_eq!(ours.cylinders(), theirs.cylinders());
    for t in 0..ours.tracks() {
        let a = TrackAddr::from_index(t);
        assert!(
            ours.read_track(a).unwrap() == theirs.read_track(a).unwrap(),
            "track {a} differs"
        );
    }
}
