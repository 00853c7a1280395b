// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The device alone: commands executed without a channel.

use super::*;
use crate::dasd::image::tests::Scratch;
use crate::dasd::{CreateOptions, Model3390};

const DONE: DeviceStatus = OK;
const SM: DeviceStatus = OK.union(DeviceStatus::STATUS_MODIFIER);

fn device(dir: &Scratch, cyls: u32) -> Eckd {
    let opts = CreateOptions {
        cylinders: Some(cyls),
        volser: Some("TEST01".into()),
    };
    let img = CkdImage::create(&dir.file("d.3390"), Model3390::M1, &opts).unwrap();
    Eckd::new(img, 0x0A01)
}

/// Executes one command with `buf` as its data; returns the status.
fn ex(dev: &mut Eckd, code: u8, buf: &mut [u8]) -> DeviceStatus {
    dev.execute(code, &mut SliceData::new(buf)).status
}

// The parameter blocks as the device reads them (the driver's builders are ccw-dasd's;
// the device's tests encode their own so that they test the layout, not agree with it).
fn de(mask: u8, beg: TrackAddr, end: TrackAddr) -> Vec<u8> {
    let mut p = vec![0u8; 16];
    p[0] = mask;
    p[1] = 0xC0; // ECKD mode
    p[8..12].copy_from_slice(&beg.to_cchh());
    p[12..16].copy_from_slice(&end.to_cchh());
    p
}

fn lr(orient: u8, op: u8, count: u8, seek: TrackAddr, rec: u8, len: u16) -> Vec<u8> {
    let mut p = vec![0u8; 16];
    p[0] = (orient << 6) | op;
    if len != 0 {
        p[1] = 0x80; // length valid
    }
    p[3] = count;
    p[4..8].copy_from_slice(&seek.to_cchh());
    p[8..12].copy_from_slice(&seek.to_cchh());
    p[12] = rec;
    p[14..16].copy_from_slice(&len.to_be_bytes());
    p
}

fn count(t: TrackAddr, r: u8, kl: u8, dl: u16) -> Vec<u8> {
    let c = t.to_cchh();
    let mut b = c.to_vec();
    b.extend_from_slice(&[r, kl]);
    b.extend_from_slice(&dl.to_be_bytes());
    b
}

/// A new chain with Define Extent (`mask`, `beg..=end`), then Locate Record `lr`.
fn domain(
    dev: &mut Eckd,
    mask: u8,
    beg: TrackAddr,
    end: TrackAddr,
    mut lr: Vec<u8>,
) -> DeviceStatus {
    dev.start_chain();
    assert_eq!(ex(dev, cmd::DEFINE_EXTENT, &mut de(mask, beg, end)), DONE);
    ex(dev, cmd::LOCATE, &mut lr)
}

/// A new chain with a read-only extent of track `t` and Locate Record `lr`, both accepted.
fn read_domain(dev: &mut Eckd, t: TrackAddr, lr: Vec<u8>) {
    assert_eq!(domain(dev, 0x40, t, t, lr), DONE);
}

/// Formats `t` with R0 and `n` records of `dl` bytes filled with `r` (Linux's format
/// program: DE allow-all, LR orient-HA format-write, Write R0, Write CKD...).
fn format_track(dev: &mut Eckd, t: TrackAddr, n: u8, dl: u16) {
    dev.start_chain();
    assert_eq!(ex(dev, cmd::DEFINE_EXTENT, &mut de(0xC0, t, t)), DONE);
    assert_eq!(
        ex(
            dev,
            cmd::LOCATE,
            &mut lr(1, op::FORMAT_WRITE, n + 1, t, 0, 8)
        ),
        DONE
    );
    let mut r0 = count(t, 0, 0, 8);
    r0.extend([0; 8]);
    assert_eq!(ex(dev, cmd::WRITE_R0, &mut r0), DONE);
    for r in 1..=n {
        let mut rec = count(t, r, 0, dl);
        rec.extend(std::iter::repeat_n(r, dl as usize));
        assert_eq!(ex(dev, cmd::WRITE_CKD, &mut rec), DONE, "record {r}");
    }
}

#[test]
fn format_write_and_read_back_across_tracks() {
    let dir = Scratch::new("fmt");
    let mut dev = device(&dir, 1);
    let (t1, t2) = (TrackAddr::new(0, 5), TrackAddr::new(0, 6));
    format_track(&mut dev, t1, 12, 4096);
    format_track(&mut dev, t2, 12, 4096);
    // Update R12 of t1 and R1 of t2 in one domain (write, multitrack).
    assert_eq!(
        domain(
            &mut dev,
            0x80,
            t1,
            t2,
            lr(0, op::WRITE_DATA, 2, t1, 12, 4096)
        ),
        DONE
    );
    assert_eq!(ex(&mut dev, 0x85, &mut vec![0xA1; 4096]), DONE);
    assert_eq!(ex(&mut dev, 0x85, &mut vec![0xA2; 4096]), DONE);
    // A third write exceeds the domain.
    let st = ex(&mut dev, 0x85, &mut vec![0; 4096]);
    assert!(st.contains(DeviceStatus::UNIT_CHECK));
    assert_eq!(dev.sense_bytes()[0], sense::CMD_REJECT);
    // Read R11..t2 R2 back (Linux: DE read-only, LR read data, Read MT...).
    assert_eq!(
        domain(
            &mut dev,
            0x40,
            t1,
            t2,
            lr(0, op::READ_DATA, 4, t1, 11, 4096)
        ),
        DONE
    );
    let mut got = Vec::new();
    for _ in 0..4 {
        let mut b = vec![0u8; 4096];
        assert_eq!(ex(&mut dev, 0x86, &mut b), DONE);
        got.push(b[0]);
    }
    assert_eq!(got, [11, 0xA1, 0xA2, 2]);
    // Durable: a fresh device on the reopened image sees the update.
    let img = CkdImage::open(&dir.file("d.3390"), true).unwrap();
    let t = img.read_track(t2).unwrap();
    assert_eq!(t.records[1].data, vec![0xA2; 4096]);
    assert_eq!(t.records.len(), 13);
}

#[test]
fn read_count_after_r0_search_reads_r1_onwards() {
    // dasd_eckd's volume analysis: LR read-data search R0, then Read Count x4.
    let dir = Scratch::new("rc");
    let mut dev = device(&dir, 1);
    let t0 = TrackAddr::new(0, 0);
    read_domain(&mut dev, t0, lr(0, op::READ_DATA, 3, t0, 0, 0));
    let mut seen = Vec::new();
    for _ in 0..3 {
        let mut c = [0u8; 8];
        assert_eq!(ex(&mut dev, cmd::READ_COUNT, &mut c), DONE);
        seen.push((c[4], c[5], u16::from_be_bytes([c[6], c[7]])));
    }
    // IPL1 (key 4, 24), IPL2 (key 4, 144), VOL1 (key 4, 80).
    assert_eq!(seen, [(1, 4, 24), (2, 4, 144), (3, 4, 80)]);
}

#[test]
fn read_count_into_a_track_with_only_r0_is_no_record_found() {
    // A read domain that runs off a track onto one holding only R0: Read Count has no
    // record to pass there (it used to index R1 and panic).
    let dir = Scratch::new("rc-empty");
    let mut dev = device(&dir, 1);
    let (a, b) = (TrackAddr::new(0, 1), TrackAddr::new(0, 2));
    assert_eq!(dev.image.read_track(b).unwrap().records.len(), 1);
    assert_eq!(
        domain(&mut dev, 0x40, a, b, lr(3, op::READ_ANY, 8, a, 0, 0)),
        DONE
    );
    let mut st = DONE;
    for _ in 0..4 {
        st = ex(&mut dev, cmd::READ_COUNT, &mut [0u8; 8]);
        if st != DONE {
            break;
        }
    }
    assert!(st.contains(DeviceStatus::UNIT_CHECK), "{st:?}");
    assert_eq!(dev.sense_bytes()[1], sense::NO_RECORD_FOUND);
}

#[test]
fn read_key_and_data_of_vol1() {
    let dir = Scratch::new("vol1");
    let mut dev = device(&dir, 1);
    let t0 = TrackAddr::new(0, 0);
    read_domain(&mut dev, t0, lr(0, op::READ_DATA, 1, t0, 3, 84));
    let mut kd = vec![0u8; 84];
    assert_eq!(ex(&mut dev, 0x8E, &mut kd), DONE);
    assert_eq!(crate::dasd::parse_vol1(&kd[4..]).as_deref(), Some("TEST01"));
    assert_eq!(&kd[..4], &[0xE5, 0xD6, 0xD3, 0xF1]);
}

#[test]
fn home_address_and_record_zero() {
    let dir = Scratch::new("ha");
    let mut dev = device(&dir, 1);
    let t = TrackAddr::new(0, 9);
    read_domain(&mut dev, t, lr(3, op::READ_ANY, 1, t, 0, 0));
    let mut ha = [0u8; 5];
    assert_eq!(ex(&mut dev, cmd::READ_HA_DIAG, &mut ha), DONE);
    assert_eq!(ha, [0, 0, 0, 0, 9]);
    let mut r0 = [0u8; 16];
    assert_eq!(ex(&mut dev, cmd::READ_R0, &mut r0), DONE);
    assert_eq!(&r0[..8], &[0, 0, 0, 9, 0, 0, 0, 8]);
}

#[test]
fn search_id_equal_loop_finds_record() {
    // Seek, Search ID Equal (TIC back while not found), Read Data: the channel re-drives
    // the search until status modifier; here the loop is the test's.
    let dir = Scratch::new("search");
    let mut dev = device(&dir, 1);
    let t = TrackAddr::new(0, 2);
    format_track(&mut dev, t, 5, 100);
    dev.start_chain();
    let mut seek = vec![0, 0, 0, 0, 0, 2];
    assert_eq!(ex(&mut dev, cmd::SEEK, &mut seek), DONE);
    let mut id = [0, 0, 0, 2, 4];
    let mut tries = 0;
    loop {
        tries += 1;
        let st = ex(&mut dev, cmd::SEARCH_ID_EQ, &mut id);
        if st == SM {
            break;
        }
        assert_eq!(st, DONE);
        assert!(tries < 10);
    }
    assert_eq!(tries, 5, "R0..R4 passed");
    let mut d = vec![0u8; 100];
    assert_eq!(ex(&mut dev, cmd::READ_DATA, &mut d), DONE);
    assert_eq!(d, vec![4; 100]);
    // A record that does not exist: two index passes, then no record found.
    let mut missing = [0, 0, 0, 2, 9];
    let mut st = DONE;
    for _ in 0..20 {
        st = ex(&mut dev, cmd::SEARCH_ID_EQ, &mut missing);
        if st != DONE {
            break;
        }
    }
    assert!(st.contains(DeviceStatus::UNIT_CHECK));
    assert_eq!(dev.sense_bytes()[1], sense::NO_RECORD_FOUND);
}

#[test]
fn sense_for_extent_violation_missing_record_and_write_inhibit() {
    let dir = Scratch::new("sense");
    let mut dev = device(&dir, 2);
    let (a, b) = (TrackAddr::new(0, 1), TrackAddr::new(0, 3));
    // Outside the extent: file protected.
    let st = domain(
        &mut dev,
        0x40,
        a,
        b,
        lr(0, op::READ_DATA, 1, TrackAddr::new(1, 0), 1, 0),
    );
    assert!(st.contains(DeviceStatus::UNIT_CHECK));
    let s = DeviceModel::sense(&mut dev);
    assert_eq!((s.bytes[0], s.bytes[1]), (0, sense::FILE_PROTECTED));
    assert_eq!(
        DeviceModel::sense(&mut dev).bytes,
        [0; 32],
        "sense is consumed"
    );
    // No such record: no record found.
    let st = domain(&mut dev, 0x40, a, b, lr(0, op::READ_DATA, 1, a, 7, 0));
    assert!(st.contains(DeviceStatus::UNIT_CHECK));
    assert_eq!(dev.sense_bytes()[1], sense::NO_RECORD_FOUND);
    assert_eq!(&dev.sense_bytes()[8..12], &a.to_cchh());
    // File mask "inhibit all writes": a write domain is rejected.
    let st = domain(&mut dev, 0x40, a, b, lr(0, op::WRITE_DATA, 1, a, 0, 8));
    assert_eq!(st, DeviceStatus::UNIT_CHECK);
    assert_eq!(dev.sense_bytes()[0], sense::CMD_REJECT);
    assert_eq!(dev.sense_bytes()[1], sense::FILE_PROTECTED);
    // A read-only volume: write inhibited.
    drop(dev);
    let img = CkdImage::open(&dir.file("d.3390"), true).unwrap();
    let mut dev = Eckd::new(img, 1);
    let st = domain(&mut dev, 0x80, a, b, lr(0, op::WRITE_DATA, 1, a, 0, 8));
    assert_eq!(st, DeviceStatus::UNIT_CHECK);
    assert_eq!(dev.sense_bytes()[0], sense::CMD_REJECT);
    assert_eq!(dev.sense_bytes()[1], sense::WRITE_INHIBITED);
}

#[test]
fn sequence_rules() {
    let dir = Scratch::new("seq");
    let mut dev = device(&dir, 1);
    let t = TrackAddr::new(0, 1);
    // Locate without Define Extent.
    dev.start_chain();
    let st = ex(&mut dev, cmd::LOCATE, &mut lr(0, op::READ_DATA, 1, t, 0, 0));
    assert_eq!(st, DeviceStatus::UNIT_CHECK);
    assert_eq!(dev.sense_bytes()[7], sense::MSG_INVALID_SEQUENCE);
    // Two Define Extents.
    dev.start_chain();
    assert_eq!(ex(&mut dev, cmd::DEFINE_EXTENT, &mut de(0x40, t, t)), DONE);
    assert_eq!(
        ex(&mut dev, cmd::DEFINE_EXTENT, &mut de(0x40, t, t)),
        DeviceStatus::UNIT_CHECK
    );
    // Inverted extent, short parameters, unknown command.
    dev.start_chain();
    let st = ex(
        &mut dev,
        cmd::DEFINE_EXTENT,
        &mut de(0x40, t, TrackAddr::new(0, 0)),
    );
    assert_eq!(st, DeviceStatus::UNIT_CHECK);
    dev.start_chain();
    assert_eq!(
        ex(&mut dev, cmd::DEFINE_EXTENT, &mut [0u8; 8]),
        DeviceStatus::UNIT_CHECK
    );
    assert_eq!(dev.sense_bytes()[7], sense::MSG_COUNT_TOO_SMALL);
    assert_eq!(ex(&mut dev, 0xC3, &mut []), DeviceStatus::UNIT_CHECK);
    assert_eq!(dev.sense_bytes()[7], sense::MSG_INVALID_COMMAND);
    // Reserve/Release: accepted, 32 bytes.
    let mut b = [0xEEu8; 32];
    assert_eq!(ex(&mut dev, cmd::RESERVE, &mut b), DONE);
    assert_eq!(ex(&mut dev, cmd::RELEASE, &mut b), DONE);
    // A track that is full refuses another record.
    format_track(&mut dev, t, 1, 56000);
    assert_eq!(
        domain(&mut dev, 0x00, t, t, lr(0, op::FORMAT_WRITE, 1, t, 1, 1000)),
        DONE
    );
    let mut rec = count(t, 2, 0, 1000);
    rec.extend([0; 1000]);
    assert_eq!(
        ex(&mut dev, cmd::WRITE_CKD, &mut rec),
        DeviceStatus::UNIT_CHECK
    );
    assert_eq!(dev.sense_bytes()[7], sense::MSG_TRACK_FULL);
}

/// Runs `code` as the channel would, with `flags` on its CCW.
fn ex_chained(
    dev: &mut Eckd,
    code: u8,
    flags: CcwFlags,
    buf: &mut [u8],
    first: bool,
) -> DeviceStatus {
    let cmd = Command {
        code,
        class: ccw_types::CommandClass::of(code, ccw_types::CcwFormat::Format1),
        flags,
        count: buf.len() as u16,
        format: ccw_types::CcwFormat::Format1,
        ccw_addr: 0,
    };
    let mut ctx = ChainContext::new();
    ctx.index = usize::from(!first);
    DeviceModel::execute(dev, &cmd, &mut SliceData::new(buf), &mut ctx).status
}

#[test]
fn chained_writes_reach_the_image_before_the_program_ends() {
    let dir = Scratch::new("defer");
    let mut dev = device(&dir, 1);
    let path = dir.file("d.3390");
    let t = TrackAddr::new(0, 7);
    let on_disk = |n: usize| {
        let img = CkdImage::open(&path, true).unwrap();
        assert_eq!(img.read_track(t).unwrap().records.len(), n);
    };
    let cc = CcwFlags::CC;
    DeviceModel::begin_chain(&mut dev);
    assert_eq!(
        ex_chained(&mut dev, cmd::DEFINE_EXTENT, cc, &mut de(0xC0, t, t), true),
        DONE
    );
    let mut p = lr(0, op::FORMAT_WRITE, 3, t, 0, 100);
    assert_eq!(ex_chained(&mut dev, cmd::LOCATE, cc, &mut p, false), DONE);
    for r in 1..=2u8 {
        let mut rec = count(t, r, 0, 100);
        rec.extend([r; 100]);
        assert_eq!(
            ex_chained(&mut dev, cmd::WRITE_CKD, cc, &mut rec, false),
            DONE
        );
    }
    // Chained: one journalled write per track, not yet done.
    on_disk(1);
    // The last command (no command chaining) writes the track before its status.
    let mut rec = count(t, 3, 0, 100);
    rec.extend([3; 100]);
    assert_eq!(
        ex_chained(&mut dev, cmd::WRITE_CKD, CcwFlags::NONE, &mut rec, false),
        DONE
    );
    on_disk(4);
    // A chained write whose count is not used up (incorrect length ends the chain) is
    // written at once.
    DeviceModel::begin_chain(&mut dev);
    assert_eq!(
        ex_chained(&mut dev, cmd::DEFINE_EXTENT, cc, &mut de(0xC0, t, t), true),
        DONE
    );
    let mut p = lr(0, op::FORMAT_WRITE, 1, t, 3, 100);
    assert_eq!(ex_chained(&mut dev, cmd::LOCATE, cc, &mut p, false), DONE);
    let mut rec = count(t, 4, 0, 100);
    rec.extend([4; 120]);
    assert_eq!(
        ex_chained(&mut dev, cmd::WRITE_CKD, cc, &mut rec, false),
        DONE
    );
    on_disk(5);
}

#[test]
fn identification() {
    let dir = Scratch::new("id");
    let mut dev = device(&dir, 3);
    let id = DeviceModel::sense_id(&dev).unwrap();
    assert_eq!(
        id.as_bytes(),
        &[
            0xFF, 0x39, 0x90, 0xE9, 0x33, 0x90, 0x02, 0x00, 0x40, 0xFA, 0x01, 0x00
        ]
    );
    let mut rcd = vec![0u8; 256];
    assert_eq!(ex(&mut dev, CMD_RCD, &mut rcd), DONE);
    assert_eq!(rcd[235], 0x01);
    let mut rdc = [0u8; 64];
    assert_eq!(ex(&mut dev, cmd::RDC, &mut rdc), DONE);
    assert_eq!(u16::from_be_bytes([rdc[12], rdc[13]]), 3);
    assert_eq!(DeviceModel::name(&dev), "eckd-3390");
}

// ---- bring-up commands: path groups, subsystem functions, Read IPL ---------------------

const UC: DeviceStatus = DeviceStatus::UNIT_CHECK;

/// Asserts a command reject with format-0 message `msg` (sense bytes 0 and 7).
fn assert_reject(dev: &Eckd, msg: u8) {
    let s = dev.sense_bytes();
    assert_eq!(
        (s[0], s[1], s[7]),
        (sense::CMD_REJECT, 0, msg),
        "sense {s:02x?}"
    );
}

fn spid(f: u8, id: [u8; 11]) -> Vec<u8> {
    let mut b = vec![f];
    b.extend_from_slice(&id);
    b
}

const PGID: [u8; 11] = [
    0x00, 0x01, 0x23, 0x45, 0x67, 0x20, 0x64, 0xDE, 0xAD, 0xBE, 0xEF,
];

/// Runs `code` as the first command of a new chain.
fn first(dev: &mut Eckd, code: u8, buf: &mut [u8]) -> DeviceStatus {
    dev.start_chain();
    ex(dev, code, buf)
}

#[test]
fn path_group_establish_sense_and_disband() {
    let dir = Scratch::new("pgid");
    let mut dev = device(&dir, 1);
    let mut snid = [0xAAu8; 12];
    assert_eq!(first(&mut dev, 0x34, &mut snid), DONE);
    assert_eq!(snid, [0; 12], "a fresh device: reset state, no ID");

    // Multipath establish, as Linux's path verification does it.
    assert_eq!(first(&mut dev, 0xAF, &mut spid(0x80, PGID)), DONE);
    assert_eq!(first(&mut dev, 0x34, &mut snid), DONE);
    assert_eq!(snid[0], 0xC8, "grouped + multipath");
    assert_eq!(snid[1..], PGID);
    // The same ID again is accepted; the group survives a selective reset.
    assert_eq!(first(&mut dev, 0xAF, &mut spid(0x80, PGID)), DONE);
    dev.reset();
    assert_eq!(dev.path_group()[0], 0xC8);

    // Resign and disband both leave the group; single-path establish reports 0xC0.
    assert_eq!(first(&mut dev, 0xAF, &mut spid(pg::RESIGN, PGID)), DONE);
    assert_eq!(dev.path_group(), [0; 12]);
    assert_eq!(first(&mut dev, 0xAF, &mut spid(0x00, PGID)), DONE);
    assert_eq!(dev.path_group()[0], pg::GROUPED);
    assert_eq!(first(&mut dev, 0xAF, &mut spid(pg::DISBAND, PGID)), DONE);
    assert_eq!(dev.path_group(), [pg::RESET; 12]);
}

#[test]
fn set_path_group_id_rejects_bad_parameters() {
    let dir = Scratch::new("pgid-bad");
    let mut dev = device(&dir, 1);
    let mut other = PGID;
    other[10] ^= 1;
    for (what, mut p) in [
        ("reserved function 11", spid(0x60, PGID)),
        ("reserved bits 3-7", spid(0x01, PGID)),
        ("zero ID", spid(0x80, [0; 11])),
    ] {
        assert_eq!(first(&mut dev, 0xAF, &mut p), UC, "{what}");
        assert_reject(&dev, sense::MSG_INVALID_PARAMETER);
    }
    assert_eq!(
        first(&mut dev, 0xAF, &mut spid(0x80, PGID)[..11].to_vec()),
        UC
    );
    assert_reject(&dev, sense::MSG_COUNT_TOO_SMALL);
    // A grouped device keeps its ID: another one is rejected and changes nothing.
    assert_eq!(first(&mut dev, 0xAF, &mut spid(0x80, PGID)), DONE);
    assert_eq!(first(&mut dev, 0xAF, &mut spid(0x80, other)), UC);
    assert_reject(&dev, sense::MSG_INVALID_PARAMETER);
    assert_eq!(dev.path_group()[1..], PGID);
}

#[test]
fn path_group_commands_must_start_the_chain() {
    let dir = Scratch::new("pgid-seq");
    let mut dev = device(&dir, 1);
    for code in [0x34u8, 0xAF] {
        dev.start_chain();
        assert_eq!(ex(&mut dev, 0x03, &mut []), DONE);
        let mut b = spid(0x80, PGID);
        assert_eq!(ex(&mut dev, code, &mut b), UC, "{code:#x}");
        assert_reject(&dev, sense::MSG_INVALID_SEQUENCE);
    }
    assert_eq!(dev.path_group(), [0; 12]);
}

fn prssd(suborder: u8) -> Vec<u8> {
    let mut p = vec![0u8; 12];
    p[0] = 0x18;
    p[6] = suborder;
    p
}

#[test]
fn subsystem_data_linux_reads_at_bring_up() {
    let dir = Scratch::new("psf");
    let mut dev = device(&dir, 1);
    // Feature codes: PSF (prepare, suborder 0x41) then RSSD of 256 bytes.
    assert_eq!(first(&mut dev, 0x27, &mut prssd(0x41)), DONE);
    let mut feat = [0xAAu8; 256];
    assert_eq!(ex(&mut dev, 0x3E, &mut feat), DONE);
    assert_eq!(feat, [0; 256]);
    // The prepared data is read once.
    assert_eq!(ex(&mut dev, 0x3E, &mut feat), UC);
    assert_reject(&dev, sense::MSG_INVALID_SEQUENCE);

    // Unit address configuration: devno 0x0A01 is unit address 0x01, a base device.
    assert_eq!(first(&mut dev, 0x27, &mut prssd(0x0E)), DONE);
    let mut uac = [0xAAu8; 512];
    assert_eq!(ex(&mut dev, 0x3E, &mut uac), DONE);
    let mut want = [0u8; 512];
    want[2..4].copy_from_slice(&[0x01, 0x01]);
    assert_eq!(uac, want);

    // Set Subsystem Characteristics (validate server): 66 bytes, nothing to read after.
    let mut ssc = vec![0u8; 66];
    ssc[0] = 0x1D;
    ssc[6] = 0xC0;
    assert_eq!(first(&mut dev, 0x27, &mut ssc), DONE);
    assert_eq!(ex(&mut dev, 0x3E, &mut feat), UC);
    assert_reject(&dev, sense::MSG_INVALID_SEQUENCE);
}

#[test]
fn perform_subsystem_function_rejects_bad_parameters() {
    let dir = Scratch::new("psf-bad");
    let mut dev = device(&dir, 1);
    let mut flags = prssd(0x41);
    flags[1] = 0x80;
    let mut reserved = prssd(0x41);
    reserved[3] = 1;
    let mut varies = prssd(0x0E);
    varies[8] = 1;
    let mut order = prssd(0x41);
    order[0] = 0x99;
    for (what, mut p) in [
        ("flags", flags),
        ("reserved bytes 2-5", reserved),
        ("bytes 7-11", varies),
        ("volume storage query (not for thick volumes)", prssd(0x52)),
        ("unknown order", order),
    ] {
        assert_eq!(first(&mut dev, 0x27, &mut p), UC, "{what}");
        assert_reject(&dev, sense::MSG_INVALID_PARAMETER);
    }
    assert_eq!(first(&mut dev, 0x27, &mut prssd(0x41)[..8].to_vec()), UC);
    assert_reject(&dev, sense::MSG_COUNT_TOO_SMALL);
    assert_eq!(first(&mut dev, 0x27, &mut []), UC);
    assert_reject(&dev, sense::MSG_COUNT_TOO_SMALL);
    assert_eq!(first(&mut dev, 0x27, &mut [0x1D; 65]), UC);
    assert_reject(&dev, sense::MSG_COUNT_TOO_SMALL);
    // Read Subsystem Data without a prepared PSF in the chain.
    assert_eq!(first(&mut dev, 0x3E, &mut [0u8; 256]), UC);
    assert_reject(&dev, sense::MSG_INVALID_SEQUENCE);
}

#[test]
fn read_ipl_reads_ipl1_then_read_data_ipl2() {
    let dir = Scratch::new("ripl");
    let mut dev = device(&dir, 1);
    let labels = crate::dasd::volume_labels("TEST01");
    let mut ipl1 = [0u8; 24];
    assert_eq!(first(&mut dev, 0x02, &mut ipl1), DONE);
    assert_eq!(ipl1[..], labels[0].1[..]);
    let mut ipl2 = vec![0xAAu8; 144];
    assert_eq!(ex(&mut dev, 0x06, &mut ipl2), DONE);
    assert_eq!(ipl2, labels[1].1);
    // Neither Define Extent nor Set File Mask may follow it.
    let t0 = TrackAddr::new(0, 0);
    assert_eq!(ex(&mut dev, cmd::DEFINE_EXTENT, &mut de(0x40, t0, t0)), UC);
    assert_reject(&dev, sense::MSG_INVALID_SEQUENCE);
    // Nor may it follow Define Extent.
    dev.start_chain();
    assert_eq!(
        ex(&mut dev, cmd::DEFINE_EXTENT, &mut de(0x40, t0, t0)),
        DONE
    );
    assert_eq!(ex(&mut dev, 0x02, &mut ipl1), UC);
    assert_reject(&dev, sense::MSG_INVALID_SEQUENCE);
}
