// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Group `basic`: single commands, command and data chaining, SKIP, PCI, suspend, TIC,
//! residual counts and incorrect length, on the primary device.

use ccw_types::{CcwFlags, CcwFormat, CommandOrb, DeviceStatus, SubchannelStatus};
use css_core::{Backend, SubchannelEvent};

use crate::prog::*;
use crate::{CaseResult, Ctx, Failure, Verdict, ensure};

/// SENSE ID (count 256, SLI) ends with CE|DE, cpa one past the CCW, residual 256 minus the
/// device's SENSE ID length, and the control-unit bytes of the device (s390-io-reference
/// §9.1, §3.3, §13.3).
pub(crate) async fn sense_id<B: Backend>(c: &Ctx<B>) -> CaseResult {
    c.poison(DATA, 257)?;
    c.program(PROG, &[ccw(cmd::SENSE_ID, CcwFlags::SLI, 256, DATA)])?;
    let done = c.run(&orb(0x5E45, PROG)).await?;
    ends_ok(&done, PROG + 8, 256 - c.fx.primary.sense_id_len())?;
    let want = c.fx.primary.sense_id_prefix();
    let data = c.read(DATA, want.len())?;
    ensure!(data == want, "SENSE ID {data:02x?} (want {want:02x?})");
    let n = usize::from(c.fx.primary.sense_id_len());
    ensure!(
        c.read(DATA + n as u32, 1)? == [POISON] || n == 256,
        "SENSE ID stored more than its {n} bytes"
    );
    Ok(Verdict::Pass)
}

/// The final status carries the ORB's interruption parameter unchanged (§2, §11.3: the
/// intparm of the start function is presented with its status).
pub(crate) async fn intparm_returned<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.program(PROG, &[ccw(code, CcwFlags::SLI, len, DATA)])?;
    for intparm in [0xDEAD_BEEF, 0, 0x8000_0001] {
        let done = c.run(&orb(intparm, PROG)).await?;
        ensure!(
            done.intparm == intparm,
            "intparm {:#x} (want {intparm:#x})",
            done.intparm
        );
        ends_ok(&done, PROG + 8, 0)?;
    }
    Ok(Verdict::Pass)
}

/// Command chaining: two commands, each with its own data; the chain ends after the second
/// with cpa = last CCW + 8 (§1.3 CC).
pub(crate) async fn command_chain<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (b, bl) = c.big();
    let (s, sl) = c.second();
    let rb = c.reference(b, bl).await?;
    let rs = c.reference(s, sl).await?;
    c.poison(DATA, 512)?;
    c.poison(DATA2, 512)?;
    c.program(
        PROG,
        &[
            ccw(b, CcwFlags::CC | CcwFlags::SLI, bl, DATA),
            ccw(s, CcwFlags::SLI, sl, DATA2),
        ],
    )?;
    let done = c.run(&orb(2, PROG)).await?;
    ends_ok(&done, PROG + 16, 0)?;
    ensure!(c.read(DATA, rb.len())? == rb, "first command's data");
    ensure!(c.read(DATA2, rs.len())? == rs, "second command's data");
    Ok(Verdict::Pass)
}

/// Eight command-chained NOPs of count 0 (valid in format 1 without data chaining) end
/// normally after the last with residual 0 (§1.7, §1.3 CC).
pub(crate) async fn command_chain_nops<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let mut prog: Vec<[u8; 8]> = (0..7).map(|_| ccw(cmd::NOP, CcwFlags::CC, 0, 0)).collect();
    prog.push(ccw(cmd::NOP, none(), 0, 0));
    c.program(PROG, &prog)?;
    let done = c.run(&orb(3, PROG)).await?;
    ends_ok(&done, PROG + 64, 0).map(|()| Verdict::Pass)
}

/// A unit check ends command chaining: the CCW after the failing one is not executed and
/// cpa designates the failing CCW + 8 (§1.3 CC: chaining only after a normal end).
pub(crate) async fn command_chain_stops_at_unit_check<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (b, bl) = c.big();
    c.poison(DATA2, 64)?;
    c.program(
        PROG,
        &[
            ccw(b, CcwFlags::CC | CcwFlags::SLI, bl, DATA),
            ccw(cmd::UNKNOWN, CcwFlags::CC | CcwFlags::SLI, 1, DATA3),
            ccw(b, CcwFlags::SLI, bl, DATA2),
        ],
    )?;
    let done = c.run(&orb(4, PROG)).await?;
    let s = &done.irb.scsw;
    ensure!(s.is_final(), "not final: {s}");
    ensure!(
        s.device_status().contains(DeviceStatus::UNIT_CHECK),
        "device status {} (want UC)",
        s.device_status()
    );
    ensure!(
        s.cpa.get() == PROG + 16,
        "cpa {:#x} (want {:#x})",
        s.cpa.get(),
        PROG + 16
    );
    ensure!(
        c.read(DATA2, 1)? == [POISON],
        "the CCW after the unit check ran"
    );
    c.still_works().await?;
    Ok(Verdict::Pass)
}

/// Data chaining: the chained read (see [`Ctx::chain_read`]) split over CCWs of the counts
/// `counts` gives for its length (the last with SLI) stores exactly what one direct CCW
/// stores, each piece at its own address (§1.3 CD).
async fn split_read<B: Backend>(c: &Ctx<B>, counts: impl FnOnce(u16) -> Vec<u16>) -> CaseResult {
    let (r, rf) = c.chain_read().await?;
    let counts = counts(r.len);
    let total: u16 = counts.iter().sum();
    ensure!(total <= r.len, "suite bug: split longer than the read");
    let mut prog = Vec::new();
    for (i, &n) in counts.iter().enumerate() {
        let at = DATA + (i as u32) * 0x1000;
        c.poison(at, usize::from(n) + 1)?;
        let flags = if i + 1 < counts.len() {
            CcwFlags::CD
        } else {
            CcwFlags::SLI
        };
        // The channel ignores the command code of a data-chained CCW; programs repeat it.
        prog.push(ccw(r.code, flags, n, at));
    }
    c.program(PROG, &r.program(&prog))?;
    let done = c.run(&orb(5, PROG)).await?;
    ends_ok(&done, r.end(PROG, counts.len()), 0)?;
    let mut off = 0usize;
    for (i, &n) in counts.iter().enumerate() {
        let at = DATA + (i as u32) * 0x1000;
        let got = c.read(at, usize::from(n) + 1)?;
        let want = &rf[off..off + usize::from(n)];
        ensure!(
            &got[..usize::from(n)] == want,
            "piece {i} ({n} bytes at {at:#x}) differs from a direct read"
        );
        ensure!(
            got[usize::from(n)] == POISON,
            "piece {i} wrote past its count"
        );
        off += usize::from(n);
    }
    Ok(Verdict::Pass)
}

/// Data chaining, split 1 + rest (§1.3 CD).
pub(crate) async fn data_chain_1_rest<B: Backend>(c: &Ctx<B>) -> CaseResult {
    split_read(c, |len| vec![1, len - 1]).await
}

/// Data chaining, split 4 + rest (§1.3 CD).
pub(crate) async fn data_chain_4_rest<B: Backend>(c: &Ctx<B>) -> CaseResult {
    split_read(c, |len| vec![4, len - 4]).await
}

/// Data chaining, two halves (§1.3 CD).
pub(crate) async fn data_chain_halves<B: Backend>(c: &Ctx<B>) -> CaseResult {
    split_read(c, |len| vec![len / 2, len - len / 2]).await
}

/// Data chaining, split rest + 1: the last CCW moves one byte (§1.3 CD).
pub(crate) async fn data_chain_rest_1<B: Backend>(c: &Ctx<B>) -> CaseResult {
    split_read(c, |len| vec![len - 1, 1]).await
}

/// Data chaining over three CCWs with odd counts 3 + 5 + rest (§1.3 CD).
pub(crate) async fn data_chain_odd_three<B: Backend>(c: &Ctx<B>) -> CaseResult {
    split_read(c, |len| vec![3, 5, len - 8]).await
}

/// Data chaining over eight CCWs of 7 bytes and the rest (§1.3 CD).
pub(crate) async fn data_chain_eight<B: Backend>(c: &Ctx<B>) -> CaseResult {
    split_read(c, |len| {
        let mut counts = vec![7u16; 7];
        counts.push(len - 49);
        counts
    })
    .await
}

/// A data chain whose total count is shorter than the device's data ends normally when
/// the last CCW has SLI: residual 0, only the counted bytes stored (§1.7, §1.3 SLI).
pub(crate) async fn data_chain_short_with_sli<B: Backend>(c: &Ctx<B>) -> CaseResult {
    split_read(c, |_| vec![4, 4]).await
}

/// Without SLI on the last CCW, a data chain shorter than the device's data ends with
/// incorrect length (residual 0, cpa after the last CCW) (§1.7).
pub(crate) async fn data_chain_short_without_sli<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (r, _) = c.chain_read().await?;
    c.program(
        PROG,
        &r.program(&[
            ccw(r.code, CcwFlags::CD, 4, DATA),
            ccw(r.code, none(), 4, DATA2),
        ]),
    )?;
    let done = c.run(&orb(6, PROG)).await?;
    check(
        &done.irb.scsw,
        DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END,
        SubchannelStatus::INCORRECT_LENGTH,
    )?;
    ensure!(
        done.irb.scsw.cpa.get() == r.end(PROG, 2),
        "cpa {:#x} (want {:#x})",
        done.irb.scsw.cpa.get(),
        r.end(PROG, 2)
    );
    ensure!(
        done.irb.scsw.count.get() == 0,
        "residual {}",
        done.irb.scsw.count.get()
    );
    Ok(Verdict::Pass)
}

/// SLI on a CCW that specifies data chaining is ignored: only the last CCW's SLI counts,
/// so the short chain still ends with incorrect length (§1.3: with CD set, SLI is ignored).
pub(crate) async fn data_chain_sli_on_first_ignored<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (r, _) = c.chain_read().await?;
    c.program(
        PROG,
        &r.program(&[
            ccw(r.code, CcwFlags::CD | CcwFlags::SLI, 4, DATA),
            ccw(r.code, none(), 4, DATA2),
        ]),
    )?;
    let done = c.run(&orb(7, PROG)).await?;
    check(
        &done.irb.scsw,
        DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END,
        SubchannelStatus::INCORRECT_LENGTH,
    )?;
    Ok(Verdict::Pass)
}

/// A data chain longer than the device's data: the residual count is what is left of the
/// last CCW's count, SLI suppresses incorrect length; each piece holds its part of the data
/// and nothing is stored past the data's end (§1.7).
pub(crate) async fn data_chain_long_residual<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (r, rf) = c.chain_read().await?;
    let (len, first) = (r.len, r.len / 2);
    c.poison(DATA, usize::from(first) + 1)?;
    c.poison(DATA2, usize::from(len))?;
    c.program(
        PROG,
        &r.program(&[
            ccw(r.code, CcwFlags::CD, first, DATA),
            ccw(r.code, CcwFlags::SLI, len, DATA2),
        ]),
    )?;
    let done = c.run(&orb(8, PROG)).await?;
    ends_ok(&done, r.end(PROG, 2), first)?;
    let first = usize::from(first);
    ensure!(c.read(DATA, first)? == rf[..first], "first piece");
    let rest = rf.len() - first;
    ensure!(c.read(DATA2, rest)? == rf[first..], "second piece");
    ensure!(
        c.read(DATA2 + rest as u32, 1)? == [POISON],
        "the second piece stored past the device's data"
    );
    Ok(Verdict::Pass)
}

/// SKIP on a read: the data is not stored but the count is consumed; the status is that of
/// a normal transfer (§1.3 SKIP).
pub(crate) async fn skip_read<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.poison(DATA, usize::from(len))?;
    c.program(
        PROG,
        &[ccw(code, CcwFlags::SKIP | CcwFlags::SLI, len, DATA)],
    )?;
    let done = c.run(&orb(9, PROG)).await?;
    ends_ok(&done, PROG + 8, 0)?;
    ensure!(
        c.read(DATA, usize::from(len))?.iter().all(|&b| b == POISON),
        "SKIP stored data"
    );
    Ok(Verdict::Pass)
}

/// SKIP on the first CCW of a data chain: the first piece is skipped, the second stored at
/// the right offset of the device's data (§1.3 SKIP, CD).
pub(crate) async fn skip_then_data_chain<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (r, rf) = c.chain_read().await?;
    let len = r.len;
    c.poison(DATA, 16)?;
    c.poison(DATA2, usize::from(len))?;
    c.program(
        PROG,
        &r.program(&[
            ccw(r.code, CcwFlags::CD | CcwFlags::SKIP, 4, DATA),
            ccw(r.code, CcwFlags::SLI, len - 4, DATA2),
        ]),
    )?;
    let done = c.run(&orb(10, PROG)).await?;
    ends_ok(&done, r.end(PROG, 2), 0)?;
    ensure!(c.read(DATA, 4)? == [POISON; 4], "skipped piece stored");
    ensure!(
        c.read(DATA2, usize::from(len - 4))? == rf[4..],
        "second piece not at offset 4 of the device's data"
    );
    Ok(Verdict::Pass)
}

/// PCI: a CCW with the PCI flag makes the subchannel present PCI, as intermediate status
/// (an event) or in the final status, at least once; the program still ends normally
/// (§1.3 PCI).
pub(crate) async fn pci_flag<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.program(
        PROG,
        &[
            ccw(cmd::NOP, CcwFlags::CC | CcwFlags::PCI, 0, 0),
            ccw(code, CcwFlags::SLI, len, DATA),
        ],
    )?;
    let sub = c.open().await?;
    let mut ev = sub.events();
    let r = c.submit(&sub, &orb(11, PROG)).await;
    sub.close().await?;
    let done = r?;
    let s = &done.irb.scsw;
    let in_final = s.subchannel_status().contains(SubchannelStatus::PCI);
    let mut intermediate = 0;
    while let Ok(e) = ev.try_recv() {
        if let SubchannelEvent::Status(irb) = e {
            if irb.scsw.subchannel_status().contains(SubchannelStatus::PCI) {
                intermediate += 1;
            }
        }
    }
    ensure!(
        in_final || intermediate > 0,
        "PCI never presented (final {s})"
    );
    ensure!(
        s.device_status() == DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END,
        "device status {}",
        s.device_status()
    );
    ensure!(
        (s.subchannel_status() - SubchannelStatus::PCI).is_empty(),
        "subchannel status {}",
        s.subchannel_status()
    );
    ensure!(s.cpa.get() == PROG + 16, "cpa {:#x}", s.cpa.get());
    Ok(Verdict::Pass)
}

/// The suspend flag in a program whose ORB does not allow suspension is a program check
/// at that CCW (§1.3 S, §1.6).
pub(crate) async fn suspend_without_orb_s<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.program(
        PROG,
        &[
            ccw(code, CcwFlags::CC | CcwFlags::SLI, len, DATA),
            ccw(cmd::NOP, CcwFlags::S, 0, 0),
        ],
    )?;
    match c.try_run(&orb(12, PROG)).await? {
        Ok(done) => program_check(&done, Some(PROG + 16))?,
        Err(e) => return Err(Failure(format!("refused instead of a program check: {e}"))),
    }
    c.still_works().await?;
    Ok(Verdict::Pass)
}

/// TIC to another segment (forward): the chain continues there (§1.5).
pub(crate) async fn tic_forward<B: Backend>(c: &Ctx<B>) -> CaseResult {
    tic_between(c, PROG, PROG2).await
}

/// TIC backwards to a lower address (§1.5).
pub(crate) async fn tic_backward<B: Backend>(c: &Ctx<B>) -> CaseResult {
    tic_between(c, PROG2, PROG).await
}

async fn tic_between<B: Backend>(c: &Ctx<B>, from: u32, to: u32) -> CaseResult {
    let (b, bl) = c.big();
    let (s, sl) = c.second();
    let rs = c.reference(s, sl).await?;
    c.poison(DATA2, usize::from(sl))?;
    c.program(
        from,
        &[
            ccw(b, CcwFlags::CC | CcwFlags::SLI, bl, DATA),
            ccw(cmd::TIC, none(), 0, to),
        ],
    )?;
    c.program(to, &[ccw(s, CcwFlags::SLI, sl, DATA2)])?;
    let done = c.run(&orb(13, from)).await?;
    ends_ok(&done, to + 8, 0)?;
    ensure!(c.read(DATA2, rs.len())? == rs, "data after the TIC");
    Ok(Verdict::Pass)
}

/// TIC inside one segment over a CCW that would program-check if executed (§1.5).
pub(crate) async fn tic_in_segment<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (b, bl) = c.big();
    let (s, sl) = c.second();
    c.program(
        PROG,
        &[
            ccw(b, CcwFlags::CC | CcwFlags::SLI, bl, DATA),
            ccw(cmd::TIC, none(), 0, PROG + 24),
            raw_ccw(0x00, 0, 1, DATA3),
            ccw(s, CcwFlags::SLI, sl, DATA2),
        ],
    )?;
    let done = c.run(&orb(14, PROG)).await?;
    ends_ok(&done, PROG + 32, 0)?;
    Ok(Verdict::Pass)
}

/// A TIC may be the first CCW of a program (§1.5).
pub(crate) async fn tic_first<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (b, bl) = c.big();
    c.program(PROG, &[ccw(cmd::TIC, none(), 0, PROG2)])?;
    c.program(PROG2, &[ccw(b, CcwFlags::SLI, bl, DATA)])?;
    let done = c.run(&orb(15, PROG)).await?;
    ends_ok(&done, PROG2 + 8, 0)?;
    Ok(Verdict::Pass)
}

/// A TIC does not end data chaining: the CCW after it continues the same transfer
/// (§1.5: the chaining state is carried through a TIC).
pub(crate) async fn tic_carries_data_chain<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (r, rf) = c.chain_read().await?;
    let len = r.len;
    c.poison(DATA, 5)?;
    c.poison(DATA2, usize::from(len))?;
    c.program(
        PROG,
        &r.program(&[
            ccw(r.code, CcwFlags::CD, 4, DATA),
            ccw(cmd::TIC, none(), 0, PROG2),
        ]),
    )?;
    c.program(PROG2, &[ccw(r.code, CcwFlags::SLI, len - 4, DATA2)])?;
    let done = c.run(&orb(16, PROG)).await?;
    ends_ok(&done, PROG2 + 8, 0)?;
    ensure!(c.read(DATA, 4)? == rf[..4], "first piece");
    ensure!(
        c.read(DATA2, usize::from(len - 4))? == rf[4..],
        "piece after the TIC"
    );
    Ok(Verdict::Pass)
}

/// A count larger than the device's data with SLI: normal end, residual = count minus
/// what was transferred (§1.7).
pub(crate) async fn residual_long_count_sli<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.program(PROG, &[ccw(code, CcwFlags::SLI, len + 44, DATA)])?;
    let done = c.run(&orb(17, PROG)).await?;
    ends_ok(&done, PROG + 8, 44).map(|()| Verdict::Pass)
}

/// A count smaller than the device's data with SLI: normal end, residual 0, nothing stored
/// past the count (§1.7).
pub(crate) async fn residual_short_count_sli<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, _) = c.big();
    c.poison(DATA, 8)?;
    c.program(PROG, &[ccw(code, CcwFlags::SLI, 4, DATA)])?;
    let done = c.run(&orb(18, PROG)).await?;
    ends_ok(&done, PROG + 8, 0)?;
    ensure!(c.read(DATA + 4, 1)? == [POISON], "stored past count 4");
    Ok(Verdict::Pass)
}

/// A count smaller than the device's data without SLI: incorrect length, residual 0
/// (§1.7).
pub(crate) async fn incorrect_length_short<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, _) = c.big();
    c.program(PROG, &[ccw(code, none(), 4, DATA)])?;
    let done = c.run(&orb(19, PROG)).await?;
    check(
        &done.irb.scsw,
        DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END,
        SubchannelStatus::INCORRECT_LENGTH,
    )?;
    ensure!(
        done.irb.scsw.count.get() == 0,
        "residual {}",
        done.irb.scsw.count.get()
    );
    Ok(Verdict::Pass)
}

/// A count larger than the device's data without SLI: incorrect length with the residual
/// (§1.7).
pub(crate) async fn incorrect_length_long<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.program(PROG, &[ccw(code, none(), len + 44, DATA)])?;
    let done = c.run(&orb(20, PROG)).await?;
    check(
        &done.irb.scsw,
        DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END,
        SubchannelStatus::INCORRECT_LENGTH,
    )?;
    ensure!(
        done.irb.scsw.count.get() == 44,
        "residual {}",
        done.irb.scsw.count.get()
    );
    Ok(Verdict::Pass)
}

/// Incorrect length ends command chaining: the next CCW does not run and cpa is the
/// failing CCW + 8 (§1.3 CC, §1.7).
pub(crate) async fn incorrect_length_stops_chain<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.poison(DATA2, 8)?;
    c.program(
        PROG,
        &[
            ccw(code, CcwFlags::CC, 4, DATA),
            ccw(code, CcwFlags::SLI, len, DATA2),
        ],
    )?;
    let done = c.run(&orb(21, PROG)).await?;
    check(
        &done.irb.scsw,
        DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END,
        SubchannelStatus::INCORRECT_LENGTH,
    )?;
    ensure!(
        done.irb.scsw.cpa.get() == PROG + 8,
        "cpa {:#x}",
        done.irb.scsw.cpa.get()
    );
    ensure!(
        c.read(DATA2, 1)? == [POISON],
        "the chained CCW ran after IL"
    );
    Ok(Verdict::Pass)
}

/// A NOP of count 0 ends with CE|DE and residual 0 (§1.7: count 0 valid in format 1).
pub(crate) async fn nop_count_zero<B: Backend>(c: &Ctx<B>) -> CaseResult {
    c.program(PROG, &[ccw(cmd::NOP, none(), 0, 0)])?;
    let done = c.run(&orb(22, PROG)).await?;
    ends_ok(&done, PROG + 8, 0).map(|()| Verdict::Pass)
}

/// A format-0 program (ORB F = 0) runs like its format-1 equivalent (§1.2; vfio-ccw
/// converts format 0 to format 1).
pub(crate) async fn format0_program<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    let rf = c.reference(code, len).await?;
    c.poison(DATA, usize::from(len))?;
    c.program(PROG, &[ccw0(code, CcwFlags::SLI.bits(), len, DATA)])?;
    let mut o = CommandOrb::new(23, PROG);
    o.format = CcwFormat::Format0;
    let done = c.run(&o.emit()).await?;
    ends_ok(&done, PROG + 8, 0)?;
    ensure!(c.read(DATA, usize::from(len))? == rf, "format-0 data");
    Ok(Verdict::Pass)
}

/// A format-0 TIC between two format-0 CCWs (§1.5: any code with low nibble 1000 is a
/// format-0 TIC).
pub(crate) async fn format0_tic<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.program(
        PROG,
        &[
            ccw0(code, (CcwFlags::CC | CcwFlags::SLI).bits(), len, DATA),
            ccw0(cmd::TIC, 0, 0, PROG2),
        ],
    )?;
    c.program(PROG2, &[ccw0(cmd::NOP, CcwFlags::SLI.bits(), 1, 0)])?;
    let mut o = CommandOrb::new(24, PROG);
    o.format = CcwFormat::Format0;
    let done = c.run(&o.emit()).await?;
    let s = &done.irb.scsw;
    check(
        s,
        DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END,
        SubchannelStatus::from_bits(0),
    )?;
    ensure!(s.cpa.get() == PROG2 + 8, "cpa {:#x}", s.cpa.get());
    Ok(Verdict::Pass)
}

/// An unknown command ends in unit check with command reject in sense byte 0, from
/// concurrent sense or a SENSE command afterwards (§4.5, §9.3).
pub(crate) async fn unknown_command<B: Backend>(c: &Ctx<B>) -> CaseResult {
    c.program(PROG, &[ccw(cmd::UNKNOWN, CcwFlags::SLI, 1, DATA)])?;
    let sub = c.open().await?;
    let r = async {
        let done = c.submit(&sub, &orb(25, PROG)).await?;
        check(
            &done.irb.scsw,
            DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END | DeviceStatus::UNIT_CHECK,
            SubchannelStatus::from_bits(0),
        )
        .or_else(|_| {
            // Devices that present UC without CE|DE (at initial status) are legal too.
            ensure!(
                done.irb
                    .scsw
                    .device_status()
                    .contains(DeviceStatus::UNIT_CHECK),
                "device status {} (want UC)",
                done.irb.scsw.device_status()
            );
            Ok::<(), Failure>(())
        })?;
        if let Some(&b0) = done.irb.concurrent_sense_lenient().and_then(|s| s.first()) {
            return Ok::<u8, Failure>(b0);
        }
        c.poison(DATA2, 32)?;
        c.program(PROG2, &[ccw(cmd::SENSE, CcwFlags::SLI, 32, DATA2)])?;
        let done = c.submit(&sub, &orb(26, PROG2)).await?;
        ends_ok(&done, PROG2 + 8, done.irb.scsw.count.get())?;
        Ok(c.read(DATA2, 1)?[0])
    }
    .await;
    sub.close().await?;
    let b0 = r?;
    ensure!(
        b0 & 0x80 != 0,
        "sense byte 0 {b0:#04x} (want command reject 0x80)"
    );
    Ok(Verdict::Pass)
}

/// SENSE after a normal end reports no error: sense byte 0 is 0 (§4.5: sense describes the
/// last unit check only).
pub(crate) async fn sense_clean<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.poison(DATA2, 32)?;
    c.program(
        PROG,
        &[
            ccw(code, CcwFlags::CC | CcwFlags::SLI, len, DATA),
            ccw(cmd::SENSE, CcwFlags::SLI, 32, DATA2),
        ],
    )?;
    let done = c.run(&orb(27, PROG)).await?;
    let s = &done.irb.scsw;
    check(
        s,
        DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END,
        SubchannelStatus::from_bits(0),
    )?;
    ensure!(
        c.read(DATA2, 1)? == [0],
        "sense byte 0 after a clean command: {:02x?}",
        c.read(DATA2, 1)?
    );
    Ok(Verdict::Pass)
}
