// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The instruction handlers against guest memory: kvm-unit-tests `css.c` expectations,
//! vcss-reference §7.6/§7.7 vectors, program interruptions and the interruption queue.

use ccw_types::{
    ActivityControl as Ac, Crw, DeviceStatus, FunctionControl as Fc, StatusControl as Sc,
};

use super::*;
use crate::{ConditionCode as Cc, InstrError, ProgramInterruption};

fn is_operand(r: Result<Cc, InstrError>) -> bool {
    matches!(r, Err(InstrError::Program(ProgramInterruption::Operand(_))))
}

fn is_spec(r: Result<Cc, InstrError>) -> bool {
    matches!(
        r,
        Err(InstrError::Program(ProgramInterruption::Specification(_)))
    )
}

/// vcss-reference §7.6: STSCH 0.0.0000 after a subsystem reset, before any MSCH.
#[test]
fn stsch_after_reset_is_the_reference_schib() {
    let (css, _) = one_device(Mode::Run);
    let mem = memory();
    assert_eq!(css.stsch(&mem, sid(0), 0x1000), Ok(Cc::Cc0));
    let mut want = vec![0u8; 52];
    want[..16].copy_from_slice(&[
        0, 0, 0, 0, 0x00, 0x01, 0x00, 0x05, 0x80, 0, 0, 0x80, 0, 0, 0xFF, 0x80,
    ]);
    assert_eq!(get(&mem, 0x1000, 52), want);
}

/// KUT: STSCH and TSCH of a subchannel that does not exist give cc 3 and store nothing.
#[test]
fn stsch_and_tsch_of_a_nonexistent_subchannel_are_cc3() {
    let (mut css, _) = one_device(Mode::Run);
    let mem = memory();
    put(&mem, 0x1000, &[0xAA; 96]);
    assert_eq!(css.stsch(&mem, sid(1), 0x1000), Ok(Cc::Cc3));
    assert_eq!(css.tsch(&mem, sid(1), 0x1000), Ok(Cc::Cc3));
    assert_eq!(get(&mem, 0x1000, 96), vec![0xAA; 96]);
    // Another subchannel set or CSS image is not provided (MSS / MCSS-E not enabled).
    assert_eq!(css.stsch(&mem, 0x0003_0000, 0x1000), Ok(Cc::Cc3));
    assert_eq!(css.hsch(0x0003_0000), Ok(Cc::Cc3));
    assert_eq!(css.csch(sid(7)), Ok(Cc::Cc3));
}

/// QEMU: a hole below the highest installed number stores an all-zero SCHIB with cc 0.
#[test]
fn stsch_of_a_hole_stores_zeros() {
    let (mut css, _) = one_device(Mode::Run);
    let (dev, _) = TestDevice::boxed(Mode::Run);
    css.add_subchannel(2, 0x0007, 0, dev).unwrap();
    let mem = memory();
    put(&mem, 0x1000, &[0xAA; 52]);
    assert_eq!(css.stsch(&mem, sid(1), 0x1000), Ok(Cc::Cc0));
    assert_eq!(get(&mem, 0x1000, 52), vec![0; 52]);
    assert_eq!(css.stsch(&mem, sid(3), 0x1000), Ok(Cc::Cc3));
    assert_eq!(css.msch(&mem, sid(1), 0x1000), Ok(Cc::Cc3));
}

/// Subchannel-identification word rules (s390-io-reference §7.1).
#[test]
fn invalid_sid_words_are_operand_exceptions() {
    let (mut css, _) = one_device(Mode::Run);
    let mem = memory();
    // "one" bit missing; reserved bits 8-11; CSSID without M.
    for bad in [0x0000_0000u64, 0x0011_0000, 0x0101_0000] {
        assert!(is_operand(css.stsch(&mem, bad, 0x1000)), "{bad:#x}");
        assert!(is_operand(css.tsch(&mem, bad, 0x1000)), "{bad:#x}");
        assert!(is_operand(css.hsch(bad)));
        assert!(is_operand(css.csch(bad)));
        assert!(is_operand(css.xsch(bad)));
        assert!(is_operand(css.rsch(&mem, bad)));
    }
    // Bits 0-31 of the 64-bit GR1 are ignored.
    assert_eq!(css.stsch(&mem, 0xFFFF_FFFF_0001_0000, 0x1000), Ok(Cc::Cc0));
}

#[test]
fn misaligned_and_missing_operands() {
    let (mut css, _) = one_device(Mode::Run);
    let mem = memory();
    for off in 1..4 {
        assert!(is_spec(css.stsch(&mem, sid(0), 0x1000 + off)));
        assert!(is_spec(css.msch(&mem, sid(0), 0x1000 + off)));
        assert!(is_spec(css.ssch(&mem, sid(0), 0x1000 + off)));
        assert!(is_spec(css.tsch(&mem, sid(0), 0x1000 + off)));
        assert!(is_spec(css.tpi(&mem, 0x1000 + off, 0, 0)));
    }
    let beyond = 0x10_0000;
    for r in [
        css.stsch(&mem, sid(0), beyond),
        css.stsch(&mem, sid(9), beyond),
        css.msch(&mem, sid(0), beyond),
        css.ssch(&mem, sid(0), beyond),
        css.tsch(&mem, sid(0), beyond),
        css.stcrw(&mem, beyond),
    ] {
        assert_eq!(r, Err(ProgramInterruption::Addressing(beyond).into()));
    }
    assert_eq!(
        css.tpi(&mem, 0, 0xFF00_0000, u64::MAX - 0x10),
        Err(ProgramInterruption::Addressing(u64::MAX - 0x10).into())
    );
    assert_eq!(
        css.stsch(&mem, sid(0), u64::MAX - 3),
        Err(ProgramInterruption::Addressing(u64::MAX - 3).into())
    );
    // Straddling the end of memory.
    assert_eq!(
        css.stsch(&mem, sid(0), beyond - 16),
        Err(ProgramInterruption::Addressing(beyond - 16).into())
    );
}

/// KUT `test_stcrw`: misaligned operand is a specification exception; an empty queue gives
/// cc 1 with a zero word stored.
#[test]
fn stcrw_empty_queue_and_alignment() {
    let (mut css, seen) = one_device(Mode::Run);
    let mem = memory();
    assert!(is_spec(css.stcrw(&mem, 0x1001)));
    assert!(is_spec(css.stcrw(&mem, 0x1002)));
    put(&mem, 0x1000, &[0xFF; 4]);
    assert_eq!(css.stcrw(&mem, 0x1000), Ok(Cc::Cc1));
    assert_eq!(get(&mem, 0x1000, 4), [0; 4]);
    // §7.7: RCHP-like solicited report on CHPID 0, then cc 1 again.
    css.queue_crw(Crw::new().with_solicited(true).with_rsc(4).with_erc(2));
    assert_eq!(css.stcrw(&mem, 0x1000), Ok(Cc::Cc0));
    assert_eq!(get(&mem, 0x1000, 4), [0x44, 0x02, 0x00, 0x00]);
    assert_eq!(css.stcrw(&mem, 0x1000), Ok(Cc::Cc1));
    assert_eq!(get(&mem, 0x1000, 4), [0; 4]);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![Notification::ChannelReportPending]
    );
}

/// §7.7: hot-plug pair, then a lost report sets R on the next one.
#[test]
fn crw_chain_and_overflow_through_stcrw() {
    let (mut css, seen) = one_device(Mode::Run);
    css.set_crw_queue(crate::CrwQueue::new(2));
    let mem = memory();
    css.queue_crw(
        Crw::new()
            .with_chained(true)
            .with_rsc(3)
            .with_erc(4)
            .with_rsid(1),
    );
    css.queue_crw(Crw::new().with_rsc(3).with_erc(4));
    css.queue_crw(Crw::new().with_rsc(4).with_erc(2)); // lost: the queue holds two
    let mut got = Vec::new();
    while css.stcrw(&mem, 0x1000) == Ok(Cc::Cc0) {
        got.push(get(&mem, 0x1000, 4));
    }
    assert_eq!(
        got,
        vec![vec![0x13, 0x04, 0x00, 0x01], vec![0x03, 0x04, 0x00, 0x00]]
    );
    css.queue_crw(Crw::new().with_solicited(true).with_rsc(4).with_erc(2));
    assert_eq!(css.stcrw(&mem, 0x1000), Ok(Cc::Cc0));
    assert_eq!(get(&mem, 0x1000, 4), [0x64, 0x02, 0x00, 0x00]);
    // One machine check per batch: the first push, then again after the empty STCRW.
    assert_eq!(seen.lock().unwrap().len(), 2);
}

fn schib_with_word1(css: &Vcss, mem: &GuestMemoryMmap<()>, word1: u32) {
    assert_eq!(css.stsch(mem, sid(0), 0x1000), Ok(Cc::Cc0));
    put(mem, 0x1004, &word1.to_be_bytes());
}

/// KUT `test_msch` reserved bits with the corrected §5.2: bits 0, 1, 6, 7 rejected, bit 5
/// ignored (not stored either).
#[test]
fn msch_reserved_word1_bits() {
    let (mut css, _) = one_device(Mode::Run);
    let mem = memory();
    for bit in 0..8 {
        schib_with_word1(&css, &mem, 0x0001_0005 | (0x8000_0000 >> bit));
        let r = css.msch(&mem, sid(0), 0x1000);
        match bit {
            0 | 1 | 6 | 7 => assert!(is_operand(r), "bit {bit}"),
            _ => assert_eq!(r, Ok(Cc::Cc0), "bit {bit}"),
        }
    }
    assert_eq!(css.stsch(&mem, sid(0), 0x1000), Ok(Cc::Cc0));
    // The last accepted operand had bit 5 alone: ISC 0 stored, bit 5 not.
    assert_eq!(get(&mem, 0x1004, 4), [0x00, 0x01, 0x00, 0x05]);
    schib_with_word1(&css, &mem, 0x0C01_0005);
    assert_eq!(css.msch(&mem, sid(0), 0x1000), Ok(Cc::Cc0));
    assert_eq!(css.stsch(&mem, sid(0), 0x1000), Ok(Cc::Cc0));
    assert_eq!(
        get(&mem, 0x1004, 4),
        [0x08, 0x01, 0x00, 0x05],
        "ISC 1, bit 5 dropped"
    );
    // Word 6 reserved bits, limit mode 3.
    schib_with_word1(&css, &mem, 0x0061_0005);
    assert!(is_operand(css.msch(&mem, sid(0), 0x1000)));
    schib_with_word1(&css, &mem, 0x0001_0005);
    put(&mem, 0x1000 + 24, &[0, 0, 0, 0x10]);
    assert!(is_operand(css.msch(&mem, sid(0), 0x1000)));
}

/// KUT: an ORB of all 0xFF is an operand exception (reserved bits), before any cc.
#[test]
fn orb_of_all_ff_is_an_operand_exception() {
    let (mut css, _) = one_device(Mode::Run);
    let mem = memory();
    put(&mem, 0x2000, &[0xFF; 32]);
    assert!(is_operand(css.ssch(&mem, sid(0), 0x2000)));
    assert!(is_operand(css.ssch(&mem, sid(5), 0x2000)));
    // A transport-mode ORB: the facility is not installed.
    let mut orb = CommandOrb::new(0, 0x3000).emit();
    orb.ctrl.set_transport(true);
    orb.ctrl.set_format1(false);
    orb.ctrl.set_prefetch(false);
    orb.ctrl.set_format2_idaw(false);
    put(&mem, 0x2000, &orb.into_bytes()[..12]);
    assert!(is_operand(css.ssch(&mem, sid(0), 0x2000)));
}

/// The KUT sequence of vcss-reference §7.6: enable with ISC 3, SENSE ID, interruption code at
/// lowcore 0xB8, TSCH.
#[test]
fn kut_sense_id_sequence() {
    let (mut css, seen) = one_device(Mode::Run);
    let mem = memory();
    // Disabled: SSCH cc 3.
    put(
        &mem,
        0x2000,
        &[0, 1, 0, 0, 0x00, 0xA0, 0x80, 0x00, 0, 0, 0x30, 0],
    );
    assert_eq!(css.ssch(&mem, sid(0), 0x2000), Ok(Cc::Cc3));
    schib_with_word1(&css, &mem, 0x1881_0005);
    assert_eq!(css.msch(&mem, sid(0), 0x1000), Ok(Cc::Cc0));
    put(
        &mem,
        0x3000,
        &[0xE4, 0x20, 0x01, 0x00, 0x00, 0x00, 0x40, 0x00],
    );
    assert_eq!(css.ssch(&mem, sid(0), 0x2000), Ok(Cc::Cc0));
    assert_eq!(get(&mem, 0x4000, 8), [0xFF, 0x38, 0x32, 0x02, 0, 0, 0, 0]);
    assert_eq!(seen.lock().unwrap().len(), 1);
    // ISC 3 masked: nothing for TPI.
    let prefix = 0x8000;
    assert_eq!(css.tpi(&mem, 0, cr6(2), prefix), Ok(Cc::Cc0));
    assert_eq!(css.tpi(&mem, 0, cr6(3), prefix), Ok(Cc::Cc1));
    assert_eq!(
        get(&mem, prefix + 0xB8, 12),
        [0, 1, 0, 0, 0, 1, 0, 0, 0x18, 0, 0, 0]
    );
    // The interruption is cleared; the subchannel stays status pending.
    assert_eq!(css.tpi(&mem, 0, cr6(3), prefix), Ok(Cc::Cc0));
    assert_eq!(css.tsch(&mem, sid(0), 0x5000), Ok(Cc::Cc0));
    let irb = get(&mem, 0x5000, 12);
    assert_eq!(irb[3] & 0x1F, 0x07, "SC primary + secondary + pending");
    assert_eq!(irb[8], 0x0C, "CE + DE");
    assert_eq!(irb[9], 0x00);
    assert_eq!(&irb[4..8], &[0, 0, 0x30, 0x08], "CCW address + 8");
    assert_eq!(&irb[10..12], &[0x00, 0xF8], "residual 256 - 8");
    // Now idle: TSCH cc 1 stores the IRB but changes nothing.
    assert_eq!(css.tsch(&mem, sid(0), 0x5000), Ok(Cc::Cc1));
}

/// TPI with an operand address stores 8 bytes (SID word, intparm); TSCH withdraws the
/// interruption (KVM and Hercules, vcss-reference §3.2).
#[test]
fn tpi_operand_and_tsch_withdraws() {
    let (mut css, _) = one_device(Mode::Run);
    let mem = memory();
    schib_with_word1(&css, &mem, 0x1881_0005);
    put(&mem, 0x1000, &[0x0F, 0x8A, 0x12, 0x00]);
    assert_eq!(css.msch(&mem, sid(0), 0x1000), Ok(Cc::Cc0));
    put(&mem, 0x3000, &[0x03, 0x20, 0, 0, 0, 0, 0, 0]);
    put(
        &mem,
        0x2000,
        &[
            0x0F, 0x8A, 0x12, 0x00, 0x00, 0x80, 0xFF, 0x00, 0, 0, 0x30, 0,
        ],
    );
    assert_eq!(css.ssch(&mem, sid(0), 0x2000), Ok(Cc::Cc0));
    assert!(css.interruption_pending(cr6(3)));
    put(&mem, 0x6000, &[0xAA; 12]);
    assert_eq!(css.tpi(&mem, 0x6000, cr6(3), 0), Ok(Cc::Cc1));
    assert_eq!(
        get(&mem, 0x6000, 12),
        [0, 1, 0, 0, 0x0F, 0x8A, 0x12, 0x00, 0xAA, 0xAA, 0xAA, 0xAA]
    );
    // Again pending through a new start; TSCH takes the status and the interruption.
    assert_eq!(css.tsch(&mem, sid(0), 0x5000), Ok(Cc::Cc0));
    assert_eq!(css.ssch(&mem, sid(0), 0x2000), Ok(Cc::Cc0));
    assert!(css.interruption_pending(cr6(3)));
    assert_eq!(css.tsch(&mem, sid(0), 0x5000), Ok(Cc::Cc0));
    assert!(!css.interruption_pending(0xFF00_0000));
}

fn enabled(mode: Mode) -> (Vcss, GuestMemoryMmap<()>) {
    let (css, _) = one_device(mode);
    let mem = memory();
    schib_with_word1(&css, &mem, 0x1881_0005);
    let mut css = css;
    assert_eq!(css.msch(&mem, sid(0), 0x1000), Ok(Cc::Cc0));
    put(&mem, 0x3000, &[0x03, 0x20, 0, 0, 0, 0, 0, 0]);
    put(
        &mem,
        0x2000,
        &[0, 0, 0, 1, 0x00, 0x80, 0xFF, 0x00, 0, 0, 0x30, 0],
    );
    (css, mem)
}

/// An asynchronous device: HSCH halts it, the halt completes with DE and CPA from the device;
/// a second start meanwhile is busy; `complete` after the halt is ignored.
#[test]
fn halt_of_an_asynchronous_program() {
    let (mut css, mem) = enabled(Mode::Async);
    assert_eq!(css.ssch(&mem, sid(0), 0x2000), Ok(Cc::Cc0));
    assert!(!css.interruption_pending(cr6(3)));
    assert_eq!(css.ssch(&mem, sid(0), 0x2000), Ok(Cc::Cc2));
    assert_eq!(
        css.xsch(sid(0)),
        Ok(Cc::Cc2),
        "active: cancel not applicable"
    );
    assert_eq!(css.hsch(sid(0)), Ok(Cc::Cc0));
    let s = css.subchannel(0).unwrap();
    assert_eq!(s.schib.scsw.ctrl.fc(), Fc::START | Fc::HALT);
    assert_eq!(
        s.schib.scsw.ctrl.sc(),
        Sc::PRIMARY | Sc::SECONDARY | Sc::PENDING
    );
    assert_eq!(s.schib.scsw.cpa.get(), 0x1008);
    assert!(css.interruption_pending(cr6(3)));
    let before = *css.subchannel(0).unwrap();
    css.complete(0, Ending::default());
    assert_eq!(*css.subchannel(0).unwrap(), before);
}

/// An asynchronous program completed by the VMM.
#[test]
fn asynchronous_completion() {
    let (mut css, mem) = enabled(Mode::Async);
    assert_eq!(css.ssch(&mem, sid(0), 0x2000), Ok(Cc::Cc0));
    css.complete(
        0,
        Ending {
            dstat: DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END,
            cpa: 0x3008,
            ..Ending::default()
        },
    );
    assert_eq!(
        css.take_interruption(cr6(3)).map(|c| c.intparm.get()),
        Some(1)
    );
}

/// CLEAR on a status-pending subchannel discards its interruption and makes a new one pending
/// (Hercules, vcss-reference §3.2): exactly one entry stays queued.
#[test]
fn csch_replaces_the_pending_interruption() {
    let (mut css, mem) = enabled(Mode::Run);
    assert_eq!(css.ssch(&mem, sid(0), 0x2000), Ok(Cc::Cc0));
    assert_eq!(css.csch(sid(0)), Ok(Cc::Cc0));
    assert!(css.take_interruption(cr6(3)).is_some());
    assert!(css.take_interruption(cr6(3)).is_none());
    assert_eq!(css.tsch(&mem, sid(0), 0x5000), Ok(Cc::Cc0));
    assert_eq!(
        get(&mem, 0x5000, 4),
        [0, 0, 0x10, 0x01],
        "FC clear, SC pending alone"
    );
}

/// Suspend and resume: the device suspends, RSCH re-fetches the CCW before the CPA.
#[test]
fn suspend_then_resume() {
    let (mut css, mem) = enabled(Mode::Suspend);
    // ORB with S = 1.
    put(&mem, 0x2004, &[0x08, 0x80, 0xFF, 0x00]);
    assert_eq!(css.ssch(&mem, sid(0), 0x2000), Ok(Cc::Cc0));
    let s = css.subchannel(0).unwrap();
    assert_eq!(s.schib.scsw.ctrl.ac(), Ac::SUSPENDED);
    assert_eq!(s.schib.scsw.ctrl.sc(), Sc::INTERMEDIATE | Sc::PENDING);
    assert_eq!(css.rsch(&mem, sid(0)), Ok(Cc::Cc1), "status pending");
    assert_eq!(css.tsch(&mem, sid(0), 0x5000), Ok(Cc::Cc0));
    assert_eq!(css.rsch(&mem, sid(0)), Ok(Cc::Cc0));
    let s = css.subchannel(0).unwrap();
    assert_eq!(
        s.schib.scsw.ctrl.sc(),
        Sc::PRIMARY | Sc::SECONDARY | Sc::PENDING
    );
    assert_eq!(s.schib.scsw.dstat, 0x0C);
}

/// No usable path: the start is accepted and ends with deferred cc 3 (QEMU).
#[test]
fn no_operational_path_gives_deferred_cc3() {
    let (mut css, mem) = enabled(Mode::Run);
    css.subchannel_mut(0).unwrap().schib.pmcw.pom = 0;
    assert_eq!(css.ssch(&mem, sid(0), 0x2000), Ok(Cc::Cc0));
    let s = css.subchannel(0).unwrap();
    assert_eq!(s.schib.scsw.ctrl.deferred_cc(), 3);
    assert_eq!(s.schib.scsw.ctrl.sc(), Sc::ALERT | Sc::PENDING);
    assert!(css.interruption_pending(cr6(3)));
}

/// Every handler over the FC x AC x SC states, through guest memory: the handler's cc and
/// state agree with the pure transition (tested exhaustively in `sch`), and an interruption is
/// queued exactly when the resulting state is status pending on an enabled subchannel.
#[test]
fn handlers_agree_with_the_pure_transitions_over_all_states() {
    let mem = memory();
    put(&mem, 0x3000, &[0x03, 0x20, 0, 0, 0, 0, 0, 0]);
    put(
        &mem,
        0x2000,
        &[0, 0, 0, 1, 0x00, 0x80, 0xFF, 0x00, 0, 0, 0x30, 0],
    );
    let mut n = 0;
    for fc in 0..8u8 {
        for ac in 0..128u8 {
            for sc in 0..32u8 {
                for op in 0..7 {
                    let (mut css, _) = one_device(Mode::Async);
                    {
                        let s = css.subchannel_mut(0).unwrap();
                        s.schib.pmcw.flags.set_enabled(true);
                        s.schib.pmcw.flags.set_isc(3);
                        let c = &mut s.schib.scsw.ctrl;
                        c.set_fc(Fc::from_bits(fc));
                        c.set_ac(Ac::from_bits(ac));
                        c.set_sc(Sc::from_bits(sc));
                    }
                    let mut pure = *css.subchannel(0).unwrap();
                    let (cc, want) = match op {
                        6 => (
                            css.msch(&mem, sid(0), 0x1000),
                            crate::sch::msch(
                                &mut pure,
                                &ccw_types::Schib::from_bytes(
                                    get(&mem, 0x1000, 52).try_into().unwrap(),
                                ),
                            )
                            .unwrap(),
                        ),
                        0 => (css.hsch(sid(0)), crate::sch::hsch(&mut pure)),
                        1 => (css.csch(sid(0)), crate::sch::csch(&mut pure)),
                        2 => (css.xsch(sid(0)), crate::sch::xsch(&mut pure)),
                        3 => (css.rsch(&mem, sid(0)), crate::sch::rsch(&mut pure)),
                        4 => (
                            css.ssch(&mem, sid(0), 0x2000),
                            crate::sch::ssch(
                                &mut pure,
                                &ccw_types::Orb::read_from(&get(&mem, 0x2000, 12)).unwrap(),
                            )
                            .unwrap(),
                        ),
                        _ => (
                            css.tsch(&mem, sid(0), 0x5000),
                            crate::sch::tsch(&mut pure).0,
                        ),
                    };
                    assert_eq!(cc, Ok(want), "op {op} fc {fc} ac {ac:#x} sc {sc:#x}");
                    let after = css.subchannel(0).unwrap();
                    if want != Cc::Cc0 || matches!(op, 2 | 5 | 6) {
                        assert_eq!(*after, pure, "op {op} fc {fc} ac {ac:#x} sc {sc:#x}");
                    }
                    assert_eq!(
                        css.interruption_pending(cr6(3)),
                        after.status_pending() && want == Cc::Cc0 && !matches!(op, 2 | 5 | 6),
                        "op {op} fc {fc} ac {ac:#x} sc {sc:#x}"
                    );
                    n += 1;
                }
            }
        }
    }
    assert_eq!(n, 8 * 128 * 32 * 7);
}

/// Guest memory that is read-only from `ro` on: stores there are protection exceptions.
struct ReadOnlyFrom<'a> {
    mem: &'a GuestMemoryMmap<()>,
    ro: u64,
}

impl GuestIo for ReadOnlyFrom<'_> {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), u64> {
        self.mem.read_at(addr, buf)
    }
    fn write_at(&self, addr: u64, data: &[u8]) -> Result<(), u64> {
        if addr + data.len() as u64 > self.ro {
            return Err(addr);
        }
        self.mem.write_at(addr, data)
    }
    fn accessible(&self, addr: u64, len: usize, write: bool) -> bool {
        (!write || addr + len as u64 <= self.ro) && self.mem.accessible(addr, len, write)
    }
}

/// Stores into read-only storage are protection exceptions and change nothing: STSCH, TSCH
/// (status stays pending), STCRW (the report stays queued), TPI (the interruption stays).
#[test]
fn stores_into_read_only_storage_are_protection_exceptions() {
    let (mut css, mem) = enabled(Mode::Run);
    assert_eq!(css.ssch(&mem, sid(0), 0x2000), Ok(Cc::Cc0));
    css.queue_crw(Crw::new().with_rsc(3).with_erc(4));
    let ro = ReadOnlyFrom {
        mem: &mem,
        ro: 0x9000,
    };
    let before = *css.subchannel(0).unwrap();
    let prot = |a| Err(ProgramInterruption::Protection(a).into());
    assert_eq!(css.stsch(&ro, sid(0), 0x9000), prot(0x9000));
    assert_eq!(css.tsch(&ro, sid(0), 0x9000), prot(0x9000));
    assert_eq!(css.stcrw(&ro, 0x9000), prot(0x9000));
    assert_eq!(css.tpi(&ro, 0x9000, cr6(3), 0), prot(0x9000));
    assert_eq!(css.tpi(&ro, 0, cr6(3), 0x9000), prot(0x90B8));
    assert_eq!(*css.subchannel(0).unwrap(), before);
    assert!(css.interruption_pending(cr6(3)));
    assert_eq!(css.stcrw(&mem, 0x1000), Ok(Cc::Cc0));
    assert_eq!(css.tsch(&mem, sid(0), 0x1000), Ok(Cc::Cc0));
    // Fetches from read-only storage are fine.
    assert_eq!(css.ssch(&ro, sid(0), 0x2000), Ok(Cc::Cc0));
}

/// Unsolicited status (e.g. attention) only on an enabled, idle subchannel without pending
/// status (QEMU `css_conditional_io_interrupt`).
#[test]
fn unsolicited_status() {
    let (mut css, _) = one_device(Mode::Run);
    assert!(
        !css.unsolicited(0, DeviceStatus::ATTENTION),
        "disabled: dropped"
    );
    let (mut css, mem) = enabled(Mode::Run);
    assert!(css.unsolicited(0, DeviceStatus::ATTENTION));
    assert!(
        !css.unsolicited(0, DeviceStatus::ATTENTION),
        "already pending"
    );
    assert!(
        !css.unsolicited(9, DeviceStatus::ATTENTION),
        "no such subchannel"
    );
    assert_eq!(css.tsch(&mem, sid(0), 0x5000), Ok(Cc::Cc0));
    assert_eq!(
        get(&mem, 0x5000, 12),
        [0, 0, 0, 0x11, 0, 0, 0, 0, 0x80, 0, 0, 0]
    );
}
