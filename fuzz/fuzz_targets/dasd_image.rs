// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Fuzzes CKD image files as they are opened and read: arbitrary files, and a valid image with
//! its update journal patched, cut short and joined by arbitrary journal bytes, on the
//! in-memory file system (with a full disk on demand).
//!
//! Input: byte 0 = flags (bit 0 raw mode: the rest is the whole image file; bit 1 cut the
//! image; bit 2 append arbitrary journal bytes; bit 3 start from a valid journal record;
//! bit 4 open read-only; bit 5 write tracks back; bit 6 a full disk for those writes);
//! byte 1 = patch count n; then n patches of 4 bytes (24-bit offset into image and journal,
//! XOR value); then 4 bytes of cut length; the rest is journal bytes.
//!
//! Checked on every input: no panic; a refused open is a typed error naming the image and
//! changed nothing (no write to a file that failed to open); read-only, nothing is ever
//! written; every track reads as a typed error naming the image and the track, or as exactly
//! the bytes stored; a track written back reads back, also after reopening, and a write that
//! fails names the image and the track and leaves the track old or new.

#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mock_backend::dasd::testing::MemFs;
use mock_backend::dasd::{
    CkdImage, CrashPoint, CreateOptions, HEADS, ImageErrorKind, Model3390, Record, Track, TrackAddr,
};

const IMG: &str = "/fuzz/img.3390";
const JRN: &str = "/fuzz/img.3390.journal";

/// A valid one-cylinder image with a few records, and a complete journal record for an update
/// of cylinder 0 head 2 that never reached the image.
fn templates() -> &'static (Vec<u8>, Vec<u8>) {
    static T: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    T.get_or_init(|| {
        let fs = MemFs::new();
        let opts = CreateOptions {
            cylinders: Some(1),
            volser: Some("FUZZ01".into()),
        };
        let mut img = CkdImage::create_on(fs.clone(), Path::new(IMG), Model3390::M1, &opts)
            .expect("template image");
        for (head, n, len) in [(1u16, 3u8, 100usize), (2, 1, 4096), (3, 12, 7)] {
            let addr = TrackAddr::new(0, head);
            let mut t = img.read_track(addr).unwrap();
            for r in 1..=n {
                let mut id = [0u8; 5];
                id[..4].copy_from_slice(&addr.to_cchh());
                id[4] = r;
                t.records
                    .push(Record::new(id, vec![r; usize::from(r % 3)], vec![r; len]));
            }
            img.write_track(&t).unwrap();
        }
        let mut t = img.read_track(TrackAddr::new(0, 2)).unwrap();
        t.records[1].data.fill(0xEE);
        img.simulate_crash(Some(CrashPoint::InPlace(0)));
        assert!(img.write_track(&t).is_err());
        drop(img);
        (
            fs.get(Path::new(IMG)).unwrap(),
            fs.get(Path::new(JRN)).unwrap(),
        )
    })
}

fn named(e: &mock_backend::dasd::ImageError, addr: Option<TrackAddr>) {
    let m = e.to_string();
    assert!(m.contains(IMG), "{m}");
    if let Some(a) = addr
        && e.kind() != ImageErrorKind::OutOfRange
    {
        assert!(m.contains(&a.to_string()), "{m}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let fs = MemFs::new();
    let (img_path, jrn_path) = (Path::new(IMG), Path::new(JRN));
    if flags & 1 != 0 {
        fs.insert(img_path, rest.to_vec());
    } else {
        let (image, record) = templates();
        let mut image = image.clone();
        let mut journal = if flags & 8 != 0 {
            record.clone()
        } else {
            Vec::new()
        };
        let n = rest.first().copied().unwrap_or(0) as usize;
        let mut at = 1;
        for _ in 0..n {
            let Some(p) = rest.get(at..at + 4) else { break };
            at += 4;
            let off = u32::from_le_bytes([p[0], p[1], p[2], 0]) as usize;
            let total = image.len() + journal.len();
            let off = off % total.max(1);
            if off < image.len() {
                image[off] ^= p[3];
            } else if let Some(b) = journal.get_mut(off - image.len()) {
                *b ^= p[3];
            }
        }
        if flags & 2 != 0
            && let Some(c) = rest.get(at..at + 4)
        {
            let cut = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize;
            image.truncate(cut % (image.len() + 1));
        }
        at += 4;
        if flags & 4 != 0 {
            journal.extend_from_slice(rest.get(at..).unwrap_or(&[]));
        }
        fs.insert(img_path, image);
        if flags & (4 | 8) != 0 {
            fs.insert(jrn_path, journal);
        }
    }
    let read_only = flags & 16 != 0;
    let before = (fs.get(img_path), fs.get(jrn_path));
    let mut img = match CkdImage::open_on(fs.clone(), img_path, read_only) {
        Ok(img) => img,
        Err(e) => {
            named(&e, None);
            assert_eq!(fs.writes(img_path), 0, "wrote to an image it refused: {e}");
            assert_eq!((fs.get(img_path), fs.get(jrn_path)), before, "{e}");
            return;
        }
    };
    // Every track: a named error, or exactly what is stored.
    let stored = fs.get(img_path).unwrap();
    let mut good = Vec::new();
    for i in 0..img.tracks() {
        let addr = TrackAddr::from_index(i);
        match img.read_track(addr) {
            Ok(t) => {
                let slot = t.to_slot().expect("a parsed track encodes");
                let n = t.used_len();
                let off = 512 + i as usize * slot.len();
                assert_eq!(slot[..n], stored[off..off + n], "{addr}");
                good.push(t);
            }
            Err(e) => {
                assert!(
                    matches!(e.kind(), ImageErrorKind::InvalidTrack | ImageErrorKind::Io),
                    "{e}"
                );
                named(&e, Some(addr));
            }
        }
    }
    let _ = img.volser();
    assert!(img.read_track(TrackAddr::new(img.cylinders(), 0)).is_err());
    assert!(img.read_track(TrackAddr::new(0, HEADS)).is_err());
    if read_only {
        let e = good.first().map(|t| img.write_track(t).unwrap_err());
        if let Some(e) = e {
            assert_eq!(e.kind(), ImageErrorKind::ReadOnly);
            named(&e, good.first().map(|t| t.addr));
        }
        drop(img);
        assert_eq!(fs.writes(img_path), 0, "a read-only image was written");
        assert_eq!((fs.get(img_path), fs.get(jrn_path)), before);
        return;
    }
    if flags & 32 == 0 {
        return;
    }
    // Write back what read well (changed a little), maybe onto a full disk.
    if flags & 64 != 0 {
        fs.set_space_left(Some(u64::from(rest.last().copied().unwrap_or(0)) * 300));
    }
    let mut written: Vec<Track> = Vec::new();
    for mut t in good.into_iter().take(3) {
        if let Some(r) = t.records.last_mut() {
            r.data.iter_mut().for_each(|b| *b = b.wrapping_add(1));
        }
        let old = img.read_track(t.addr).unwrap();
        match img.write_track(&t) {
            Ok(()) => {
                assert_eq!(img.read_track(t.addr).unwrap(), t);
                written.push(t);
            }
            Err(e) => {
                named(&e, Some(t.addr));
                let now = img.read_track(t.addr).unwrap();
                assert!(now == old || now == t, "{}: torn after {e}", t.addr);
                if now == t {
                    written.push(t);
                }
            }
        }
    }
    fs.set_space_left(None);
    drop(img);
    let img = CkdImage::open_on(fs.clone(), img_path, false).expect("reopen");
    for t in &written {
        assert_eq!(&img.read_track(t.addr).unwrap(), t, "{} lost", t.addr);
    }
});
