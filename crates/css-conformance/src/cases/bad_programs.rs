// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Group `bad-programs`: hostile guest programs through ccw-translate, one rule each. A
//! program a real channel subsystem would program-check is either refused by the
//! translator with vfio-ccw's errno and the program check it stands for, or reaches the
//! channel and ends with that program check; limits of vfio-ccw are refused with its errno.
//! The device works afterwards every time.

use ccw_types::{CcwFlags, CcwFormat, CommandOrb, Errno, Orb, SubchannelStatus};
use css_core::{Backend, CssError};

use crate::prog::*;
use crate::{CaseResult, Ctx, Failure, Verdict, ensure};

const EINVAL: Errno = Errno::Invalid;
const EFAULT: Errno = Errno::Fault;
const ENOMEM: Errno = Errno::NoMemory;
const EOPNOTSUPP: Errno = Errno::NotSupported;

/// The program must be refused with `errno` (standing for a program check) or end in a
/// program check with cpa `cpa` (if given).
async fn refused_or_pgm<B: Backend>(
    c: &Ctx<B>,
    o: &Orb,
    errno: Errno,
    cpa: Option<u32>,
) -> CaseResult {
    match c.try_run(o).await? {
        Err(CssError::Translate {
            errno: e,
            program_check,
            ..
        }) => {
            ensure!(e == errno, "refused with errno {e} (want {errno})");
            ensure!(
                program_check == Some(SubchannelStatus::PROGRAM_CHECK),
                "refusal stands for {program_check:?} (want a program check)"
            );
        }
        Err(e) => return Err(Failure(format!("unexpected error {e}"))),
        Ok(done) => program_check(&done, cpa)?,
    }
    c.still_works().await?;
    Ok(Verdict::Pass)
}

/// The program must be refused with exactly `errno` and no program check (a vfio-ccw
/// limit a real channel subsystem does not have).
async fn refused_limit<B: Backend>(c: &Ctx<B>, o: &Orb, errno: Errno) -> CaseResult {
    match c.try_run(o).await? {
        Err(CssError::Translate {
            errno: e,
            program_check,
            ..
        }) => {
            ensure!(e == errno, "refused with errno {e} (want {errno})");
            ensure!(
                program_check.is_none(),
                "a limit refusal claims {program_check:?}"
            );
        }
        Err(e) => return Err(Failure(format!("unexpected error {e}"))),
        Ok(done) => {
            return Err(Failure(format!(
                "started despite the limit: {}",
                done.irb.scsw
            )));
        }
    }
    c.still_works().await?;
    Ok(Verdict::Pass)
}

/// TIC to a TIC is a program check at the second TIC (cpa = second TIC + 8) (§1.5, §1.6).
pub(crate) async fn tic_to_tic<B: Backend>(c: &Ctx<B>) -> CaseResult {
    c.program(
        PROG,
        &[
            ccw(cmd::TIC, none(), 0, PROG + 8),
            ccw(cmd::TIC, none(), 0, PROG + 16),
            ccw(cmd::NOP, none(), 0, 0),
        ],
    )?;
    refused_or_pgm(c, &orb(1, PROG), EINVAL, Some(PROG + 16)).await
}

/// A TIC to itself (a TIC to a TIC) is a program check, never an endless loop (§1.5;
/// anchors.md 2019 recursive TICs, 2026 unbounded TIC recursion).
pub(crate) async fn tic_to_itself<B: Backend>(c: &Ctx<B>) -> CaseResult {
    c.program(PROG, &[ccw(cmd::TIC, none(), 0, PROG)])?;
    refused_or_pgm(c, &orb(2, PROG), EINVAL, None).await
}

/// ORB cpa not doubleword aligned: program check (§1.6, §1.8).
pub(crate) async fn misaligned_cpa<B: Backend>(c: &Ctx<B>) -> CaseResult {
    c.program(
        PROG,
        &[ccw(cmd::NOP, none(), 0, 0), ccw(cmd::NOP, none(), 0, 0)],
    )?;
    refused_or_pgm(c, &orb(3, PROG + 4), EINVAL, None).await
}

/// ORB cpa beyond guest memory: EFAULT, standing for a program check (§1.6; anchors.md
/// guest fault -> -EFAULT).
pub(crate) async fn cpa_outside_memory<B: Backend>(c: &Ctx<B>) -> CaseResult {
    refused_or_pgm(c, &orb(4, FAR), EFAULT, None).await
}

/// A CCW chained past the end of guest memory: EFAULT / program check (§1.6).
pub(crate) async fn chain_runs_off_memory<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let last = c.fx.memory_size as u32 - 8;
    c.program(last, &[ccw(cmd::NOP, CcwFlags::CC, 0, 0)])?;
    refused_or_pgm(c, &orb(5, last), EFAULT, None).await
}

/// Data area beyond guest memory: the pin fails, EINVAL, standing for a program check
/// (§1.6; anchors.md cp_prefetch: IDAL/pin -> -EINVAL).
pub(crate) async fn data_outside_memory<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.program(PROG, &[ccw(code, CcwFlags::SLI, len, FAR)])?;
    refused_or_pgm(c, &orb(6, PROG), EINVAL, Some(PROG + 8)).await
}

/// Data area that starts inside guest memory and ends outside: EINVAL (partial pin ->
/// unpin all, -EINVAL; anchors.md) / program check (§1.6).
pub(crate) async fn data_straddles_end<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    let at = c.fx.memory_size as u32 - u32::from(len) / 2;
    c.program(PROG, &[ccw(code, CcwFlags::SLI, len, at)])?;
    refused_or_pgm(c, &orb(7, PROG), EINVAL, Some(PROG + 8)).await
}

/// Command code 0x00 (class `xxxx0000`) is invalid: program check (§1.4, §1.6).
pub(crate) async fn invalid_command_0x00<B: Backend>(c: &Ctx<B>) -> CaseResult {
    c.program(PROG, &[raw_ccw(0x00, CcwFlags::SLI.bits(), 1, DATA)])?;
    refused_or_pgm(c, &orb(8, PROG), EINVAL, Some(PROG + 8)).await
}

/// Command code 0xF0 (class `xxxx0000`) is invalid (§1.4).
pub(crate) async fn invalid_command_0xf0<B: Backend>(c: &Ctx<B>) -> CaseResult {
    c.program(PROG, &[raw_ccw(0xF0, CcwFlags::SLI.bits(), 1, DATA)])?;
    refused_or_pgm(c, &orb(9, PROG), EINVAL, Some(PROG + 8)).await
}

/// Format-1 code 0x18 (low nibble 1000, not TIC) is invalid (§1.5).
pub(crate) async fn invalid_tic_like_0x18<B: Backend>(c: &Ctx<B>) -> CaseResult {
    c.program(PROG, &[raw_ccw(0x18, 0, 0, PROG2)])?;
    refused_or_pgm(c, &orb(10, PROG), EINVAL, Some(PROG + 8)).await
}

/// An invalid command after a valid one: program check at the second CCW (§1.6: cpa =
/// failing CCW + 8).
pub(crate) async fn invalid_command_in_chain<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.program(
        PROG,
        &[
            ccw(code, CcwFlags::CC | CcwFlags::SLI, len, DATA),
            raw_ccw(0x00, CcwFlags::SLI.bits(), 1, DATA2),
        ],
    )?;
    refused_or_pgm(c, &orb(11, PROG), EINVAL, Some(PROG + 16)).await
}

/// TIC target not doubleword aligned (§1.5).
pub(crate) async fn tic_misaligned_target<B: Backend>(c: &Ctx<B>) -> CaseResult {
    c.program(PROG, &[ccw(cmd::TIC, none(), 0, PROG2 + 4)])?;
    refused_or_pgm(c, &orb(12, PROG), EINVAL, None).await
}

/// TIC target beyond guest memory: EFAULT (anchors.md: TIC target missing -> -EFAULT).
pub(crate) async fn tic_target_outside_memory<B: Backend>(c: &Ctx<B>) -> CaseResult {
    c.program(PROG, &[ccw(cmd::TIC, none(), 0, FAR)])?;
    refused_or_pgm(c, &orb(13, PROG), EFAULT, None).await
}

/// A format-0 CCW other than TIC with count 0 is a program check (§1.7).
pub(crate) async fn format0_count_zero<B: Backend>(c: &Ctx<B>) -> CaseResult {
    c.program(PROG, &[ccw0(cmd::NOP, 0, 0, 0)])?;
    let mut o = CommandOrb::new(14, PROG);
    o.format = CcwFormat::Format0;
    refused_or_pgm(c, &o.emit(), EINVAL, Some(PROG + 8)).await
}

/// A format-0 program whose ORB cpa is above 16 MiB (§1.8: format-0 CCWs are 24-bit).
pub(crate) async fn format0_cpa_above_16m<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let mut o = CommandOrb::new(15, 0x0100_0000 + PROG);
    o.format = CcwFormat::Format0;
    refused_or_pgm(c, &o.emit(), EINVAL, None).await
}

/// A format-1 IDAW with bit 0 set is a program check (§8.2).
pub(crate) async fn idaw_fmt1_bit0<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.write(IDAL, &(0x8000_0000u32 | DATA).to_be_bytes())?;
    c.program(PROG, &[ccw(code, CcwFlags::IDA | CcwFlags::SLI, len, IDAL)])?;
    refused_or_pgm(c, &orb_idaw(16, PROG, false, false), EINVAL, Some(PROG + 8)).await
}

/// A format-2 IDAL not doubleword aligned (§8.3).
pub(crate) async fn idal_misaligned<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.write(IDAL + 4, &u64::from(DATA).to_be_bytes())?;
    c.program(
        PROG,
        &[ccw(code, CcwFlags::IDA | CcwFlags::SLI, len, IDAL + 4)],
    )?;
    refused_or_pgm(c, &orb_idaw(17, PROG, true, false), EINVAL, Some(PROG + 8)).await
}

/// A format-1 IDAL not word aligned (§8.3).
pub(crate) async fn idal_fmt1_misaligned<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.write(IDAL + 2, &DATA.to_be_bytes())?;
    c.program(
        PROG,
        &[ccw(code, CcwFlags::IDA | CcwFlags::SLI, len, IDAL + 2)],
    )?;
    refused_or_pgm(c, &orb_idaw(18, PROG, false, false), EINVAL, Some(PROG + 8)).await
}

/// The IDAL itself beyond guest memory: EFAULT (§1.6).
pub(crate) async fn idal_outside_memory<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.program(PROG, &[ccw(code, CcwFlags::IDA | CcwFlags::SLI, len, FAR)])?;
    refused_or_pgm(c, &orb_idaw(19, PROG, true, false), EFAULT, Some(PROG + 8)).await
}

/// An IDAW designating memory beyond the guest's: the pin fails, EINVAL / program check
/// (§1.6; anchors.md cp_prefetch).
pub(crate) async fn idaw_data_outside_memory<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.write(IDAL, &u64::from(FAR).to_be_bytes())?;
    c.program(PROG, &[ccw(code, CcwFlags::IDA | CcwFlags::SLI, len, IDAL)])?;
    refused_or_pgm(c, &orb_idaw(20, PROG, true, false), EINVAL, Some(PROG + 8)).await
}

/// A second IDAW that is not block aligned is a program check (§8.3: every IDAW after the
/// first designates a block start).
pub(crate) async fn second_idaw_unaligned<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    let first = DATA + 0x1000 - u32::from(len / 2);
    let mut idal = u64::from(first).to_be_bytes().to_vec();
    idal.extend(u64::from(DATA2 + 0x10).to_be_bytes());
    c.write(IDAL, &idal)?;
    c.program(PROG, &[ccw(code, CcwFlags::IDA | CcwFlags::SLI, len, IDAL)])?;
    refused_or_pgm(c, &orb_idaw(21, PROG, true, false), EINVAL, Some(PROG + 8)).await
}

/// A segment of 256 chained CCWs exceeds vfio-ccw's window: EINVAL, no program check
/// (anchors.md: ccwchain_calc_length > 255 -> -EINVAL; 2026 OOB read of CCW 257).
pub(crate) async fn segment_too_long<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let mut prog: Vec<[u8; 8]> = (0..255)
        .map(|_| ccw(cmd::NOP, CcwFlags::CC, 0, 0))
        .collect();
    prog.push(ccw(cmd::NOP, none(), 0, 0));
    c.program(PROG, &prog)?;
    refused_limit(c, &orb(22, PROG), EINVAL).await
}

/// A segment of exactly 255 CCWs is within the limit and runs (anchors.md: 255 per segment).
pub(crate) async fn segment_255_runs<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let mut prog: Vec<[u8; 8]> = (0..254)
        .map(|_| ccw(cmd::NOP, CcwFlags::CC, 0, 0))
        .collect();
    prog.push(ccw(cmd::NOP, none(), 0, 0));
    c.program(PROG, &prog)?;
    let done = c.run(&orb(23, PROG)).await?;
    ends_ok(&done, PROG + 255 * 8, 0)?;
    Ok(Verdict::Pass)
}

/// Seventeen chain segments (TIC to TIC targets 16 times) exceed vfio-ccw's 16: ENOMEM
/// (anchors.md 2026: max 16 segments, else -ENOMEM).
pub(crate) async fn seventeen_segments<B: Backend>(c: &Ctx<B>) -> CaseResult {
    segments(c, 17).await?;
    refused_limit(c, &orb(24, PROG), ENOMEM).await
}

/// Sixteen chain segments are within the limit and run (anchors.md: <= 16 segments).
pub(crate) async fn sixteen_segments_run<B: Backend>(c: &Ctx<B>) -> CaseResult {
    segments(c, 16).await?;
    let done = c.run(&orb(25, PROG)).await?;
    let last = PROG + 15 * 0x100;
    ends_ok(&done, last + 8, 0)?;
    Ok(Verdict::Pass)
}

/// Writes `n` segments 0x100 apart: NOP + TIC to the next, the last a lone NOP.
async fn segments<B: Backend>(c: &Ctx<B>, n: u32) -> Result<(), Failure> {
    for i in 0..n {
        let at = PROG + i * 0x100;
        if i + 1 < n {
            c.program(
                at,
                &[
                    ccw(cmd::NOP, CcwFlags::CC, 0, 0),
                    ccw(cmd::TIC, none(), 0, at + 0x100),
                ],
            )?;
        } else {
            c.program(at, &[ccw(cmd::NOP, none(), 0, 0)])?;
        }
    }
    Ok(())
}

/// A transport-mode ORB is refused with EOPNOTSUPP (anchors.md: TM ORB -> -EOPNOTSUPP).
pub(crate) async fn transport_mode_orb<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let o = ccw_types::TransportOrb {
        intparm: 26,
        key: 0,
        lpm: 0xFF,
        tcw: DATA,
        priorities: None,
    }
    .emit();
    match c.try_run(&o).await? {
        Err(CssError::TransportMode(_)) => {}
        Err(e) => ensure!(
            e.errno() == EOPNOTSUPP.raw(),
            "transport-mode ORB: {e} (want EOPNOTSUPP)"
        ),
        Ok(d) => {
            return Err(Failure(format!(
                "transport-mode ORB started: {}",
                d.irb.scsw
            )));
        }
    }
    c.still_works().await?;
    Ok(Verdict::Pass)
}

/// MIDA without the ORB's D bit: a program check (§1.3 MIDA, §1.6).
pub(crate) async fn midaw_without_orb_d<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.program(
        PROG,
        &[raw_ccw(
            code,
            (CcwFlags::MIDA | CcwFlags::SLI).bits(),
            len,
            IDAL,
        )],
    )?;
    refused_or_pgm(c, &orb(27, PROG), EOPNOTSUPP, Some(PROG + 8)).await
}

/// MIDA with the ORB's D bit: vfio-ccw does not translate MIDAW lists: EOPNOTSUPP, no
/// program check claimed (anchors.md feature table: MIDAW no).
pub(crate) async fn midaw_unsupported<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (code, len) = c.big();
    c.program(
        PROG,
        &[raw_ccw(
            code,
            (CcwFlags::MIDA | CcwFlags::SLI).bits(),
            len,
            IDAL,
        )],
    )?;
    let mut o = CommandOrb::new(28, PROG);
    o.midaw = true;
    o.format2_idaw = true;
    refused_limit(c, &o.emit(), EOPNOTSUPP).await
}

/// ORB cpa with bit 0 set (beyond 31 bits): EINVAL, an operand exception rather than a
/// program check (§1.8, §10.3).
pub(crate) async fn orb_cpa_bit0<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let mut bytes = orb(29, PROG).into_bytes();
    bytes[8] |= 0x80;
    let o = Orb::from_bytes(bytes);
    refused_limit(c, &o, EINVAL).await
}

/// ORB with reserved control bits set: EINVAL, operand exception (§2.1).
pub(crate) async fn orb_reserved_bits<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let mut bytes = orb(30, PROG).into_bytes();
    bytes[7] |= 0x3E;
    let o = Orb::from_bytes(bytes);
    refused_limit(c, &o, EINVAL).await
}

/// A format-1 TIC with a non-zero count is a program check (§1.5: flags and count of a
/// format-1 TIC must be zero).
pub(crate) async fn tic_with_count<B: Backend>(c: &Ctx<B>) -> CaseResult {
    c.program(PROG, &[raw_ccw(cmd::TIC, 0, 8, PROG2)])?;
    c.program(PROG2, &[ccw(cmd::NOP, none(), 0, 0)])?;
    refused_or_pgm(c, &orb(31, PROG), EINVAL, Some(PROG + 8)).await
}

/// Data chaining into a CCW of count 0 is a program check (§1.6: format-1 CCW reached by
/// data chaining with count 0).
pub(crate) async fn data_chain_count_zero<B: Backend>(c: &Ctx<B>) -> CaseResult {
    let (r, _) = c.chain_read().await?;
    c.program(
        PROG,
        &r.program(&[
            ccw(r.code, CcwFlags::CD, 4, DATA),
            ccw(r.code, CcwFlags::SLI, 0, DATA2),
        ]),
    )?;
    refused_or_pgm(c, &orb(32, PROG), EINVAL, Some(r.end(PROG, 2))).await
}
