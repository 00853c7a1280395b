// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Group `idal`: indirect data addressing with one IDAW per CCW (format 1, format 2 with
//! 2 KiB and 4 KiB blocks), first IDAW anywhere in its block.

use ccw_types::CcwFlags;
use css_core::Backend;

use crate::prog::*;
use crate::{CaseResult, Ctx, Verdict, ensure};

/// Which IDAW format an ORB selects.
#[derive(Clone, Copy)]
pub(crate) enum Fmt {
    /// Format-1 (4-byte) IDAWs, 2 KiB blocks (ORB H = 0).
    F1,
    /// Format-2 IDAWs, 2 KiB blocks (H = 1, T = 1).
    F2k2,
    /// Format-2 IDAWs, 4 KiB blocks (H = 1, T = 0).
    F2k4,
}

impl Fmt {
    pub(crate) fn block(self) -> u32 {
        match self {
            Fmt::F2k4 => 0x1000,
            _ => 0x800,
        }
    }
    pub(crate) fn idaw(self, addr: u32) -> Vec<u8> {
        match self {
            Fmt::F1 => addr.to_be_bytes().to_vec(),
            _ => u64::from(addr).to_be_bytes().to_vec(),
        }
    }
    pub(crate) fn orb(self, intparm: u32, cpa: u32) -> ccw_types::Orb {
        match self {
            Fmt::F1 => orb_idaw(intparm, cpa, false, false),
            Fmt::F2k2 => orb_idaw(intparm, cpa, true, true),
            Fmt::F2k4 => orb_idaw(intparm, cpa, true, false),
        }
    }
}

/// Reads the big read through an IDAL whose IDAWs are `addrs` (the first anywhere, the
/// others block-aligned) and checks the data lands piecewise exactly as a direct read
/// stores it. `list` is where the IDAL lives.
pub(crate) async fn read_via_idal<B: Backend>(
    c: &Ctx<B>,
    fmt: Fmt,
    addrs: &[u32],
    count: u16,
    list: u32,
) -> CaseResult {
    let (code, len) = c.big();
    let rf = c.reference(code, len).await?;
    ensure!(count <= len, "suite bug: count beyond the read");
    let blk = fmt.block();
    // Poison every block the transfer may touch, plus a byte past the end.
    let mut idal = Vec::new();
    for &a in addrs {
        c.poison(a & !(blk - 1), blk as usize + 1)?;
        idal.extend(fmt.idaw(a));
    }
    c.write(list, &idal)?;
    c.program(
        PROG,
        &[ccw(code, CcwFlags::IDA | CcwFlags::SLI, count, list)],
    )?;
    let done = c.run(&fmt.orb(30, PROG)).await?;
    ends_ok(&done, PROG + 8, 0)?;
    let mut off = 0usize;
    let mut left = usize::from(count);
    for (i, &a) in addrs.iter().enumerate() {
        if left == 0 {
            break;
        }
        let room = (blk - (a & (blk - 1))) as usize;
        let n = room.min(left);
        let got = c.read(a, n)?;
        ensure!(
            got == rf[off..off + n],
            "IDAW {i} ({n} bytes at {a:#x}) differs from a direct read"
        );
        off += n;
        left -= n;
        if left == 0 && n < room {
            ensure!(
                c.read(a + n as u32, 1)? == [POISON],
                "stored past the count"
            );
        }
    }
    ensure!(left == 0, "suite bug: IDAL too short for the count");
    Ok(Verdict::Pass)
}

/// One format-2 IDAW, 4 KiB block, at a block start (§8.1, §8.2).
pub(crate) async fn fmt2_4k_single<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (_, len) = c.big();
    read_via_idal(c, Fmt::F2k4, &[DATA], len, IDAL).await
}

/// One format-2 IDAW, 2 KiB block, at a block start (§8.1).
pub(crate) async fn fmt2_2k_single<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (_, len) = c.big();
    read_via_idal(c, Fmt::F2k2, &[DATA + 0x800], len, IDAL).await
}

/// One format-1 IDAW (2 KiB block) at a block start (§8.1, §8.2; vfio-ccw handles format-1
/// IDALs since v6.3, anchors.md).
pub(crate) async fn fmt1_single<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (_, len) = c.big();
    read_via_idal(c, Fmt::F1, &[DATA], len, IDAL).await
}

/// The first format-2 4K IDAW may designate any byte (§8.3).
pub(crate) async fn fmt2_4k_first_unaligned<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (_, len) = c.big();
    read_via_idal(c, Fmt::F2k4, &[DATA + 0x123], len, IDAL).await
}

/// The first format-2 2K IDAW may designate any byte (§8.3).
pub(crate) async fn fmt2_2k_first_unaligned<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (_, len) = c.big();
    read_via_idal(c, Fmt::F2k2, &[DATA + 0x811], len, IDAL).await
}

/// The first format-1 IDAW may designate any byte (§8.3).
pub(crate) async fn fmt1_first_unaligned<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (_, len) = c.big();
    read_via_idal(c, Fmt::F1, &[DATA + 0x35], len, IDAL).await
}

/// An IDAW list located at an odd doubleword of its page (§8.3: list doubleword aligned).
pub(crate) async fn idal_list_any_doubleword<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (_, len) = c.big();
    read_via_idal(c, Fmt::F2k4, &[DATA], len, IDAL + 0x7F8).await
}

/// A format-1 IDAL list only word aligned (§8.3: format-1 lists need word alignment).
pub(crate) async fn fmt1_list_word_aligned<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (_, len) = c.big();
    read_via_idal(c, Fmt::F1, &[DATA], len, IDAL + 4).await
}

/// A count shorter than the device's data through one IDAW: only the count is stored (§8.3,
/// §1.7).
pub(crate) async fn idal_partial_count<B: Backend>(c: &Ctx<B>) -> CaseResult {
    read_via_idal(c, Fmt::F2k4, &[DATA + 0x10], 5, IDAL).await
}

/// A data chain whose CCWs both use IDALs: each CCW's IDAL addresses its own piece
/// (§8.1, §1.3 CD).
pub(crate) async fn idal_data_chain<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (r, rf) = c.chain_read().await?;
    let len = r.len;
    c.poison(DATA, 64)?;
    c.poison(DATA2, usize::from(len))?;
    c.write(IDAL, &u64::from(DATA).to_be_bytes())?;
    c.write(IDAL + 8, &u64::from(DATA2).to_be_bytes())?;
    c.program(
        PROG,
        &r.program(&[
            ccw(r.code, CcwFlags::CD | CcwFlags::IDA, 6, IDAL),
            ccw(r.code, CcwFlags::IDA | CcwFlags::SLI, len - 6, IDAL + 8),
        ]),
    )?;
    let done = c.run(&Fmt::F2k4.orb(31, PROG)).await?;
    ends_ok(&done, r.end(PROG, 2), 0)?;
    ensure!(c.read(DATA, 7)?[..6] == rf[..6], "first piece");
    ensure!(c.read(DATA, 7)?[6] == POISON, "first piece past its count");
    ensure!(
        c.read(DATA2, usize::from(len - 6))? == rf[6..],
        "second piece"
    );
    Ok(Verdict::Pass)
}

/// An IDA CCW command-chained to a direct CCW: the ORB's IDAW format applies to the IDA
/// CCW only (§8.1).
pub(crate) async fn idal_then_direct<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    let rf = c.reference(code, len).await?;
    c.poison(DATA, usize::from(len))?;
    c.poison(DATA2, usize::from(len))?;
    c.write(IDAL, &u64::from(DATA).to_be_bytes())?;
    c.program(
        PROG,
        &[
            ccw(
                code,
                CcwFlags::CC | CcwFlags::IDA | CcwFlags::SLI,
                len,
                IDAL,
            ),
            ccw(code, CcwFlags::SLI, len, DATA2),
        ],
    )?;
    let done = c.run(&Fmt::F2k4.orb(32, PROG)).await?;
    ends_ok(&done, PROG + 16, 0)?;
    ensure!(c.read(DATA, usize::from(len))? == rf, "IDA CCW's data");
    ensure!(c.read(DATA2, usize::from(len))? == rf, "direct CCW's data");
    Ok(Verdict::Pass)
}

/// SKIP with IDA: nothing stored, count consumed (§1.3 SKIP; the IDAL is still fetched).
pub(crate) async fn idal_skip<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.poison(DATA, usize::from(len))?;
    c.write(IDAL, &u64::from(DATA).to_be_bytes())?;
    c.program(
        PROG,
        &[ccw(
            code,
            CcwFlags::IDA | CcwFlags::SKIP | CcwFlags::SLI,
            len,
            IDAL,
        )],
    )?;
    let done = c.run(&Fmt::F2k4.orb(33, PROG)).await?;
    ends_ok(&done, PROG + 8, 0)?;
    ensure!(
        c.read(DATA, usize::from(len))?.iter().all(|&b| b == POISON),
        "SKIP with IDA stored data"
    );
    Ok(Verdict::Pass)
}
