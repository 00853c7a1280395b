// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Device group `eckd-3390`: an ECKD 3390 behind a 3990 control unit, with the channel
//! programs Linux's `dasd_eckd` and classic CKD programs use. The fixture's image has cylinder
//! 1, heads 0-2 formatted as `dasdfmt` leaves them (R1-R12 of 4096 bytes, no keys)
//! (hercules-guest.md: the lane's `dasdinit -linux` image). Cases that write restore nothing:
//! they write before they read.

use ccw_types::{CcwFlags, DeviceStatus, SubchannelId, SubchannelStatus};
use css_core::Backend;

use crate::fixture::DeviceKind;
use crate::prog::*;
use crate::{CaseResult, Ctx, Failure, Verdict, ensure};

const DEFINE_EXTENT: u8 = 0x63;
const LOCATE: u8 = 0x47;
const READ_DATA_MT: u8 = 0x86;
const WRITE_DATA_MT: u8 = 0x85;
const READ_COUNT: u8 = 0x12;
const READ_CKD: u8 = 0x1E;
const SEEK: u8 = 0x07;
const SEARCH_ID_EQ: u8 = 0x31;
/// Locate Record operations (byte 0 low six bits).
const OP_WRITE_DATA: u8 = 0x01;
const OP_READ_DATA: u8 = 0x06;
/// Define Extent file masks: inhibit all writes (reads) / permit update writes only.
const MASK_READ: u8 = 0x40;
const MASK_UPDATE: u8 = 0x80;
/// Record length of the formatted tracks.
const BLK: u16 = 4096;
/// The formatted cylinder.
const CYL: u16 = 1;

fn device<B: Backend>(c: &Ctx<B>) -> Result<(SubchannelId, u16), Verdict> {
    match c.fx.device(|k| matches!(k, DeviceKind::Eckd3390 { .. })) {
        Some(d) => match d.kind {
            DeviceKind::Eckd3390 { cylinders } => Ok((d.sch, cylinders)),
            _ => unreachable!("filtered on Eckd3390"),
        },
        None => Err(Verdict::Skip("no 3390 in this fixture".into())),
    }
}

macro_rules! dev {
    ($c:expr) => {
        match device($c) {
            Ok(d) => d,
            Err(v) => return Ok(v),
        }
    };
}

fn cchh(cyl: u16, head: u16) -> [u8; 4] {
    let [a, b] = cyl.to_be_bytes();
    let [h, l] = head.to_be_bytes();
    [a, b, h, l]
}

/// Define Extent parameters: file mask and the tracks `beg..=end` of cylinder [`CYL`].
///
/// Global attributes 0xC0 (extent architecture ECKD), as Linux's `dasd_eckd` sends them:
/// Hercules 3.13's 3990 rejects a Define Extent with attributes 0 with unit check at that CCW
/// (seen in the Hercules lane of `cargo xtask s390x`).
fn define_extent(mask: u8, beg: u16, end: u16) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = mask;
    p[1] = 0xC0;
    p[8..12].copy_from_slice(&cchh(CYL, beg));
    p[12..16].copy_from_slice(&cchh(CYL, end));
    p
}

/// Locate Record parameters: orientation to count, `op`, `count` records, seek to `head`,
/// search record `rec`, transfer length [`BLK`].
fn locate(op: u8, count: u8, head: u16, rec: u8) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = op;
    p[1] = 0x80; // transfer length factor valid, as `dasd_eckd` sets it
    p[3] = count;
    p[4..8].copy_from_slice(&cchh(CYL, head));
    p[8..12].copy_from_slice(&cchh(CYL, head));
    p[12] = rec;
    p[14..16].copy_from_slice(&BLK.to_be_bytes());
    p
}

/// A record's data: position-dependent with no period shorter than the record (the high
/// byte of the offset is mixed in), so a piece stored at a wrong offset cannot match.
fn pattern(seed: u8) -> Vec<u8> {
    (0..usize::from(BLK))
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

/// Parameter blocks live here; data at DATA + n * 0x1000.
const PARMS: u32 = 0x6000;

/// Writes the Define Extent (`mask`, tracks 0..=2) and Locate Record (`lr`) parameters and
/// the program Define Extent -> Locate Record -> `then` at [`PROG`], command-chained (the
/// domain every record program of this group works in).
fn located<B: Backend>(
    c: &Ctx<B>,
    mask: u8,
    lr: [u8; 16],
    then: &[[u8; 8]],
) -> Result<(), Failure> {
    let mut prog = located_prefix(c, mask, lr)?.to_vec();
    prog.extend_from_slice(then);
    c.program(PROG, &prog)
}

/// Writes the Define Extent (`mask`, tracks 0..=2) and Locate Record (`lr`) parameters at
/// [`PARMS`] and returns the two command-chained CCWs that use them: what every record
/// program of this group starts with.
fn located_prefix<B: Backend>(c: &Ctx<B>, mask: u8, lr: [u8; 16]) -> Result<[[u8; 8]; 2], Failure> {
    c.write(PARMS, &define_extent(mask, 0, 2))?;
    c.write(PARMS + 16, &lr)?;
    Ok([
        ccw(DEFINE_EXTENT, CcwFlags::CC, 16, PARMS),
        ccw(LOCATE, CcwFlags::CC, 16, PARMS + 16),
    ])
}

/// Head and record of the record the generic data-chaining cases read on a 3390 (nothing
/// else in this group touches it).
const CHAIN_AT: (u16, u8) = (2, 9);
/// Pattern seed of that record.
const CHAIN_SEED: u8 = 0xDC;

/// The 3390's transfer for the generic data-chaining cases: Hercules' CKD emulation
/// command-rejects data chaining on SENSE ID and Read Device Characteristics
/// (hercules-guest.md gotcha 9), so on a 3390 they split a 4096-byte Read Data of a known
/// record instead, after the Define Extent and Locate Record that select it. Writes the
/// record (pattern [`CHAIN_SEED`]), then the read's parameters; the record's bytes are the
/// reference every split must reproduce.
pub(crate) async fn chain_read<B: Backend>(
    c: &Ctx<B>,
    sch: SubchannelId,
) -> Result<(ChainRead, Vec<u8>), Failure> {
    let (head, rec) = CHAIN_AT;
    write_records(c, sch, head, rec, 1, CHAIN_SEED).await?;
    let prefix = located_prefix(c, MASK_READ, locate(OP_READ_DATA, 1, head, rec))?;
    Ok((
        ChainRead {
            prefix: prefix.to_vec(),
            code: READ_DATA_MT,
            len: BLK,
        },
        pattern(CHAIN_SEED),
    ))
}

/// Checks that sense byte `byte` has every bit of `bits` set (`what` names them).
fn sense_has(sense: &[u8], byte: usize, bits: u8, what: &str) -> Result<(), Failure> {
    ensure!(
        sense.get(byte).is_some_and(|b| b & bits == bits),
        "sense {:02x?} (want byte {byte} {what}, {bits:#04x})",
        &sense[..sense.len().min(8)]
    );
    Ok(())
}

/// Writes `n` records starting at R`rec` of head `head` (record k gets `pattern(seed + k)`).
async fn write_records<B: Backend>(
    c: &Ctx<B>,
    sch: SubchannelId,
    head: u16,
    rec: u8,
    n: u8,
    seed: u8,
) -> Result<(), Failure> {
    let mut writes = Vec::new();
    for k in 0..n {
        let at = DATA + u32::from(k) * 0x1000;
        c.write(at, &pattern(seed.wrapping_add(k)))?;
        let flags = if k + 1 < n { CcwFlags::CC } else { none() };
        writes.push(ccw(WRITE_DATA_MT, flags, BLK, at));
    }
    located(c, MASK_UPDATE, locate(OP_WRITE_DATA, n, head, rec), &writes)?;
    let done = c.run_on(sch, &orb(0xD5, PROG)).await?;
    ends_ok(&done, PROG + 8 * (2 + u32::from(n)), 0)
        .map_err(|f| Failure(format!("writing the records: {}", f.0)))
}

/// The sense bytes after a unit check: concurrent sense, else a SENSE command.
async fn sense_after<B: Backend>(
    c: &Ctx<B>,
    sub: &css_core::Subchannel<B>,
    done: &css_core::IoCompletion,
) -> Result<Vec<u8>, Failure> {
    if let Some(s) = done.irb.concurrent_sense_lenient() {
        if !s.is_empty() {
            return Ok(s.to_vec());
        }
    }
    c.poison(DATA3, 32)?;
    c.program(PROG2, &[ccw(cmd::SENSE, CcwFlags::SLI, 32, DATA3)])?;
    let d = c.submit(sub, &orb(0x5E, PROG2)).await?;
    ends_ok(&d, PROG2 + 8, d.irb.scsw.count.get())?;
    c.read(DATA3, 32)
}

/// Runs a program expected to end in unit check at `cpa`; returns the sense bytes.
async fn unit_check<B: Backend>(
    c: &Ctx<B>,
    sch: SubchannelId,
    cpa: u32,
) -> Result<Vec<u8>, Failure> {
    let sub = c.open_sch(sch).await?;
    let r = async {
        let done = c.submit(&sub, &orb(0xEC, PROG)).await?;
        let s = &done.irb.scsw;
        ensure!(
            s.device_status().contains(DeviceStatus::UNIT_CHECK),
            "device status {} (want UC): {s}",
            s.device_status()
        );
        ensure!(
            s.subchannel_status() == SubchannelStatus::from_bits(0),
            "subchannel status {}",
            s.subchannel_status()
        );
        ensure!(
            s.cpa.get() == cpa,
            "cpa {:#x} (want {cpa:#x}, the rejected CCW + 8)",
            s.cpa.get()
        );
        sense_after(c, &sub, &done).await
    }
    .await;
    sub.close().await?;
    r
}

/// SENSE ID of a 3390: `ff 3990 mm 3390 mm 00` and one CIW for Read Configuration Data
/// (`40 fa 01 00`), 12 bytes, residual 244 of 256 (§9.1, §9.2; hercules-guest.md gotcha 10).
pub(crate) async fn eckd_sense_id<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, _) = dev!(c);
    c.poison(DATA, 16)?;
    c.program(PROG, &[ccw(cmd::SENSE_ID, CcwFlags::SLI, 256, DATA)])?;
    ends_ok(&c.run_on(sch, &orb(1, PROG)).await?, PROG + 8, 244)?;
    let b = c.read(DATA, 13)?;
    ensure!(
        b[..3] == [0xFF, 0x39, 0x90],
        "control unit {:02x?} (want ff 3990)",
        &b[..3]
    );
    ensure!(
        b[4..6] == [0x33, 0x90],
        "device type {:02x?} (want 3390)",
        &b[4..6]
    );
    ensure!(
        b[8..12] == [0x40, 0xFA, 0x01, 0x00],
        "CIW {:02x?} (want RCD 40 fa 01 00)",
        &b[8..12]
    );
    ensure!(b[12] == POISON, "SENSE ID longer than 12 bytes");
    Ok(Verdict::Pass)
}

/// Read Device Characteristics: 64 bytes, storage director 3990, device 3390, 15 heads,
/// the image's cylinders (Linux `dasd_eckd_characteristics` layout).
pub(crate) async fn eckd_rdc<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, cyls) = dev!(c);
    c.poison(DATA, 65)?;
    c.program(PROG, &[ccw(cmd::RDC, CcwFlags::SLI, 64, DATA)])?;
    ends_ok(&c.run_on(sch, &orb(2, PROG)).await?, PROG + 8, 0)?;
    let d = c.read(DATA, 65)?;
    ensure!(d[..2] == [0x39, 0x90], "CU type {:02x?}", &d[..2]);
    ensure!(d[3..5] == [0x33, 0x90], "device type {:02x?}", &d[3..5]);
    ensure!(d[14..16] == [0, 15], "heads {:02x?} (want 15)", &d[14..16]);
    ensure!(
        d[12..14] == cyls.to_be_bytes(),
        "cylinders {:02x?} (want {cyls})",
        &d[12..14]
    );
    ensure!(d[64] == POISON, "RDC longer than 64 bytes");
    Ok(Verdict::Pass)
}

/// Define Extent + Locate Record + Write Data, then Define Extent + Locate Record + Read
/// Data of the same record: the data comes back byte for byte (hercules-guest.md: DX + LR +
/// Read Data through the io region).
pub(crate) async fn eckd_write_then_read<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, _) = dev!(c);
    write_records(c, sch, 1, 1, 1, 0x11).await?;
    read_back(c, sch, 1, 1, &[pattern(0x11)]).await
}

/// Reads `want.len()` records from R`rec` of `head` with one Locate Record and checks them.
async fn read_back<B: Backend>(
    c: &Ctx<B>,
    sch: SubchannelId,
    head: u16,
    rec: u8,
    want: &[Vec<u8>],
) -> CaseResult {
    let n = want.len() as u8;
    let mut reads = Vec::new();
    for k in 0..n {
        let at = DATA2 + u32::from(k) * 0x1000;
        c.poison(at, usize::from(BLK))?;
        let flags = if k + 1 < n { CcwFlags::CC } else { none() };
        reads.push(ccw(READ_DATA_MT, flags, BLK, at));
    }
    located(c, MASK_READ, locate(OP_READ_DATA, n, head, rec), &reads)?;
    let done = c.run_on(sch, &orb(3, PROG)).await?;
    ends_ok(&done, PROG + 8 * (2 + u32::from(n)), 0)?;
    for (k, w) in want.iter().enumerate() {
        let got = c.read(DATA2 + k as u32 * 0x1000, usize::from(BLK))?;
        ensure!(
            got == *w,
            "record {} differs from what was written",
            usize::from(rec) + k
        );
    }
    Ok(Verdict::Pass)
}

/// One Locate Record for three records, three command-chained Read Data (Linux's
/// multi-record read).
pub(crate) async fn eckd_multi_record_read<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, _) = dev!(c);
    write_records(c, sch, 1, 4, 3, 0x21).await?;
    read_back(c, sch, 1, 4, &[pattern(0x21), pattern(0x22), pattern(0x23)]).await
}

/// A Locate Record domain that runs off the end of a track continues on the next head:
/// R12 of head 1 then R1 of head 2 (multi-track operation, MT read data).
pub(crate) async fn eckd_multi_track_read<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, _) = dev!(c);
    write_records(c, sch, 1, 12, 1, 0x31).await?;
    write_records(c, sch, 2, 1, 1, 0x32).await?;
    read_back(c, sch, 1, 12, &[pattern(0x31), pattern(0x32)]).await
}

/// Read Data split by data chaining, 100 + 3996 bytes (hercules-guest.md: seen working
/// through vfio_ccw; §1.3 CD).
pub(crate) async fn eckd_read_data_chained<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, _) = dev!(c);
    write_records(c, sch, 0, 2, 1, 0x41).await?;
    let want = pattern(0x41);
    c.poison(DATA2, 128)?;
    c.poison(DATA3, usize::from(BLK))?;
    located(
        c,
        MASK_READ,
        locate(OP_READ_DATA, 1, 0, 2),
        &[
            ccw(READ_DATA_MT, CcwFlags::CD, 100, DATA2),
            ccw(READ_DATA_MT, none(), BLK - 100, DATA3),
        ],
    )?;
    ends_ok(&c.run_on(sch, &orb(4, PROG)).await?, PROG + 32, 0)?;
    ensure!(c.read(DATA2, 100)? == want[..100], "first piece");
    ensure!(
        c.read(DATA3, usize::from(BLK - 100))? == want[100..],
        "second piece"
    );
    Ok(Verdict::Pass)
}

/// Read Data through two format-2 IDAWs across a page boundary (hercules-guest.md: seen
/// working through vfio_ccw; §8.3).
pub(crate) async fn eckd_read_data_idal<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, _) = dev!(c);
    write_records(c, sch, 0, 3, 1, 0x51).await?;
    let want = pattern(0x51);
    let first = DATA2 + 0x1000 - 0x300;
    c.poison(first, 0x300)?;
    c.poison(DATA3, usize::from(BLK))?;
    let mut idal = u64::from(first).to_be_bytes().to_vec();
    idal.extend(u64::from(DATA3).to_be_bytes());
    c.write(IDAL, &idal)?;
    located(
        c,
        MASK_READ,
        locate(OP_READ_DATA, 1, 0, 3),
        &[ccw(READ_DATA_MT, CcwFlags::IDA, BLK, IDAL)],
    )?;
    ends_ok(
        &c.run_on(sch, &orb_idaw(5, PROG, true, false)).await?,
        PROG + 24,
        0,
    )?;
    ensure!(c.read(first, 0x300)? == want[..0x300], "first IDAW's block");
    ensure!(
        c.read(DATA3, usize::from(BLK) - 0x300)? == want[0x300..],
        "second IDAW's block"
    );
    Ok(Verdict::Pass)
}

/// Classic CKD: SEEK, SEARCH ID EQUAL with a TIC back to it, then READ DATA. The search
/// loops over the records until the ID matches; its status modifier skips the TIC
/// (§3.3 status modifier, §1.5 TIC).
pub(crate) async fn eckd_search_id_tic_loop<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, _) = dev!(c);
    write_records(c, sch, 2, 5, 1, 0x61).await?;
    let mut seek = [0u8; 6];
    seek[2..6].copy_from_slice(&cchh(CYL, 2));
    c.write(PARMS, &seek)?;
    let mut id = cchh(CYL, 2).to_vec();
    id.push(5);
    c.write(PARMS + 8, &id)?;
    c.poison(DATA2, usize::from(BLK))?;
    c.program(
        PROG,
        &[
            ccw(SEEK, CcwFlags::CC, 6, PARMS),
            ccw(SEARCH_ID_EQ, CcwFlags::CC, 5, PARMS + 8),
            ccw(cmd::TIC, none(), 0, PROG + 8),
            ccw(READ_DATA_MT, none(), BLK, DATA2),
        ],
    )?;
    ends_ok(&c.run_on(sch, &orb(6, PROG)).await?, PROG + 32, 0)?;
    ensure!(
        c.read(DATA2, usize::from(BLK))? == pattern(0x61),
        "record 5 after the search"
    );
    Ok(Verdict::Pass)
}

/// After a search for R2, READ COUNT transfers the next record's count: `CC HH 03 00 1000`
/// (CKD orientation: a search leaves the head after the count of the match).
pub(crate) async fn eckd_read_count<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, _) = dev!(c);
    search_then(c, sch, READ_COUNT, 8).await?;
    let got = c.read(DATA2, 9)?;
    let mut want = cchh(CYL, 0).to_vec();
    want.extend([3, 0]);
    want.extend(BLK.to_be_bytes());
    ensure!(
        got[..8] == want[..],
        "count {:02x?} (want {want:02x?})",
        &got[..8]
    );
    ensure!(got[8] == POISON, "READ COUNT longer than 8 bytes");
    Ok(Verdict::Pass)
}

/// After a search for R2, READ COUNT KEY AND DATA transfers R3 whole: its count, no key,
/// its 4096 data bytes.
pub(crate) async fn eckd_read_ckd<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, _) = dev!(c);
    write_records(c, sch, 0, 3, 1, 0x71).await?;
    search_then(c, sch, READ_CKD, 8 + BLK).await?;
    let got = c.read(DATA2, 8 + usize::from(BLK))?;
    ensure!(got[4] == 3 && got[5] == 0, "count of R3 {:02x?}", &got[..8]);
    ensure!(got[8..] == pattern(0x71)[..], "data of R3");
    Ok(Verdict::Pass)
}

async fn search_then<B: Backend>(
    c: &Ctx<B>,
    sch: SubchannelId,
    code: u8,
    len: u16,
) -> Result<(), Failure> {
    let mut seek = [0u8; 6];
    seek[2..6].copy_from_slice(&cchh(CYL, 0));
    c.write(PARMS, &seek)?;
    let mut id = cchh(CYL, 0).to_vec();
    id.push(2);
    c.write(PARMS + 8, &id)?;
    c.poison(DATA2, usize::from(len) + 1)?;
    c.program(
        PROG,
        &[
            ccw(SEEK, CcwFlags::CC, 6, PARMS),
            ccw(SEARCH_ID_EQ, CcwFlags::CC, 5, PARMS + 8),
            ccw(cmd::TIC, none(), 0, PROG + 8),
            ccw(code, none(), len, DATA2),
        ],
    )?;
    ends_ok(&c.run_on(sch, &orb(7, PROG)).await?, PROG + 32, 0)
}

/// A Locate Record outside the Define Extent's tracks ends in unit check at the Locate
/// Record with sense byte 1 "file protected" (0x04) (3990 sense format; Linux
/// `dasd_eckd` error recovery reads byte 1).
pub(crate) async fn eckd_out_of_extent<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, _) = dev!(c);
    c.poison(DATA2, 16)?;
    located(
        c,
        MASK_READ,
        locate(OP_READ_DATA, 1, 5, 1),
        &[ccw(READ_DATA_MT, none(), BLK, DATA2)],
    )?;
    let sense = unit_check(c, sch, PROG + 16).await?;
    sense_has(&sense, 1, 0x04, "file protected")?;
    ensure!(
        c.read(DATA2, 16)? == [POISON; 16],
        "data transferred outside the extent"
    );
    c.still_works().await?;
    Ok(Verdict::Pass)
}

/// A write under a Define Extent mask that inhibits writes is a command reject, file
/// protected (sense byte 0 0x80, byte 1 0x04); nothing is written.
pub(crate) async fn eckd_write_inhibited<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, _) = dev!(c);
    write_records(c, sch, 0, 6, 1, 0x81).await?;
    c.write(DATA, &pattern(0x99))?;
    located(
        c,
        MASK_READ,
        locate(OP_WRITE_DATA, 1, 0, 6),
        &[ccw(WRITE_DATA_MT, none(), BLK, DATA)],
    )?;
    let sense = unit_check(c, sch, PROG + 16).await?;
    sense_has(&sense, 0, 0x80, "command reject")?;
    sense_has(&sense, 1, 0x04, "file protected")?;
    read_back(c, sch, 0, 6, &[pattern(0x81)]).await
}

/// A Locate Record searching a record the track does not hold ends in unit check with sense
/// byte 1 "no record found" (0x08).
pub(crate) async fn eckd_no_record_found<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, _) = dev!(c);
    located(
        c,
        MASK_READ,
        locate(OP_READ_DATA, 1, 0, 99),
        &[ccw(READ_DATA_MT, none(), BLK, DATA2)],
    )?;
    let sense = unit_check(c, sch, PROG + 16).await?;
    sense_has(&sense, 1, 0x08, "no record found")?;
    Ok(Verdict::Pass)
}

/// A second Define Extent in one program is a command reject (invalid sequence).
pub(crate) async fn eckd_define_extent_twice<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (sch, _) = dev!(c);
    c.write(PARMS, &define_extent(MASK_READ, 0, 2))?;
    c.program(
        PROG,
        &[
            ccw(DEFINE_EXTENT, CcwFlags::CC, 16, PARMS),
            ccw(DEFINE_EXTENT, none(), 16, PARMS),
        ],
    )?;
    let sense = unit_check(c, sch, PROG + 16).await?;
    sense_has(&sense, 0, 0x80, "command reject")?;
    Ok(Verdict::Pass)
}
