// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Exhaustive checks of the instruction semantics over every FC x AC x SC combination of an
//! operational subchannel (8 x 128 x 32 = 32768 states), plus the FC x SC combinations (AC
//! none and all) of the three not-operational E/V settings, against oracles written from
//! reference §10.

use super::*;
use ccw_types::CommandOrb;
use zerocopy::big_endian::U64;

fn all_states() -> impl Iterator<Item = SchState> {
    (0..8u8).flat_map(|fc| {
        (0..128u8).flat_map(move |ac| {
            (0..32u8).flat_map(move |sc| {
                (0..4u8)
                    .filter(move |&ev| ev == 3 || ac == 0 || ac == 0x7F)
                    .map(move |ev| {
                        let mut s = SchState::new(0x0042);
                        s.schib.pmcw.flags.set_enabled(ev & 1 != 0);
                        s.schib.pmcw.flags.set_dnv(ev & 2 != 0);
                        let c = &mut s.schib.scsw.ctrl;
                        c.set_fc(Fc::from_bits(fc));
                        c.set_ac(Ac::from_bits(ac));
                        c.set_sc(Sc::from_bits(sc));
                        s
                    })
            })
        })
    })
}

fn op(s: &SchState) -> bool {
    s.schib.pmcw.flags.dnv() && s.schib.pmcw.flags.enabled()
}
fn pending(s: &SchState) -> bool {
    s.schib.scsw.ctrl.sc().contains(Sc::PENDING)
}

/// Applies `f`; asserts the state is unchanged when the cc is not 0; returns (cc, before).
fn each(
    f: impl Fn(&mut SchState) -> ConditionCode,
    check: impl FnMut(&SchState, ConditionCode, &SchState),
) -> usize {
    each_with(|_| {}, f, check)
}

fn each_with(
    prep: impl Fn(&mut SchState),
    f: impl Fn(&mut SchState) -> ConditionCode,
    mut check: impl FnMut(&SchState, ConditionCode, &SchState),
) -> usize {
    let mut n = 0;
    for mut before in all_states() {
        prep(&mut before);
        let mut s = before;
        let cc = f(&mut s);
        if cc != ConditionCode::Cc0 {
            assert_eq!(s, before, "cc {cc:?} changed the state");
        }
        check(&before, cc, &s);
        n += 1;
    }
    n
}

#[test]
fn ssch_condition_codes_and_transitions() {
    let orb = CommandOrb::new(0xAABB_CCDD, 0x1000).emit();
    let n = each(
        |s| ssch(s, &orb).unwrap(),
        |b, cc, a| {
            let want = if !op(b) {
                ConditionCode::Cc3
            } else if pending(b) {
                ConditionCode::Cc1
            } else if !b.schib.scsw.ctrl.fc().is_empty() {
                ConditionCode::Cc2
            } else {
                ConditionCode::Cc0
            };
            assert_eq!(cc, want, "{:?}", b.schib.scsw);
            if cc == ConditionCode::Cc0 {
                let c = a.schib.scsw.ctrl;
                assert_eq!(c.fc(), Fc::START);
                assert_eq!(c.ac(), Ac::START_PENDING);
                assert_eq!(c.sc(), Sc::NONE);
                assert!(c.format1());
                assert!(!c.prefetch(), "only F is reflected (QEMU)");
                assert_eq!(a.schib.pmcw.intparm.get(), 0xAABB_CCDD);
                assert_eq!(a.schib.pmcw.lpm, 0xFF);
            }
        },
    );
    assert_eq!(n, 32_768 + 3 * 8 * 2 * 32);
}

#[test]
fn ssch_operand_exceptions_and_path_mask() {
    let mut s = SchState::new(1);
    s.schib.pmcw.flags.set_enabled(true);
    let mut orb = CommandOrb::new(0, 0x1000).emit();
    orb.ctrl.set_reserved(2);
    assert!(matches!(
        ssch(&mut s, &orb),
        Err(OperandException::Operand(_))
    ));
    let mut orb = CommandOrb::new(0, 0x1000).emit();
    orb.cpa = U32::new(0x8000_1000);
    assert!(ssch(&mut s, &orb).is_err());
    let mut orb = CommandOrb::new(0, 0x1000).emit();
    orb.ctrl.set_transport(true);
    orb.ctrl.set_format1(false);
    orb.ctrl.set_prefetch(false);
    orb.ctrl.set_format2_idaw(false);
    assert!(matches!(
        ssch(&mut s, &orb),
        Err(OperandException::NotInstalled(_))
    ));
    // LPM sharing no path with the PAM: immediate cc 3 (Hercules).
    let mut o = CommandOrb::new(0, 0x1000);
    o.lpm = 0x40;
    assert_eq!(ssch(&mut s, &o.emit()), Ok(ConditionCode::Cc3));
    assert_eq!(s.schib.scsw.ctrl.fc(), Fc::NONE);
}

#[test]
fn hsch_condition_codes_and_transitions() {
    each(hsch, |b, cc, a| {
        let sc = b.schib.scsw.ctrl.sc();
        let fc = b.schib.scsw.ctrl.fc();
        let ac = b.schib.scsw.ctrl.ac();
        let intermediate_only = sc == Sc::INTERMEDIATE | Sc::PENDING;
        let want = if !op(b) {
            ConditionCode::Cc3
        } else if pending(b) && !intermediate_only {
            ConditionCode::Cc1
        } else if fc.intersects(Fc::HALT | Fc::CLEAR) {
            ConditionCode::Cc2
        } else {
            ConditionCode::Cc0
        };
        assert_eq!(cc, want);
        if cc == ConditionCode::Cc0 {
            let c = a.schib.scsw.ctrl;
            assert_eq!(c.fc(), fc | Fc::HALT, "start stays set with halt");
            assert_eq!(c.ac(), ac | Ac::HALT_PENDING);
            let withdrawn =
                intermediate_only && ac.contains(Ac::SUBCHANNEL_ACTIVE | Ac::DEVICE_ACTIVE);
            assert_eq!(c.sc(), if withdrawn { Sc::NONE } else { sc });
        }
    });
}

#[test]
fn csch_is_cc0_or_cc3() {
    each(csch, |b, cc, a| {
        if !op(b) {
            assert_eq!(cc, ConditionCode::Cc3);
        } else {
            assert_eq!(cc, ConditionCode::Cc0);
            let c = a.schib.scsw.ctrl;
            assert_eq!(c.fc(), Fc::CLEAR);
            assert_eq!(c.ac(), Ac::CLEAR_PENDING);
            assert_eq!(c.sc(), b.schib.scsw.ctrl.sc());
        }
    });
}

#[test]
fn xsch_condition_codes_and_transitions() {
    each(xsch, |b, cc, a| {
        let fc = b.schib.scsw.ctrl.fc();
        let ac = b.schib.scsw.ctrl.ac();
        let cancellable = fc == Fc::START
            && ac.intersects(Ac::START_PENDING | Ac::RESUME_PENDING | Ac::SUSPENDED)
            && !ac.contains(Ac::SUBCHANNEL_ACTIVE);
        let want = if !op(b) {
            ConditionCode::Cc3
        } else if pending(b) {
            ConditionCode::Cc1
        } else if cancellable {
            ConditionCode::Cc0
        } else {
            ConditionCode::Cc2
        };
        assert_eq!(cc, want);
        if cc == ConditionCode::Cc0 {
            let c = a.schib.scsw.ctrl;
            assert!(c.fc().is_empty());
            assert!(
                !c.ac()
                    .intersects(Ac::START_PENDING | Ac::RESUME_PENDING | Ac::SUSPENDED)
            );
            assert!(!c.sc().contains(Sc::PENDING), "no interruption follows");
        }
    });
}

#[test]
fn rsch_condition_codes_and_transitions() {
    for suspend_ctl in [false, true] {
        each_with(
            |s| s.orb.set_suspend(suspend_ctl),
            rsch,
            |b, cc, a| {
                let want = if !op(b) {
                    ConditionCode::Cc3
                } else if pending(b) {
                    ConditionCode::Cc1
                } else if b.schib.scsw.ctrl.fc() == Fc::START
                    && b.schib.scsw.ctrl.ac() == Ac::SUSPENDED
                    && suspend_ctl
                {
                    ConditionCode::Cc0
                } else {
                    ConditionCode::Cc2
                };
                assert_eq!(cc, want);
                if cc == ConditionCode::Cc0 {
                    assert_eq!(a.schib.scsw.ctrl.ac(), Ac::SUSPENDED | Ac::RESUME_PENDING);
                }
            },
        );
    }
}

#[test]
fn tsch_follows_table_10_4() {
    each(
        |s| tsch(s).0,
        |b, cc, a| {
            let sc = b.schib.scsw.ctrl.sc();
            let fc = b.schib.scsw.ctrl.fc();
            let ac = b.schib.scsw.ctrl.ac();
            let want = if !op(b) {
                ConditionCode::Cc3
            } else if sc.contains(Sc::PENDING) {
                ConditionCode::Cc0
            } else {
                ConditionCode::Cc1
            };
            assert_eq!(cc, want);
            if cc != ConditionCode::Cc0 {
                return;
            }
            let c = a.schib.scsw.ctrl;
            assert_eq!(c.sc(), Sc::NONE, "status is cleared");
            let pendings =
                Ac::RESUME_PENDING | Ac::START_PENDING | Ac::HALT_PENDING | Ac::CLEAR_PENDING;
            let active = Ac::SUBCHANNEL_ACTIVE | Ac::DEVICE_ACTIVE;
            if sc != Sc::INTERMEDIATE | Sc::PENDING {
                assert!(c.fc().is_empty());
                assert_eq!(c.ac(), ac & active);
            } else if fc.contains(Fc::START) && ac.contains(Ac::SUSPENDED) {
                if fc.contains(Fc::HALT) {
                    assert!(c.fc().is_empty());
                    assert_eq!(c.ac(), ac & active);
                } else {
                    assert_eq!(c.fc(), fc);
                    assert_eq!(c.ac(), ac - Ac::RESUME_PENDING);
                }
            } else {
                assert_eq!(c.fc(), fc);
                assert_eq!(c.ac(), ac);
            }
            let _ = pendings;
            // A second TEST SUBCHANNEL finds nothing pending.
            let mut again = *a;
            assert_eq!(tsch(&mut again).0, ConditionCode::Cc1);
            assert_eq!(again, *a);
        },
    );
}

#[test]
fn msch_condition_codes() {
    let mut new = SchState::new(0x0042).schib;
    new.pmcw.flags.set_enabled(true);
    new.pmcw.flags.set_isc(5);
    new.pmcw.intparm = U32::new(77);
    each(
        |s| msch(s, &new).unwrap(),
        |b, cc, a| {
            let want = if !b.schib.pmcw.flags.dnv() {
                ConditionCode::Cc0
            } else if pending(b) {
                ConditionCode::Cc1
            } else if !b.schib.scsw.ctrl.fc().is_empty() {
                ConditionCode::Cc2
            } else {
                ConditionCode::Cc0
            };
            assert_eq!(cc, want);
            if cc == ConditionCode::Cc0 && b.schib.pmcw.flags.dnv() {
                assert!(a.schib.pmcw.flags.enabled());
                assert_eq!(a.schib.pmcw.flags.isc(), 5);
                assert_eq!(a.schib.pmcw.intparm.get(), 77);
                assert_eq!(
                    a.schib.pmcw.flags.devno(),
                    0x0042,
                    "devno is not modifiable"
                );
            } else if cc == ConditionCode::Cc0 {
                assert_eq!(a, b, "V = 0: no action");
            }
        },
    );
}

#[test]
fn msch_operand_exceptions() {
    let mut s = SchState::new(1);
    let mut new = s.schib;
    new.pmcw.flags.set_reserved(1);
    assert!(msch(&mut s, &new).is_err());
    // Corrected §5.2: bits 0, 1, 6, 7 are rejected, bit 5 is ignored.
    for bit in [0u32, 1, 6, 7] {
        let mut new = s.schib;
        new.pmcw.flags = ccw_types::PmcwFlags::from_bits(U32::new(
            new.pmcw.flags.into_bits().get() | (0x8000_0000 >> bit),
        ));
        assert!(msch(&mut s, &new).is_err(), "bit {bit}");
    }
    let mut new = s.schib;
    new.pmcw.flags =
        ccw_types::PmcwFlags::from_bits(U32::new(new.pmcw.flags.into_bits().get() | 0x0400_0000));
    let mut t = s;
    assert_eq!(msch(&mut t, &new), Ok(ConditionCode::Cc0));
    assert_eq!(
        t.schib.pmcw.flags.into_bits().get() & 0x0400_0000,
        0,
        "bit 5 is not stored"
    );
    let mut new = s.schib;
    new.pmcw.flags.set_limit_mode(3);
    assert!(msch(&mut s, &new).is_err());
    let mut new = s.schib;
    new.pmcw.chars.set_xmwme(true);
    assert!(matches!(
        msch(&mut s, &new),
        Err(OperandException::NotInstalled(_))
    ));
    let mut new = s.schib;
    new.pmcw.chars.set_mbfc(true);
    new.mba = U64::new(0x1020);
    assert!(msch(&mut s, &new).is_err());
    assert_eq!(s, SchState::new(1));
}

fn started() -> SchState {
    let mut s = SchState::new(5);
    s.schib.pmcw.flags.set_enabled(true);
    assert_eq!(
        ssch(&mut s, &CommandOrb::new(1, 0x1000).emit()),
        Ok(ConditionCode::Cc0)
    );
    s
}

#[test]
fn normal_ending_bytes() {
    let mut s = started();
    begin_start(&mut s, 0x80);
    end_start(
        &mut s,
        &Ending {
            dstat: DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END,
            cpa: 0x1008,
            ..Ending::default()
        },
    );
    let (cc, irb) = tsch(&mut s);
    assert_eq!(cc, ConditionCode::Cc0);
    let b = irb.into_bytes();
    // Reference §13.3 as QEMU stores it (F only).
    assert_eq!(
        &b[..16],
        &[
            0x00, 0x80, 0x40, 0x07, 0, 0, 0x10, 0x08, 0x0C, 0, 0, 0, 0x00, 0x80, 0, 0
        ]
    );
    assert!(b[16..].iter().all(|&x| x == 0));
    // Afterwards: idle, leftovers of the SCSW stay (reference §13.3).
    assert_eq!(
        s.schib.scsw.into_bytes(),
        [0x00, 0x80, 0x00, 0x00, 0, 0, 0x10, 0x08, 0x0C, 0, 0, 0]
    );
}

#[test]
fn clear_result_is_status_pending_alone() {
    let mut s = started();
    begin_start(&mut s, 0x80);
    s.schib.pmcw.pom = 0x7F;
    assert_eq!(csch(&mut s), ConditionCode::Cc0);
    clear_complete(&mut s);
    assert_eq!(
        s.schib.scsw.into_bytes(),
        [0x00, 0x00, 0x10, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(s.schib.pmcw.pom, 0xFF);
    assert_eq!(s.schib.pmcw.lpum, 0);
}

/// HALT SUBCHANNEL (cc 0 expected) and its completion with the current CCW at `cpa`;
/// returns the resulting SCSW bytes.
fn halted(mut s: SchState, cpa: u32) -> [u8; 12] {
    assert_eq!(hsch(&mut s), ConditionCode::Cc0);
    halt_complete(&mut s, cpa);
    s.schib.scsw.into_bytes()
}

#[test]
fn halt_results() {
    // Active: DE, primary + secondary, cpa of the current CCW.
    let mut s = started();
    begin_start(&mut s, 0x80);
    assert_eq!(
        halted(s, 0x1010),
        [0x00, 0x80, 0x60, 0x07, 0, 0, 0x10, 0x10, 0x04, 0, 0, 0]
    );
    // Start pending, not started: status pending alone, no device status.
    assert_eq!(
        halted(started(), 0),
        [0x00, 0x80, 0x60, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    // Idle: a halt signal makes the device present device end.
    let mut s = SchState::new(5);
    s.schib.pmcw.flags.set_enabled(true);
    assert_eq!(
        halted(s, 0),
        [0x00, 0x00, 0x20, 0x03, 0, 0, 0, 0, 0x04, 0, 0, 0]
    );
}

#[test]
fn deferred_cc3_with_path_not_operational() {
    let mut s = started();
    deferred_cc(&mut s, 3, 0x80);
    let (_, irb) = tsch(&mut s);
    // CC 3, F, N; FC start; SC alert + pending.
    assert_eq!(&irb.scsw.into_bytes()[..4], &[0x03, 0x81, 0x40, 0x11]);
    assert_eq!(s.schib.pmcw.pnom, 0x80);
}

#[test]
fn intermediate_status_merges_into_the_final_one() {
    let mut s = started();
    begin_start(&mut s, 0x80);
    intermediate(&mut s, 0x1008, true, false);
    end_start(
        &mut s,
        &Ending {
            dstat: DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END,
            cpa: 0x1010,
            ..Ending::default()
        },
    );
    let b = s.schib.scsw.into_bytes();
    assert_eq!(&b[..4], &[0x00, 0x80, 0x40, 0x0F]);
    assert_eq!(b[9], 0x80);
}
