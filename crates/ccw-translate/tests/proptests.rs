// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Invariants over generated channel programs:
//! - the bytes reachable through the host IDAWs are exactly the bytes the guest CCW
//!   designates (by an independent byte-level channel model), and every one is pinned;
//! - TICs land on the host copy of their guest target;
//! - update_scsw inverts the host <- guest CCW mapping, one past the end included;
//! - pins == unpins and control memory is freed after release, and after every error.

mod common;

use ccw_translate::testing::RecordingMapper;
use ccw_translate::{Limits, Translator};
use ccw_types::{CcwFormat, IdawFormat};
use common::*;
use proptest::prelude::*;
use std::sync::Arc;

const DATA_LO: u64 = 0x10000;
const DATA_HI: u64 = 0x38000;
/// Guest memory: covers every data area the generator can designate (up to DATA_HI + 64 KiB).
const MEM: usize = 0x50000;

#[derive(Debug, Clone)]
struct CcwSpec {
    cmd: u8,
    flags: u8,
    count: u16,
    addr: u64,
    /// Later IDAW blocks (indexes into the data area, in blocks).
    blocks: Vec<u64>,
}

/// A segment's CCWs, optionally a closing TIC to (segment, CCW index), and CCWs after the
/// TIC (what a status modifier skips to when the TIC loops back into its own segment).
type SegmentSpec = (Vec<CcwSpec>, Option<(usize, usize)>, Vec<CcwSpec>);

#[derive(Debug, Clone)]
struct Program {
    fmt: CcwFormat,
    idaw: IdawFormat,
    segments: Vec<SegmentSpec>,
}

fn ccw_spec() -> impl Strategy<Value = CcwSpec> {
    (
        prop::sample::select(vec![0x01u8, 0x02, 0x03, 0x04, 0x0C, 0x07, 0x63, 0xE4, 0x86]),
        prop::sample::select(vec![
            0u8,
            SLI,
            SKIP,
            PCI,
            IDA,
            IDA | SKIP,
            IDA | SLI,
            IDA | PCI,
        ]),
        prop_oneof![Just(0u16), 1u16..64, 1u16..9000, Just(65535)],
        DATA_LO..DATA_HI,
        prop::collection::vec(0u64..(DATA_HI - DATA_LO) / 4096, 34),
    )
        .prop_map(|(cmd, flags, count, addr, blocks)| CcwSpec {
            cmd,
            flags,
            count,
            addr,
            blocks,
        })
}

fn program() -> impl Strategy<Value = Program> {
    (
        prop::sample::select(vec![CcwFormat::Format0, CcwFormat::Format1]),
        prop::sample::select(vec![
            IdawFormat::Format1,
            IdawFormat::Format2K2,
            IdawFormat::Format2K4,
        ]),
        prop::collection::vec(
            (
                prop::collection::vec((ccw_spec(), any::<bool>()), 1..8),
                any::<bool>(),
                any::<(usize, usize)>(),
                prop::collection::vec((ccw_spec(), any::<bool>()), 0..3),
            ),
            1..5,
        ),
    )
        .prop_map(|(fmt, idaw, segs)| {
            let n = segs.len();
            let lens: Vec<usize> = segs.iter().map(|s| s.0.len()).collect();
            // TICs land on the first CCW of a data chain, so every CCW has one role (a
            // CCW both data-chained into and entered as a new command is refused).
            let cd: Vec<Vec<bool>> = segs
                .iter()
                .map(|s| s.0.iter().map(|c| c.1).collect())
                .collect();
            let chain_start = |j: usize, mut k: usize| {
                while k > 0 && cd[j][k - 1] {
                    k -= 1;
                }
                k
            };
            let segments = segs
                .into_iter()
                .enumerate()
                .map(|(i, (ccws, tic, (j, k), after))| {
                    let chained = |v: Vec<(CcwSpec, bool)>| -> Vec<CcwSpec> {
                        v.into_iter()
                            .map(|(mut c, data_chain)| {
                                c.flags |= if data_chain { CD } else { CC };
                                c
                            })
                            .collect()
                    };
                    // Half of the TICs loop back into their own segment.
                    let j = if j % 2 == 0 { i } else { j % n };
                    let tic = tic.then(|| (j, chain_start(j, k % lens[j])));
                    (chained(ccws), tic, chained(after))
                })
                .collect();
            Program {
                fmt,
                idaw,
                segments,
            }
        })
}

fn seg_addr(i: usize) -> u64 {
    0x1000 + 0x400 * i as u64
}

/// Writes the program into a fresh guest memory image.
fn build(p: &Program) -> vm_memory::GuestMemoryMmap<()> {
    let mem = mem(MEM);
    let bs = p.idaw.block_size();
    let mut idal_at = 0x8000u64;
    for (i, (ccws, tic, after)) in p.segments.iter().enumerate() {
        let mut words = Vec::new();
        let n = ccws.len();
        let after: &[CcwSpec] = if tic.is_some() { after } else { &[] };
        // The command the channel executes (a data-chained CCW's own code is ignored): it
        // decides the direction of the IDAL's later IDAWs.
        let mut exec = 0;
        let mut chained = false;
        for (k, c) in ccws.iter().chain(after).enumerate() {
            let last = k + 1 == n + after.len();
            let mut flags = c.flags;
            if last && (tic.is_none() || k >= n) {
                flags &= !(CC | CD);
            }
            if k + 1 == n && tic.is_some() {
                // The TIC carries no data chaining (see `chain_start`).
                flags = (flags & !CD) | CC;
            }
            if !chained || k == n {
                exec = c.cmd;
            }
            chained = flags & CD != 0;
            let mut count = c.count;
            if p.fmt == CcwFormat::Format0 && count == 0 {
                count = 1;
            }
            let backward = exec & 0x0F == 0x0C;
            let cda = if flags & IDA != 0 {
                let mut idaws = vec![c.addr];
                // Enough later IDAWs for any count.
                for b in &c.blocks {
                    let start = DATA_LO + b * 4096 + (b % 2) * (bs % 4096);
                    idaws.push(if backward { start + bs - 1 } else { start });
                }
                let at = idal_at;
                idal_at += 0x200;
                idal(&mem, at, p.idaw, &idaws);
                at
            } else {
                c.addr
            };
            words.push(ccw(p.fmt, c.cmd, flags, count, cda as u32));
        }
        let after = words.split_off(n);
        if let Some((j, k)) = tic {
            words.push(ccw(
                p.fmt,
                0x08,
                0,
                0,
                (seg_addr(*j) + 8 * *k as u64) as u32,
            ));
        }
        words.extend(after);
        chain(&mem, seg_addr(i), &words);
    }
    mem
}

proptest! {
    #![proptest_config(ccw_testkit::proptest_config(128))]

    #[test]
    fn generated_programs_translate_faithfully(p in program()) {
        let mem = build(&p);
        let m = Arc::new(RecordingMapper::new().with_offset(0x4000_0000_0000));
        let mut t = Translator::new(Limits::default());
        let o = orb(p.fmt, p.idaw, seg_addr(0) as u32);
        match t.translate(&o, &mem, m.clone(), 0x80) {
            Ok(prog) => {
                check_program(&prog, &m, &mem, p.fmt, p.idaw);
                prop_assert_eq!(prog.pins().len(), m.live_pins().len());
                drop(prog);
            }
            Err(e) => prop_assert!(false, "{e:?}"),
        }
        let s = m.stats();
        prop_assert_eq!(s.pins, s.unpins);
        prop_assert_eq!(s.allocs, s.frees);
        prop_assert!(m.live_pins().is_empty());
        prop_assert!(m.violations().is_empty());
    }

    #[test]
    fn arbitrary_programs_never_leak(
        words in prop::collection::vec(
            (
                prop::sample::select(vec![0x01u8, 0x02, 0x03, 0x04, 0x08, 0x0C, 0x18, 0x00, 0xE4]),
                any::<u8>(),
                prop_oneof![0u16..32, any::<u16>()],
                prop_oneof![(0u32..0x800).prop_map(|a| 0x1000 + 8 * a), 0u32..0x4_0000, any::<u32>()],
            ),
            1..64,
        ),
        fmt in prop::sample::select(vec![CcwFormat::Format0, CcwFormat::Format1]),
        idaw in prop::sample::select(vec![IdawFormat::Format1, IdawFormat::Format2K2, IdawFormat::Format2K4]),
        fail_at in prop::option::of(0u64..8),
    ) {
        let mem = mem(MEM);
        for (i, (cmd, flags, count, cda)) in words.iter().enumerate() {
            let cda = if fmt == CcwFormat::Format0 { cda & 0xFF_FFFF } else { *cda };
            put(&mem, 0x1000 + 8 * i as u64, &ccw(fmt, *cmd, *flags, *count, cda));
            // The same words double as IDALs.
            put(&mem, 0x8000 + 8 * i as u64, &(cda as u64).to_be_bytes());
        }
        let m = Arc::new(RecordingMapper::new());
        m.fail_pin_after(fail_at);
        let mut t = Translator::new(Limits::default());
        match t.translate(&orb(fmt, idaw, 0x1000), &mem, m.clone(), 0x80) {
            Ok(prog) => {
                check_program(&prog, &m, &mem, fmt, idaw);
                drop(prog);
            }
            Err(e) => {
                prop_assert!(e.ccw_index.is_some() || e.guest_addr.is_none() || e.program_check().is_none());
            }
        }
        let s = m.stats();
        prop_assert_eq!(s.pins, s.unpins);
        prop_assert_eq!(s.allocs, s.frees);
        prop_assert!(m.violations().is_empty());
    }
}

/// A translated program as the tests compare it: host ORB, pins, segments, control bytes.
type Translated = (
    ccw_types::Orb,
    Vec<ccw_translate::GuestRange>,
    Vec<(u64, u64, usize)>,
    Vec<u8>,
);

/// What one translation + release did: the result, the host program, every mapper call.
#[derive(Debug, PartialEq)]
struct Outcome {
    result: Result<Translated, ccw_translate::TranslateError>,
    events: Vec<ccw_translate::testing::Event>,
    violations: Vec<String>,
}

/// Translates and releases `orb` with a fresh recording mapper (`premapped`: guest
/// `[0, premapped)` premapped), through the fast path or the general path only.
fn outcome(
    orb: &ccw_types::Orb,
    mem: &vm_memory::GuestMemoryMmap<()>,
    fast: bool,
    premapped: Option<u64>,
    fail_at: Option<u64>,
) -> Outcome {
    let mut m = RecordingMapper::new()
        .with_offset(0x4000_0000_0000)
        .recording(true);
    if let Some(end) = premapped {
        m = m.with_premapped(0, end);
    }
    let m = Arc::new(m);
    m.fail_pin_after(fail_at);
    let mut t = Translator::new(Limits::default());
    if !fast {
        t = t.general_only();
    }
    let result = t.translate(orb, mem, m.clone(), 0x80).map(|p| {
        let area = p
            .control_area()
            .expect("a translated program has control memory");
        let mut image = vec![0; area.len];
        assert!(m.read_control(area.addr, &mut image));
        let out = (
            p.host_orb(),
            p.pins().to_vec(),
            p.segments().collect(),
            image,
        );
        drop(p);
        out
    });
    Outcome {
        result,
        events: m.events(),
        violations: m.violations(),
    }
}

proptest! {
    #![proptest_config(ccw_testkit::proptest_config(128))]

    /// The fast path and the general path agree on generated programs (TICs included,
    /// which the fast path hands over): the same host program and pins, the same mapper
    /// calls in the same order, with and without a premapped span (which covers part of
    /// the data area, so programs mix premapped and pinned pieces), and with a pin that
    /// fails.
    #[test]
    fn fast_path_matches_general_path_on_generated_programs(
        p in program(),
        premapped in prop::option::of(DATA_LO..DATA_HI),
        fail_at in prop::option::of(0u64..16),
    ) {
        let mem = build(&p);
        let o = orb(p.fmt, p.idaw, seg_addr(0) as u32);
        let fast = outcome(&o, &mem, true, premapped, fail_at);
        prop_assert!(fast.result.is_ok() || fail_at.is_some(), "{:?}", fast.result);
        prop_assert!(fast.violations.is_empty(), "{:?}", fast.violations);
        prop_assert_eq!(&fast, &outcome(&o, &mem, false, premapped, fail_at));
    }

    /// ... and on arbitrary words (errors anywhere, TICs, injected pin failures): the same
    /// error at the same CCW, the same mapper calls.
    #[test]
    fn fast_path_matches_general_path_on_arbitrary_programs(
        words in prop::collection::vec(
            (
                prop::sample::select(vec![0x01u8, 0x02, 0x03, 0x04, 0x08, 0x0C, 0x18, 0x00, 0xE4]),
                any::<u8>(),
                prop_oneof![0u16..32, any::<u16>()],
                prop_oneof![(0u32..0x800).prop_map(|a| 0x1000 + 8 * a), 0u32..0x4_0000, any::<u32>()],
            ),
            1..64,
        ),
        fmt in prop::sample::select(vec![CcwFormat::Format0, CcwFormat::Format1]),
        idaw in prop::sample::select(vec![IdawFormat::Format1, IdawFormat::Format2K2, IdawFormat::Format2K4]),
        fail_at in prop::option::of(0u64..8),
        premapped in prop::option::of(0u64..0x5_0000),
    ) {
        let mem = mem(MEM);
        for (i, (cmd, flags, count, cda)) in words.iter().enumerate() {
            let cda = if fmt == CcwFormat::Format0 { cda & 0xFF_FFFF } else { *cda };
            put(&mem, 0x1000 + 8 * i as u64, &ccw(fmt, *cmd, *flags, *count, cda));
            put(&mem, 0x8000 + 8 * i as u64, &(cda as u64).to_be_bytes());
        }
        let o = orb(fmt, idaw, 0x1000);
        let fast = outcome(&o, &mem, true, premapped, fail_at);
        prop_assert!(fast.violations.is_empty(), "{:?}", fast.violations);
        prop_assert_eq!(&fast, &outcome(&o, &mem, false, premapped, fail_at));
    }
}
