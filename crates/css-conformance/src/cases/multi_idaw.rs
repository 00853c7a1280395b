// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Group `multi-idaw`: transfers over two IDAW blocks and direct transfers crossing a page
//! (vfio-ccw splits them into IDAWs). QEMU's emulated device does not advance between
//! IDAWs (`ccw_dstream_rw_ida()`), so the guest runner reports this group apart.

use ccw_types::CcwFlags;
use css_core::Backend;

use super::idal::{Fmt, read_via_idal};
use crate::prog::*;
use crate::{CaseResult, Ctx, Verdict, ensure};

/// Where the first IDAW starts so that `len` bytes reach `keep` bytes into the second
/// block (at least one byte in each).
fn split_at(fmt: Fmt, len: u16, base: u32) -> u32 {
    base + fmt.block() - u32::from(len / 2).max(1)
}

/// Two format-2 4K IDAWs: the first ends at a block boundary, the second is a block start
/// elsewhere (§8.3; vfio-ccw idal handling, anchors.md cp_prefetch).
pub(crate) async fn fmt2_4k_two<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (_, len) = c.big();
    read_via_idal(
        c,
        Fmt::F2k4,
        &[split_at(Fmt::F2k4, len, DATA), DATA2],
        len,
        IDAL,
    )
    .await
}

/// Two format-2 2K IDAWs (§8.3).
pub(crate) async fn fmt2_2k_two<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (_, len) = c.big();
    read_via_idal(
        c,
        Fmt::F2k2,
        &[split_at(Fmt::F2k2, len, DATA), DATA2 + 0x800],
        len,
        IDAL,
    )
    .await
}

/// Two format-1 IDAWs (2K blocks) (§8.2, §8.3).
pub(crate) async fn fmt1_two<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (_, len) = c.big();
    read_via_idal(
        c,
        Fmt::F1,
        &[split_at(Fmt::F1, len, DATA), DATA2],
        len,
        IDAL,
    )
    .await
}

/// Two format-2 4K IDAWs whose second block directly follows the first: a page crossing
/// in contiguous memory (§8.3).
pub(crate) async fn fmt2_4k_contiguous<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (_, len) = c.big();
    let first = split_at(Fmt::F2k4, len, DATA);
    read_via_idal(c, Fmt::F2k4, &[first, DATA + 0x1000], len, IDAL).await
}

/// The first IDAW holds a single byte, the rest goes to the second (§8.3).
pub(crate) async fn fmt2_4k_one_byte_first<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (_, len) = c.big();
    read_via_idal(c, Fmt::F2k4, &[DATA + 0xFFF, DATA2], len, IDAL).await
}

/// 2K IDAWs inside one 4K page: the second block is the upper half of the first's page
/// (§8.1: block size from the ORB, not the page size).
pub(crate) async fn fmt2_2k_same_page<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (_, len) = c.big();
    read_via_idal(
        c,
        Fmt::F2k2,
        &[split_at(Fmt::F2k2, len, DATA), DATA + 0x800],
        len,
        IDAL,
    )
    .await
}

/// A direct CCW whose data crosses a 4 KiB boundary: vfio-ccw turns it into two IDAWs
/// (anchors.md: direct CCW -> fabricated IDAL in 2K/4K steps).
pub(crate) async fn direct_across_page<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    let rf = c.reference(code, len).await?;
    let at = DATA + 0x1000 - u32::from(len / 2);
    c.poison(at, usize::from(len) + 1)?;
    c.program(PROG, &[ccw(code, CcwFlags::SLI, len, at)])?;
    let done = c.run(&orb(34, PROG)).await?;
    ends_ok(&done, PROG + 8, 0)?;
    ensure!(
        c.read(at, usize::from(len))? == rf,
        "data across the page boundary"
    );
    ensure!(
        c.read(at + u32::from(len), 1)? == [POISON],
        "stored past the count"
    );
    Ok(Verdict::Pass)
}

/// A data chain whose second piece crosses a page boundary directly (§1.3 CD; anchors.md
/// fabricated IDAL per CCW).
pub(crate) async fn data_chain_across_page<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (r, rf) = c.chain_read().await?;
    let len = r.len;
    let at = DATA2 + 0x1000 - u32::from(len / 4);
    c.poison(DATA, 8)?;
    c.poison(at, usize::from(len))?;
    c.program(
        PROG,
        &r.program(&[
            ccw(r.code, CcwFlags::CD, 4, DATA),
            ccw(r.code, CcwFlags::SLI, len - 4, at),
        ]),
    )?;
    let done = c.run(&orb(35, PROG)).await?;
    ends_ok(&done, r.end(PROG, 2), 0)?;
    ensure!(c.read(DATA, 4)? == rf[..4], "first piece");
    ensure!(
        c.read(at, usize::from(len - 4))? == rf[4..],
        "second piece across the page"
    );
    Ok(Verdict::Pass)
}
