// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Device group `test-device`: mock-backend's record device, for what virtio-blk cannot
//! show: write data chaining, READ BACKWARD, SEARCH and the status modifier, unit check
//! and unit exception from the device.

use ccw_types::{CcwFlags, DeviceStatus, SubchannelId, SubchannelStatus};
use css_core::Backend;

use crate::fixture::DeviceKind;
use crate::prog::*;
use crate::{CaseResult, Ctx, Failure, Verdict, ensure};

const SEARCH_EQUAL: u8 = 0x31;
const FORCE_UC: u8 = 0x27;
const FORCE_UX: u8 = 0x37;

fn device<B: Backend>(c: &Ctx<B>) -> Result<SubchannelId, Verdict> {
    c.fx.device(|k| matches!(k, DeviceKind::TestDevice))
        .map(|d| d.sch)
        .ok_or_else(|| Verdict::Skip("no test device in this fixture".into()))
}

macro_rules! dev {
    ($c:expr) => {
        match device($c) {
            Ok(d) => d,
            Err(v) => return Ok(v),
        }
    };
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

/// Stores `rec` as the device's record with one WRITE.
async fn set_record<B: Backend>(c: &Ctx<B>, sch: SubchannelId, rec: &[u8]) -> Result<(), Failure> {
    c.write(DATA3, rec)?;
    c.program(PROG2, &[ccw(cmd::WRITE, none(), rec.len() as u16, DATA3)])?;
    ends_ok(&c.run_on(sch, &orb(0x5E7, PROG2)).await?, PROG2 + 8, 0)
}

/// Reads the record back (count `n`, SLI).
async fn get_record<B: Backend>(c: &Ctx<B>, sch: SubchannelId, n: u16) -> Result<Vec<u8>, Failure> {
    c.poison(REF, usize::from(n))?;
    c.program(PROG2, &[ccw(cmd::READ, CcwFlags::SLI, n, REF)])?;
    let done = c.run_on(sch, &orb(0x6E7, PROG2)).await?;
    let resid = done.irb.scsw.count.get();
    ends_ok(&done, PROG2 + 8, resid)?;
    c.read(REF, usize::from(n - resid))
}

/// WRITE then READ: the record comes back byte for byte, residual 0 both ways (§1.4 write
/// and read classes).
pub(crate) async fn td_write_read<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let sch = dev!(c);
    let rec = pattern(300, 1);
    set_record(c, sch, &rec).await?;
    ensure!(
        get_record(c, sch, 300).await? == rec,
        "record read back differs"
    );
    Ok(Verdict::Pass)
}

/// A WRITE data-chained over three CCWs with odd counts (3 + 7 + rest) from three areas:
/// the device receives one contiguous record (§1.3 CD, write direction).
pub(crate) async fn td_write_data_chain<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let sch = dev!(c);
    let rec = pattern(200, 3);
    c.write(DATA, &rec[..3])?;
    c.write(DATA2, &rec[3..10])?;
    c.write(DATA3 + 0x800, &rec[10..])?;
    c.program(
        PROG,
        &[
            ccw(cmd::WRITE, CcwFlags::CD, 3, DATA),
            ccw(cmd::WRITE, CcwFlags::CD, 7, DATA2),
            ccw(cmd::WRITE, none(), 190, DATA3 + 0x800),
        ],
    )?;
    ends_ok(&c.run_on(sch, &orb(1, PROG)).await?, PROG + 24, 0)?;
    ensure!(
        get_record(c, sch, 200).await? == rec,
        "data-chained write arrived wrongly"
    );
    Ok(Verdict::Pass)
}

/// A WRITE through two format-2 IDAWs across a page boundary (§8.3, write direction).
pub(crate) async fn td_write_idal_two<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let sch = dev!(c);
    let rec = pattern(0x300, 5);
    let first = DATA + 0x1000 - 0x100;
    c.write(first, &rec[..0x100])?;
    c.write(DATA2, &rec[0x100..])?;
    let mut idal = u64::from(first).to_be_bytes().to_vec();
    idal.extend(u64::from(DATA2).to_be_bytes());
    c.write(IDAL, &idal)?;
    c.program(PROG, &[ccw(cmd::WRITE, CcwFlags::IDA, 0x300, IDAL)])?;
    ends_ok(
        &c.run_on(sch, &orb_idaw(2, PROG, true, false)).await?,
        PROG + 8,
        0,
    )?;
    ensure!(
        get_record(c, sch, 0x300).await? == rec,
        "IDAL write arrived wrongly"
    );
    Ok(Verdict::Pass)
}

/// A READ data-chained 1 + 98 + 1 stores each piece at its own address (§1.3 CD).
pub(crate) async fn td_read_data_chain_odd<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let sch = dev!(c);
    let rec = pattern(100, 9);
    set_record(c, sch, &rec).await?;
    for a in [DATA, DATA2, DATA3] {
        c.poison(a, 128)?;
    }
    c.program(
        PROG,
        &[
            ccw(cmd::READ, CcwFlags::CD, 1, DATA),
            ccw(cmd::READ, CcwFlags::CD, 98, DATA2),
            ccw(cmd::READ, none(), 1, DATA3),
        ],
    )?;
    ends_ok(&c.run_on(sch, &orb(3, PROG)).await?, PROG + 24, 0)?;
    ensure!(c.read(DATA, 2)? == [rec[0], POISON], "piece 1");
    ensure!(c.read(DATA2, 98)? == rec[1..99], "piece 2");
    ensure!(c.read(DATA3, 2)? == [rec[99], POISON], "piece 3");
    Ok(Verdict::Pass)
}

/// READ BACKWARD stores the device's bytes at descending addresses ending at the data
/// address: the record reversed by the device lands in memory in its original order
/// (§1.4 read backward).
pub(crate) async fn td_read_backward<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let sch = dev!(c);
    let rec = pattern(64, 11);
    set_record(c, sch, &rec).await?;
    c.poison(DATA, 66)?;
    c.program(PROG, &[ccw(cmd::READ_BACKWARD, none(), 64, DATA + 64)])?;
    ends_ok(&c.run_on(sch, &orb(4, PROG)).await?, PROG + 8, 0)?;
    let got = c.read(DATA, 66)?;
    ensure!(got[0] == POISON, "stored below the area");
    ensure!(
        got[1..65] == rec[..],
        "read backward stored {:02x?}...",
        &got[..8]
    );
    ensure!(got[65] == POISON, "stored above the data address");
    Ok(Verdict::Pass)
}

/// SEARCH EQUAL that matches ends with status modifier, so the channel skips the next CCW
/// and chains to the one after it (§3.3 device status SM; §1.3 CC).
pub(crate) async fn td_search_equal_skips<B: Backend>(c: &Ctx<B>) -> CaseResult {
    search(c, true).await
}

/// SEARCH EQUAL that does not match: no status modifier, the next CCW runs (§3.3).
pub(crate) async fn td_search_unequal_continues<B: Backend>(c: &Ctx<B>) -> CaseResult {
    search(c, false).await
}

async fn search<B: Backend>(c: &Ctx<B>, equal: bool) -> CaseResult {
    let sch = dev!(c);
    set_record(c, sch, b"KEY-0001 and the rest").await?;
    c.write(DATA, if equal { b"KEY-0001" } else { b"KEY-0002" })?;
    c.poison(DATA2, 8)?;
    c.program(
        PROG,
        &[
            ccw(SEARCH_EQUAL, CcwFlags::CC, 8, DATA),
            ccw(cmd::READ, CcwFlags::CC | CcwFlags::SLI, 8, DATA2),
            ccw(cmd::NOP, none(), 0, 0),
        ],
    )?;
    let done = c.run_on(sch, &orb(5, PROG)).await?;
    ends_ok(&done, PROG + 24, 0)?;
    let read = c.read(DATA2, 8)? != [POISON; 8];
    ensure!(
        read != equal,
        "READ after SEARCH {} (equal: {equal})",
        if read { "ran" } else { "skipped" }
    );
    Ok(Verdict::Pass)
}

/// A device unit check after its transfer: CE|DE|UC, alert; SENSE afterwards yields the
/// device's sense (equipment check 0x10) (§4.5, §3.4 unit check).
pub(crate) async fn td_unit_check_sense<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let sch = dev!(c);
    c.program(PROG, &[ccw(FORCE_UC, CcwFlags::SLI, 1, DATA)])?;
    let sub = c.open_sch(sch).await?;
    let r = async {
        let done = c.submit(&sub, &orb(6, PROG)).await?;
        check(
            &done.irb.scsw,
            DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END | DeviceStatus::UNIT_CHECK,
            SubchannelStatus::from_bits(0),
        )?;
        if let Some(&b0) = done.irb.concurrent_sense_lenient().and_then(|s| s.first()) {
            return Ok::<u8, Failure>(b0);
        }
        c.poison(DATA2, 32)?;
        c.program(PROG2, &[ccw(cmd::SENSE, CcwFlags::SLI, 32, DATA2)])?;
        let d = c.submit(&sub, &orb(7, PROG2)).await?;
        ends_ok(&d, PROG2 + 8, d.irb.scsw.count.get())?;
        Ok(c.read(DATA2, 1)?[0])
    }
    .await;
    sub.close().await?;
    let b0 = r?;
    ensure!(
        b0 == 0x10,
        "sense byte 0 {b0:#04x} (want equipment check 0x10)"
    );
    Ok(Verdict::Pass)
}

/// Unit exception: CE|DE|UX, no subchannel status (§3.3 device status).
pub(crate) async fn td_unit_exception<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let sch = dev!(c);
    c.program(PROG, &[ccw(FORCE_UX, CcwFlags::SLI, 1, DATA)])?;
    let done = c.run_on(sch, &orb(8, PROG)).await?;
    check(
        &done.irb.scsw,
        DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END | DeviceStatus::UNIT_EXCEPTION,
        SubchannelStatus::from_bits(0),
    )?;
    ensure!(
        done.irb.scsw.cpa.get() == PROG + 8,
        "cpa {:#x}",
        done.irb.scsw.cpa.get()
    );
    Ok(Verdict::Pass)
}

/// Unit exception ends command chaining: the chained CCW does not run (§1.3 CC: chaining
/// only on CE|DE without unusual conditions).
pub(crate) async fn td_unit_exception_stops_chain<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let sch = dev!(c);
    c.poison(DATA2, 4)?;
    c.program(
        PROG,
        &[
            ccw(FORCE_UX, CcwFlags::CC | CcwFlags::SLI, 1, DATA),
            ccw(cmd::SENSE_ID, CcwFlags::SLI, 4, DATA2),
        ],
    )?;
    let done = c.run_on(sch, &orb(9, PROG)).await?;
    ensure!(
        done.irb.scsw.cpa.get() == PROG + 8,
        "cpa {:#x} (want the UX CCW + 8)",
        done.irb.scsw.cpa.get()
    );
    ensure!(
        c.read(DATA2, 4)? == [POISON; 4],
        "the chained CCW ran after unit exception"
    );
    Ok(Verdict::Pass)
}

/// A READ longer than the record without SLI: incorrect length with the residual; with
/// SLI: the same residual and no IL (§1.7).
pub(crate) async fn td_short_record_residual<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let sch = dev!(c);
    set_record(c, sch, &pattern(10, 13)).await?;
    c.program(PROG, &[ccw(cmd::READ, none(), 20, DATA)])?;
    let done = c.run_on(sch, &orb(10, PROG)).await?;
    check(
        &done.irb.scsw,
        DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END,
        SubchannelStatus::INCORRECT_LENGTH,
    )?;
    ensure!(
        done.irb.scsw.count.get() == 10,
        "residual {} (want 10)",
        done.irb.scsw.count.get()
    );
    c.program(PROG, &[ccw(cmd::READ, CcwFlags::SLI, 20, DATA)])?;
    ends_ok(&c.run_on(sch, &orb(11, PROG)).await?, PROG + 8, 10)?;
    Ok(Verdict::Pass)
}

/// SKIP has no effect on a write: the data still reaches the device (§1.3 SKIP: effective
/// only for read, read backward and sense).
pub(crate) async fn td_skip_ignored_on_write<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let sch = dev!(c);
    let rec = pattern(40, 17);
    c.write(DATA, &rec)?;
    c.program(PROG, &[ccw(cmd::WRITE, CcwFlags::SKIP, 40, DATA)])?;
    ends_ok(&c.run_on(sch, &orb(12, PROG)).await?, PROG + 8, 0)?;
    ensure!(
        get_record(c, sch, 40).await? == rec,
        "SKIP suppressed a write"
    );
    Ok(Verdict::Pass)
}

/// SENSE ID of the test device: `ff 3088 01 0000 00`, 8 bytes, residual 248 of 256
/// (§9.1).
pub(crate) async fn td_sense_id<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let sch = dev!(c);
    c.poison(DATA, 16)?;
    c.program(PROG, &[ccw(cmd::SENSE_ID, CcwFlags::SLI, 256, DATA)])?;
    ends_ok(&c.run_on(sch, &orb(13, PROG)).await?, PROG + 8, 248)?;
    let got = c.read(DATA, 9)?;
    ensure!(
        got == [0xFF, 0x30, 0x88, 0x01, 0, 0, 0, 0, POISON],
        "SENSE ID {got:02x?}"
    );
    Ok(Verdict::Pass)
}

/// A READ chained after a WRITE in one program sees the record just written (§1.3 CC:
/// commands execute in order).
pub(crate) async fn td_write_then_read_chained<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let sch = dev!(c);
    let rec = pattern(77, 19);
    c.write(DATA, &rec)?;
    c.poison(DATA2, 80)?;
    c.program(
        PROG,
        &[
            ccw(cmd::WRITE, CcwFlags::CC, 77, DATA),
            ccw(cmd::READ, none(), 77, DATA2),
        ],
    )?;
    ends_ok(&c.run_on(sch, &orb(14, PROG)).await?, PROG + 16, 0)?;
    ensure!(c.read(DATA2, 77)? == rec, "READ after WRITE in one chain");
    Ok(Verdict::Pass)
}
