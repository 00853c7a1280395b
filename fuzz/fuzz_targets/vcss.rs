// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Fuzzes the guest-facing channel subsystem (`vcss`): arbitrary sequences of the I/O
//! instructions a guest can issue (STSCH, MSCH, SSCH, TSCH, HSCH, CSCH, XSCH, RSCH, TPI, STCRW,
//! CHSC, RCHP), with arbitrary register values and operand addresses, over guest memory the
//! input also writes, against three subchannels (0.0.0000, 0.0.0001, 0.0.0003: a hole at 2)
//! whose devices end, suspend, find no path or run asynchronously as the input says.
//!
//! Input: byte 0 = device behaviour seed; then 4-byte operations `[op, gr1 choice, addr choice,
//! value]`. Ops 0-11 are instructions; 12 writes `value` into guest memory at the chosen
//! address (so operands, ORBs, SCHIBs, CCWs and CHSC requests are built by the input itself);
//! 13 completes an asynchronous device; 14 presents unsolicited status; 15 queues a channel
//! report.
//!
//! Checked after every operation: no panic; a program interruption suppresses the instruction
//! (guest memory, every subchannel's state and the pending interruption are unchanged); TSCH
//! cc 0 leaves the subchannel no longer status pending; STCRW cc 1 stores a zero word; an
//! interruption TPI presents names a subchannel that is status pending and enabled; SSCH cc 0
//! leaves the start function in the SCSW.

#![no_main]

use std::sync::{Arc, Mutex};

use ccw_types::{CommandOrb, Crw, DeviceStatus, FunctionControl, SubchannelStatus};
use libfuzzer_sys::fuzz_target;
use vcss::InstrError;
use vcss::{ConditionCode, Device, Ending, GuestIo, Outcome, Vcss};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Guest storage: 16 KiB (the operand window lies in its second page).
const GUEST: u64 = 0x4000;
/// Installed subchannel numbers (a hole at 2: STSCH answers a zero SCHIB there).
const SCHS: [u16; 3] = [0, 1, 3];
/// CR6 with every ISC enabled.
const ALL_ISCS: u64 = 0xFF00_0000;

/// A device whose behaviour the input picks: it fetches the first CCW (so a bad CPA reaches
/// guest storage checks) and ends, suspends, finds no path or goes asynchronous.
#[derive(Debug)]
struct Scripted {
    seed: Arc<Mutex<u8>>,
}

impl Scripted {
    fn next(&self) -> u8 {
        let mut s = self.seed.lock().unwrap();
        *s = s.wrapping_mul(31).wrapping_add(17);
        *s
    }

    fn run(&self, mem: &dyn GuestIo, cpa: u32) -> Outcome {
        let mut ccw = [0u8; 8];
        if mem.read_at(u64::from(cpa), &mut ccw).is_err() {
            return Outcome::Ended(Ending {
                dstat: DeviceStatus::NONE,
                cstat: SubchannelStatus::PROGRAM_CHECK,
                cpa,
                ..Ending::default()
            });
        }
        let r = self.next();
        match r % 5 {
            0 => Outcome::Suspended {
                cpa: cpa.wrapping_add(8),
            },
            1 => Outcome::NoPath { pnom: 0x80 },
            2 => Outcome::InProgress,
            _ => Outcome::Ended(Ending {
                dstat: DeviceStatus::from_bits(r & 0xFE)
                    | DeviceStatus::CHANNEL_END
                    | DeviceStatus::DEVICE_END,
                cstat: SubchannelStatus::NONE,
                cpa: cpa.wrapping_add(8),
                count: u16::from(ccw[6]) << 8 | u16::from(ccw[7]),
                sense: None,
            }),
        }
    }
}

impl Device for Scripted {
    fn start(&mut self, mem: &dyn GuestIo, orb: &CommandOrb, _path: u8) -> Outcome {
        self.run(mem, orb.cpa)
    }
    fn resume(&mut self, mem: &dyn GuestIo, cpa: u32) -> Outcome {
        self.run(mem, cpa.wrapping_sub(8))
    }
    fn halt(&mut self) -> u32 {
        0
    }
    fn clear(&mut self) {}
}

/// GR1 for an instruction: the installed subchannels, the hole, one past the end, another
/// subchannel set, and words that are no subchannel id at all (operand exception).
fn gr1(choice: u8) -> u64 {
    match choice % 10 {
        0..=2 => 0x0001_0000 | u64::from(SCHS[usize::from(choice % 3)]),
        3 => 0x0001_0002,
        4 => 0x0001_0004,
        5 => 0x0003_0000,
        6 => 0,
        7 => 0xFFFF_FFFF,
        8 => 0x0001_0000 | u64::from(choice),
        _ => 0xFFFF_FFFF_0001_0000,
    }
}

/// An operand address: mostly word-aligned inside the 4 KiB window at 0x1000, sometimes
/// misaligned, at the end of storage, beyond it, or zero.
fn addr(choice: u8) -> u64 {
    match choice >> 5 {
        0..=4 => 0x1000 + u64::from(choice & 0x7F) * 32,
        5 => 0x1000 + u64::from(choice & 0x1F) * 32 + u64::from(choice & 3) + 1,
        6 => GUEST - u64::from(choice & 0x1F) * 4,
        _ => {
            if choice & 1 == 0 {
                GUEST + 0x100
            } else {
                0
            }
        }
    }
}

/// Everything a suppressed instruction must leave as it found it.
fn snapshot(
    css: &Vcss,
    mem: &GuestMemoryMmap,
) -> (Vec<u8>, Vec<Option<vcss::sch::SchState>>, bool) {
    let mut bytes = vec![0u8; GUEST as usize];
    mem.read_slice(&mut bytes, GuestAddress(0)).unwrap();
    let states = SCHS.iter().map(|&n| css.subchannel(n).copied()).collect();
    (bytes, states, css.interruption_pending(ALL_ISCS))
}

fn check_suppressed(
    name: &str,
    r: &Result<ConditionCode, InstrError>,
    before: &(Vec<u8>, Vec<Option<vcss::sch::SchState>>, bool),
    css: &Vcss,
    mem: &GuestMemoryMmap,
) {
    if let Err(InstrError::Program(p)) = r {
        let after = snapshot(css, mem);
        assert!(before.0 == after.0, "{name}: {p} stored into guest memory");
        assert_eq!(before.1, after.1, "{name}: {p} changed a subchannel");
        assert_eq!(
            before.2, after.2,
            "{name}: {p} changed the pending interruption"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, ops)) = data.split_first() else {
        return;
    };
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), GUEST as usize)]).unwrap();
    let mut css = Vcss::new();
    css.add_chpid(0x00, 0x32);
    css.add_chpid(0x01, 0x32);
    let seed = Arc::new(Mutex::new(seed));
    for (i, &n) in SCHS.iter().enumerate() {
        let dev = Box::new(Scripted { seed: seed.clone() });
        assert!(
            css.add_subchannel(n, 0x0100 + n, (i % 2) as u8, dev)
                .is_ok(),
            "add_subchannel {n}"
        );
    }
    for op in ops.chunks_exact(4).take(256) {
        let (code, g, a, v) = (op[0] % 16, gr1(op[1]), addr(op[2]), op[3]);
        let before = snapshot(&css, &mem);
        let (name, r) = match code {
            0 => ("STSCH", css.stsch(&mem, g, a)),
            1 => ("MSCH", css.msch(&mem, g, a)),
            2 => {
                let r = css.ssch(&mem, g, a);
                if r == Ok(ConditionCode::Cc0) {
                    let n = (g & 0xFFFF) as u16;
                    let s = css.subchannel(n).expect("cc 0 on an installed subchannel");
                    assert!(
                        s.schib.scsw.ctrl.fc().contains(FunctionControl::START),
                        "SSCH cc 0 without the start function: {:?}",
                        s.schib.scsw
                    );
                }
                ("SSCH", r)
            }
            3 => {
                let r = css.tsch(&mem, g, a);
                if r == Ok(ConditionCode::Cc0) {
                    let n = (g & 0xFFFF) as u16;
                    let s = css.subchannel(n).expect("cc 0 on an installed subchannel");
                    assert!(!s.status_pending(), "TSCH cc 0 left status pending");
                }
                ("TSCH", r)
            }
            4 => ("HSCH", css.hsch(g)),
            5 => ("CSCH", css.csch(g)),
            6 => ("XSCH", css.xsch(g)),
            7 => ("RSCH", css.rsch(&mem, g)),
            8 => {
                // TPI with operand 0 stores at the lowcore (prefix 0x2000) or at the operand.
                let at = if v & 1 == 0 { 0 } else { a };
                let r = css.tpi(&mem, at, ALL_ISCS, 0x2000);
                if r == Ok(ConditionCode::Cc1) {
                    let mut code = [0u8; 12];
                    let from = if at == 0 { 0x2000 + 0xB8 } else { at };
                    mem.read_slice(&mut code[..8], GuestAddress(from)).unwrap();
                    let no = u16::from_be_bytes([code[2], code[3]]);
                    let s = css
                        .subchannel(no)
                        .expect("TPI presented an installed subchannel");
                    assert!(
                        s.status_pending() && s.schib.pmcw.flags.enabled(),
                        "TPI presented 0.0.{no:04x}, which is not status pending and enabled"
                    );
                }
                ("TPI", r)
            }
            9 => {
                let r = css.stcrw(&mem, a);
                if r == Ok(ConditionCode::Cc1) {
                    let mut w = [0xAAu8; 4];
                    mem.read_slice(&mut w, GuestAddress(a)).unwrap();
                    assert_eq!(w, [0; 4], "STCRW cc 1 without a zero word");
                }
                ("STCRW", r)
            }
            10 => ("CHSC", css.chsc(&mem, a)),
            11 => ("RCHP", css.rchp(g)),
            12 => {
                // GR1's byte picks the byte within the 32-byte block, so any operand can be built.
                let _ = mem.write_slice(&[v], GuestAddress(a + u64::from(op[1] & 0x1F)));
                continue;
            }
            13 => {
                let no = SCHS[usize::from(op[1] % 3)];
                css.complete(
                    no,
                    Ending {
                        dstat: DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END,
                        cpa: u32::from(v) << 4,
                        ..Ending::default()
                    },
                );
                continue;
            }
            14 => {
                let no = SCHS[usize::from(op[1] % 3)];
                css.unsolicited(no, DeviceStatus::ATTENTION);
                continue;
            }
            _ => {
                css.queue_crw(Crw::new().with_rsc(v & 0xF).with_rsid(u16::from(op[1])));
                continue;
            }
        };
        check_suppressed(name, &r, &before, &css, &mem);
    }
});
