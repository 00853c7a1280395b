// SPDX-License-Identifier: Apache-2.0 OR MIT

//! One test (or a few) per translation rule of issue 3.

mod common;

use ccw_translate::testing::{Event, RecordingMapper};
use ccw_translate::{
    Block, DmaAccess, GuestRange, Limits, MapError, MapOp, TranslateError, TranslateReason as K,
    Translator, Unsupported,
};
use ccw_types::{CcwFormat, CommandOrb, Errno, ErrorKind, IdawFormat, Orb, Scsw, SubchannelStatus};
use common::*;
use std::sync::Arc;

const F1: CcwFormat = CcwFormat::Format1;
const F0: CcwFormat = CcwFormat::Format0;

fn t() -> Translator {
    Translator::new(Limits::default())
}

fn err(
    orb: &Orb,
    mem: &vm_memory::GuestMemoryMmap<()>,
    m: &Arc<RecordingMapper>,
) -> TranslateError {
    let e = t().translate(orb, mem, m.clone(), 0x80).unwrap_err();
    assert!(
        m.live_pins().is_empty(),
        "pins left after error: {:?}",
        m.live_pins()
    );
    assert_eq!(m.live_areas(), 0, "control memory left after error");
    assert!(m.violations().is_empty(), "{:?}", m.violations());
    e
}

/// [`err`] for a format-1 ORB whose program starts at `cpa`.
fn refused(
    mem: &vm_memory::GuestMemoryMmap<()>,
    m: &Arc<RecordingMapper>,
    cpa: u32,
) -> TranslateError {
    err(&orb1(cpa), mem, m)
}

#[test]
fn sense_id_single_ccw() {
    let mem = mem(0x10000);
    put(&mem, 0x1000, &ccw1(0xE4, SLI, 256, 0x2000));
    let m = Arc::new(RecordingMapper::new().recording(true));
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    assert_eq!(p.pins(), &[GuestRange::new(0x2000, 256)]);
    assert!(matches!(
        m.events()[0],
        Event::Pin(
            GuestRange {
                gpa: 0x2000,
                len: 256
            },
            DmaAccess::Write,
            0x2000
        )
    ));
    let h = p.host_orb();
    assert!(h.ctrl.format1() && h.ctrl.format2_idaw() && !h.ctrl.idaw_2k());
    assert_eq!((h.intparm.get(), h.ctrl.lpm()), (0x1234_5678, 0xFF));
    let c = host_ccw(&m, h.cpa.get() as u64);
    assert_eq!((c.cmd, c.flags, c.count.get()), (0xE4, SLI | IDA, 256));
    let mut idaw = [0u8; 8];
    assert!(m.read_control(c.cda.get() as u64, &mut idaw));
    assert_eq!(u64::from_be_bytes(idaw), 0x2000);
    check_program(&p, &m, &mem, F1, IdawFormat::Format2K4);
    drop(p);
    assert!(m.live_pins().is_empty() && m.live_areas() == 0);
}

#[test]
fn host_orb_lpm_key_and_controls() {
    let mem = mem(0x10000);
    put(&mem, 0x1000, &ccw1(0x03, 0, 0, 0));
    let mut o = CommandOrb::new(7, 0x1000);
    o.lpm = 0;
    o.key = 9;
    o.suspend = true;
    o.initial_status = true;
    let m = Arc::new(RecordingMapper::new());
    let p = t().translate(&o.emit(), &mem, m.clone(), 0x40).unwrap();
    let h = p.host_orb();
    assert_eq!((h.ctrl.lpm(), h.ctrl.key()), (0x40, 9));
    assert!(h.ctrl.suspend() && h.ctrl.initial_status());
    assert_eq!(p.guest_orb(), &o);
    drop(p);
    o.lpm = 0x20;
    let p = t().translate(&o.emit(), &mem, m.clone(), 0x40).unwrap();
    assert_eq!(p.host_orb().ctrl.lpm(), 0x20);
    drop(p);
}

#[test]
fn format0_is_converted_to_format1() {
    let mem = mem(0x10000);
    // Write 100 bytes at 0x3000 (CC), then a format-0 TIC with junk high nibble, flags and
    // count, then a read at the target.
    chain(
        &mem,
        0x1000,
        &[
            ccw0(0x01, CC, 100, 0x3000),
            ccw0(0x58, 0xFF, 0x1234, 0x2000),
        ],
    );
    put(&mem, 0x2000, &ccw0(0x02, SLI, 10, 0x4000));
    let m = Arc::new(RecordingMapper::new());
    let o = orb(F0, IdawFormat::Format2K4, 0x1000);
    let p = t().translate(&o, &mem, m.clone(), 0x80).unwrap();
    assert!(p.host_orb().ctrl.format1());
    let segs: Vec<_> = p.segments().collect();
    assert_eq!(segs.len(), 2);
    let tic = host_ccw(&m, segs[0].1 + 8);
    assert_eq!((tic.cmd, tic.flags, tic.count.get()), (0x08, 0, 0));
    assert_eq!(tic.cda.get() as u64, segs[1].1);
    check_program(&p, &m, &mem, F0, IdawFormat::Format2K4);
    drop(p);
}

#[test]
fn command_and_data_chaining_form_one_segment() {
    let mem = guest(&[
        ccw1(0x02, CD, 10, 0x3000),
        ccw1(0x02, CC, 20, 0x3800),
        ccw1(0x01, 0, 30, 0x4000),
        ccw1(0x01, 0, 30, 0x5000), // not reached: the previous CCW does not chain
    ]);
    let m = Arc::new(RecordingMapper::new());
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    assert_eq!(p.segments().map(|s| s.2).collect::<Vec<_>>(), [3]);
    assert_eq!(p.pins().len(), 3);
    assert!(!p.is_pinned(GuestRange::new(0x5000, 30)));
    check_program(&p, &m, &mem, F1, IdawFormat::Format2K4);
    drop(p);
}

#[test]
fn tic_inside_segment_and_to_new_segments() {
    let mem = mem(0x10000);
    // 0x1000: read CC, TIC back to 0x1000 (a device-orientation loop), no new segment.
    chain(
        &mem,
        0x1000,
        &[ccw1(0x02, CC, 8, 0x3000), ccw1(0x08, 0, 0, 0x1000)],
    );
    let m = Arc::new(RecordingMapper::new());
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    assert_eq!(p.segments().count(), 1);
    check_program(&p, &m, &mem, F1, IdawFormat::Format2K4);
    drop(p);

    // Forward TIC to 0x2000, which TICs into the middle of the first segment.
    chain(
        &mem,
        0x1000,
        &[
            ccw1(0x02, CC, 8, 0x3000),
            ccw1(0x01, CC, 8, 0x3100),
            ccw1(0x08, 0, 0, 0x2000),
        ],
    );
    chain(
        &mem,
        0x2000,
        &[ccw1(0x03, CC, 0, 0), ccw1(0x08, 0, 0, 0x1008)],
    );
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    let segs: Vec<_> = p.segments().collect();
    assert_eq!(
        segs.iter().map(|s| (s.0, s.2)).collect::<Vec<_>>(),
        [(0x1000, 3), (0x2000, 2)]
    );
    let back = host_ccw(&m, segs[1].1 + 8);
    assert_eq!(back.cda.get() as u64, segs[0].1 + 8);
    check_program(&p, &m, &mem, F1, IdawFormat::Format2K4);
    drop(p);
}

#[test]
fn segment_length_limit() {
    let mem = mem(0x10000);
    let mut ccws = vec![ccw1(0x03, CC, 0, 0); 254];
    ccws.push(ccw1(0x03, 0, 0, 0));
    chain(&mem, 0x1000, &ccws);
    let m = Arc::new(RecordingMapper::new());
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    assert_eq!(p.segments().next().unwrap().2, 255);
    drop(p);
    // One more chained CCW: 256 CCWs in the segment.
    ccws[254] = ccw1(0x03, CC, 0, 0);
    ccws.push(ccw1(0x03, 0, 0, 0));
    chain(&mem, 0x1000, &ccws);
    let e = refused(&mem, &m, 0x1000);
    assert_eq!(e.reason, K::SegmentTooLong { limit: 255 });
    assert_eq!(
        (e.ccw_index, e.guest_addr),
        (Some(255), Some(0x1000 + 255 * 8))
    );
    assert_eq!((e.errno().raw(), e.program_check()), (libc::EINVAL, None));
    // Configurable.
    let mut small = Translator::new(Limits {
        max_ccws_per_segment: 11,
        ..Limits::default()
    });
    let e = small
        .translate(&orb1(0x1000), &mem, m.clone(), 0x80)
        .unwrap_err();
    assert_eq!(e.reason, K::SegmentTooLong { limit: 10 });
}

/// A program of `n` segments at 0x1000, 0x1100, ...: each a NOP then a TIC to the next.
fn tic_ladder(mem: &vm_memory::GuestMemoryMmap<()>, n: u64) {
    for i in 0..n {
        let a = 0x1000 + 0x100 * i;
        if i + 1 == n {
            put(mem, a, &ccw1(0x03, 0, 0, 0));
        } else {
            chain(
                mem,
                a,
                &[ccw1(0x03, CC, 0, 0), ccw1(0x08, 0, 0, (a + 0x100) as u32)],
            );
        }
    }
}

#[test]
fn segment_count_limit() {
    let mem = mem(0x10000);
    tic_ladder(&mem, 16);
    let m = Arc::new(RecordingMapper::new());
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    assert_eq!(p.segments().count(), 16);
    check_program(&p, &m, &mem, F1, IdawFormat::Format2K4);
    drop(p);
    tic_ladder(&mem, 17);
    let e = refused(&mem, &m, 0x1000);
    assert_eq!(e.reason, K::TooManySegments { limit: 16 });
    assert_eq!(e.guest_addr, Some(0x1000 + 15 * 0x100 + 8));
    assert_eq!(
        (e.errno().raw(), e.kind()),
        (libc::ENOMEM, ErrorKind::Limit)
    );
}

#[test]
fn idaw_formats_and_host_block_size() {
    for (fmt, idaws, t_bit) in [
        (IdawFormat::Format1, vec![0x3F00u64, 0x5000, 0x6800], true),
        (IdawFormat::Format2K2, vec![0x3F00, 0x5000, 0x6800], true),
        (IdawFormat::Format2K4, vec![0x3F00, 0x5000, 0x8000], false),
    ] {
        let mem = mem(0x10000);
        let count = (fmt.block_size() - 0x700) as u16 + fmt.block_size() as u16 + 5;
        put(&mem, 0x1000, &ccw1(0x01, IDA, count, 0x2000));
        idal(&mem, 0x2000, fmt, &idaws);
        let m = Arc::new(RecordingMapper::new());
        let p = t()
            .translate(&orb(F1, fmt, 0x1000), &mem, m.clone(), 0x80)
            .unwrap();
        assert_eq!(p.host_orb().ctrl.idaw_2k(), t_bit, "{fmt:?}");
        assert_eq!(p.pins().len(), 3, "{fmt:?}");
        check_program(&p, &m, &mem, F1, fmt);
        drop(p);
    }
}

#[test]
fn direct_ccw_gets_fabricated_idal_in_orb_block_steps() {
    for (fmt, pins) in [
        (IdawFormat::Format1, 5),   // 0x2F00..0x4F00 in 2 KiB steps
        (IdawFormat::Format2K2, 5), // same
        (IdawFormat::Format2K4, 3), // 0x2F00, 0x3000, 0x4000
    ] {
        let mem = mem(0x10000);
        put(&mem, 0x1000, &ccw1(0x02, 0, 0x2000, 0x2F00));
        let m = Arc::new(RecordingMapper::new());
        let p = t()
            .translate(&orb(F1, fmt, 0x1000), &mem, m.clone(), 0x80)
            .unwrap();
        assert_eq!(p.pins().len(), pins, "{fmt:?}");
        assert_eq!(p.pins()[0], GuestRange::new(0x2F00, 0x100));
        check_program(&p, &m, &mem, F1, fmt);
        drop(p);
    }
}

#[test]
fn no_pin_without_data_transfer() {
    let mem = guest(&[
        ccw1(0x02, CC, 0, 0x3000),          // count 0
        ccw1(0x02, CC | IDA, 0, 0x3000),    // count 0 with IDA: no IDAW fetched
        ccw1(0x03, CC, 100, 0x3000),        // NOP
        ccw1(0x02, CC | SKIP, 100, 0x3000), // skip on read
        ccw1(0x04, CC | SKIP, 32, 0x3000),  // skip on sense
        ccw1(0x0C, CC | SKIP, 32, 0x3000),  // skip on read backward
        ccw1(0x01, SKIP, 16, 0x5000),       // skip on write is ignored: pinned
    ]);
    let m = Arc::new(RecordingMapper::new());
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    assert_eq!(p.pins(), &[GuestRange::new(0x5000, 16)]);
    for k in 0..6 {
        let c = host_ccw(&m, p.host_orb().cpa.get() as u64 + 8 * k);
        assert_eq!((c.flags & IDA, c.cda.get()), (0, 0), "no-data host CCW {k}");
    }
    check_program(&p, &m, &mem, F1, IdawFormat::Format2K4);
    drop(p);
}

#[test]
fn dma_direction_follows_command_class() {
    let mem = guest(&[
        ccw1(0x01, CC, 1, 0x3000), // write: device reads storage
        ccw1(0x63, CC, 1, 0x3100), // control (define extent): device reads
        ccw1(0x02, CC, 1, 0x3200), // read: device writes
        ccw1(0x04, CC, 1, 0x3300), // sense
        ccw1(0x0C, 0, 1, 0x3400),  // read backward
    ]);
    let m = Arc::new(RecordingMapper::new().recording(true));
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    use DmaAccess::{Read as R, Write as W};
    assert_eq!(pin_dirs(&m), [R, R, W, W, W]);
    drop(p);
}

#[test]
fn read_backward_direct_and_indirect() {
    let mem = mem(0x10000);
    // Direct: 0x1800 bytes ending at 0x4100 (the address designates the highest byte).
    put(&mem, 0x1000, &ccw1(0x0C, CC, 0x1800, 0x4100));
    // Indirect, 4 KiB: first IDAW at 0x60FF (0x100 bytes down to 0x6000), then the last byte
    // of the block 0x8000..0x9000.
    put(&mem, 0x1008, &ccw1(0x0C, IDA, 0x180, 0x2000));
    idal(&mem, 0x2000, IdawFormat::Format2K4, &[0x60FF, 0x8FFF]);
    let m = Arc::new(RecordingMapper::new());
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    assert_eq!(
        p.pins(),
        &[
            GuestRange::new(0x4000, 0x101),
            GuestRange::new(0x3000, 0x1000),
            GuestRange::new(0x2901, 0x6FF),
            GuestRange::new(0x6000, 0x100),
            GuestRange::new(0x8F80, 0x80),
        ]
    );
    check_program(&p, &m, &mem, F1, IdawFormat::Format2K4);
    drop(p);
    // A later backward IDAW that is not the last byte of a block.
    idal(&mem, 0x2000, IdawFormat::Format2K4, &[0x60FF, 0x8000]);
    let e = refused(&mem, &m, 0x1000);
    assert_eq!(
        e.reason,
        K::Misaligned {
            what: Block::Idaw,
            addr: 0x8000,
            align: 4096
        }
    );
    // Direct read backward ending exactly at address 0 (found by the fuzzer: the cursor
    // must not step below 0 after the last piece).
    put(&mem, 0x1000, &ccw1(0x0C, 0, 1, 0));
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    assert_eq!(p.pins(), &[GuestRange::new(0, 1)]);
    check_program(&p, &m, &mem, F1, IdawFormat::Format2K4);
    drop(p);
    put(&mem, 0x1000, &ccw1(0x0C, 0, 0x1001, 0x1000));
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    assert_eq!(
        p.pins(),
        &[GuestRange::new(0x1000, 1), GuestRange::new(0, 0x1000)]
    );
    drop(p);
    // A backward IDAW at the top of the 64-bit space (found by the fuzzer): the piece's end
    // is not representable, rejected instead of overflowing.
    put(&mem, 0x1000, &ccw1(0x0C, IDA, 0x10, 0x2000));
    idal(&mem, 0x2000, IdawFormat::Format2K4, &[u64::MAX]);
    assert!(matches!(
        refused(&mem, &m, 0x1000).reason,
        K::AddressRange { .. }
    ));
    // ... and as a later IDAW (found by the fuzzer: the alignment check overflowed).
    put(&mem, 0x1000, &ccw1(0x0C, IDA, 0x110, 0x2000));
    idal(&mem, 0x2000, IdawFormat::Format2K4, &[0x60FF, u64::MAX]);
    assert!(matches!(
        refused(&mem, &m, 0x1000).reason,
        K::AddressRange { .. }
    ));
    // Direct read backward below address 0.
    put(&mem, 0x1000, &ccw1(0x0C, 0, 0x100, 0x10));
    assert!(matches!(
        refused(&mem, &m, 0x1000).reason,
        K::AddressRange { .. }
    ));
}

#[test]
fn transport_mode_and_midaw_are_unsupported() {
    let mem = mem(0x10000);
    let mut o = orb1(0x1000);
    o.ctrl.set_transport(true);
    o.ctrl.set_format1(false);
    o.ctrl.set_prefetch(false);
    o.ctrl.set_format2_idaw(false);
    let m = Arc::new(RecordingMapper::new());
    let e = err(&o, &mem, &m);
    assert_eq!(e.reason, K::Unsupported(Unsupported::TransportMode));
    assert_eq!(
        (e.errno().raw(), e.program_check()),
        (libc::EOPNOTSUPP, None)
    );

    put(&mem, 0x1000, &ccw1(0x02, MIDA, 16, 0x2000));
    let e = refused(&mem, &m, 0x1000);
    assert_eq!(
        e.reason,
        K::Unsupported(Unsupported::Midaw { orb_allows: false })
    );
    assert_eq!(e.program_check(), Some(SubchannelStatus::PROGRAM_CHECK));
    let mut o = CommandOrb::new(1, 0x1000);
    o.midaw = true;
    let e = err(&o.emit(), &mem, &m);
    assert_eq!(
        e.reason,
        K::Unsupported(Unsupported::Midaw { orb_allows: true })
    );
    assert_eq!(
        (e.errno().raw(), e.program_check()),
        (libc::EOPNOTSUPP, None)
    );
}

#[test]
fn invalid_orb() {
    let mem = mem(0x10000);
    let mut o = orb1(0x1000);
    o.ctrl.set_reserved(1);
    let e = err(&o, &mem, &Arc::new(RecordingMapper::new()));
    assert!(matches!(e.reason, K::InvalidOrb(_)));
    assert_eq!((e.errno().raw(), e.program_check()), (libc::EINVAL, None));
}

#[test]
fn invalid_ccws_are_program_checks() {
    let m = Arc::new(RecordingMapper::new());
    let cases: Vec<(Vec<[u8; 8]>, CcwFormat, K, usize)> = vec![
        (
            vec![ccw1(0x03, CC, 0, 0), ccw1(0x00, 0, 1, 0x3000)],
            F1,
            K::InvalidCommand { cmd: 0 },
            1,
        ),
        (
            vec![ccw1(0x18, 0, 0, 0x2000)],
            F1,
            K::InvalidCommand { cmd: 0x18 },
            0,
        ),
        (vec![ccw0(0x02, 0, 0, 0x3000)], F0, K::ZeroCountFormat0, 0),
        (
            vec![ccw1(0x08, 0, 0, 0x2004)],
            F1,
            K::Misaligned {
                what: Block::Ccw,
                addr: 0x2004,
                align: 8,
            },
            0,
        ),
        (
            vec![ccw1(0x02, IDA, 8, 0x2004)],
            F1,
            K::Misaligned {
                what: Block::Idal,
                addr: 0x2004,
                align: 8,
            },
            0,
        ),
        (
            vec![ccw1(0x02, 0, 0x100, 0x7FFF_FF80)],
            F1,
            K::AddressRange {
                what: Block::Data,
                addr: 0x7FFF_FF80,
                len: 0x100,
                max: 0x7FFF_FFFF,
            },
            0,
        ),
        (
            vec![ccw0(0x02, 0, 0x100, 0xFF_FF80)],
            F0,
            K::AddressRange {
                what: Block::Data,
                addr: 0xFF_FF80,
                len: 0x100,
                max: 0xFF_FFFF,
            },
            0,
        ),
        (
            vec![ccw1(0x02, 0, 0x10, 0x8000_1000)],
            F1,
            K::AddressRange {
                what: Block::Data,
                addr: 0x8000_1000,
                len: 0,
                max: 0x7FFF_FFFF,
            },
            0,
        ),
    ];
    for (ccws, fmt, kind, index) in cases {
        let mem = mem(0x10000);
        chain(&mem, 0x1000, &ccws);
        let e = err(&orb(fmt, IdawFormat::Format2K4, 0x1000), &mem, &m);
        assert_eq!(e.reason, kind);
        assert_eq!(
            (e.ccw_index, e.guest_addr),
            (Some(index), Some(0x1000 + 8 * index as u64))
        );
        assert_eq!(
            (e.errno().raw(), e.kind()),
            (libc::EINVAL, ErrorKind::InvalidProgram)
        );
        assert_eq!(e.program_check(), Some(SubchannelStatus::PROGRAM_CHECK));
    }
    // A misaligned cpa.
    let mem = mem(0x10000);
    let e = refused(&mem, &m, 0x1004);
    assert_eq!(
        e.reason,
        K::Misaligned {
            what: Block::Ccw,
            addr: 0x1004,
            align: 8
        }
    );
}

#[test]
fn bad_idaws() {
    let m = Arc::new(RecordingMapper::new());
    let mem = mem(0x10000);
    // Format-1 IDAW with bit 0 set.
    put(&mem, 0x1000, &ccw1(0x02, IDA, 8, 0x2000));
    put(&mem, 0x2000, &0x8000_3000u32.to_be_bytes());
    let e = err(&orb(F1, IdawFormat::Format1, 0x1000), &mem, &m);
    assert_eq!(e.reason, K::IdawReserved { idaw: 0x8000_3000 });
    assert!(e.program_check().is_some());
    // A later IDAW not on a block boundary; the first piece was pinned and is undone.
    put(&mem, 0x1000, &ccw1(0x02, IDA, 0x900, 0x2000));
    idal(&mem, 0x2000, IdawFormat::Format2K4, &[0x3F00, 0x5010]);
    let e = refused(&mem, &m, 0x1000);
    assert_eq!(
        e.reason,
        K::Misaligned {
            what: Block::Idaw,
            addr: 0x5010,
            align: 4096
        }
    );
    // A format-2 IDAW whose piece wraps the 64-bit address space.
    put(&mem, 0x1000, &ccw1(0x02, IDA, 0x100, 0x2000));
    idal(&mem, 0x2000, IdawFormat::Format2K4, &[u64::MAX - 0x10]);
    let e = refused(&mem, &m, 0x1000);
    assert!(
        matches!(
            e.reason,
            K::AddressRange {
                what: Block::Data,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn guest_faults() {
    let m = Arc::new(RecordingMapper::new());
    let mem = mem(0x4000);
    let e = refused(&mem, &m, 0x8000);
    assert_eq!(
        e.reason,
        K::GuestFault {
            what: Block::Ccw,
            addr: 0x8000,
            len: 8
        }
    );
    assert_eq!(
        (e.errno().raw(), e.program_check()),
        (libc::EFAULT, Some(SubchannelStatus::PROGRAM_CHECK))
    );
    // The chain runs off the end of guest memory.
    put(&mem, 0x3FF8, &ccw1(0x03, CC, 0, 0));
    let e = refused(&mem, &m, 0x3FF8);
    assert_eq!((e.ccw_index, e.guest_addr), (Some(1), Some(0x4000)));
    // The IDAL is outside guest memory.
    put(&mem, 0x1000, &ccw1(0x02, IDA, 8, 0x9000));
    let e = refused(&mem, &m, 0x1000);
    assert_eq!(
        e.reason,
        K::GuestFault {
            what: Block::Idal,
            addr: 0x9000,
            len: 8
        }
    );
    // The rest of the IDAL is outside guest memory.
    put(&mem, 0x1000, &ccw1(0x02, IDA, 0x1800, 0x3FF8));
    put(&mem, 0x3FF8, &0x2000u64.to_be_bytes());
    let e = refused(&mem, &m, 0x1000);
    assert_eq!(
        e.reason,
        K::GuestFault {
            what: Block::Idal,
            addr: 0x4000,
            len: 8
        }
    );
}

/// Issue #15 item 6: with SKIP and IDA the channel still fetches the IDAWs (vfio-ccw reads
/// the IDAL and fails with EFAULT): an IDAL outside guest memory or an invalid IDAW is
/// refused, a valid one is read and nothing is pinned.
#[test]
fn skip_with_ida_reads_the_idal_but_pins_nothing() {
    let m = Arc::new(RecordingMapper::new());
    let mem = mem(0x4000);
    // The IDAL is outside guest memory.
    put(&mem, 0x1000, &ccw1(0x02, SKIP | IDA, 8, 0x9000));
    let e = refused(&mem, &m, 0x1000);
    assert_eq!(
        e.reason,
        K::GuestFault {
            what: Block::Idal,
            addr: 0x9000,
            len: 8
        }
    );
    assert_eq!(e.errno(), Errno::Fault);
    // A later IDAW not on a block boundary: the same check as without SKIP.
    put(&mem, 0x1000, &ccw1(0x02, SKIP | IDA, 0x1800, 0x2000));
    put(
        &mem,
        0x2000,
        &[0x3800u64, 0x3900].map(u64::to_be_bytes).concat(),
    );
    let e = refused(&mem, &m, 0x1000);
    assert!(
        matches!(
            e.reason,
            K::Misaligned {
                what: Block::Idaw,
                ..
            }
        ),
        "{e}"
    );
    // A valid IDAL whose blocks lie outside guest memory: read, nothing pinned or accessed.
    put(
        &mem,
        0x2000,
        &[0x9_0800u64, 0x9_1000].map(u64::to_be_bytes).concat(),
    );
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    assert!(p.pins().is_empty());
    let c = host_ccw(&m, p.host_orb().cpa.get() as u64);
    assert_eq!((c.flags & (IDA | SKIP), c.cda.get()), (SKIP, 0));
    drop(p);
}

/// Issue #15 item 6: data ranges are checked against guest memory by the translator, not
/// only by the mapper (`RecordingMapper` pins any range). The errno is vfio-ccw's for a data
/// page it cannot pin (EINVAL); the program check is the channel's.
#[test]
fn data_outside_guest_memory_is_a_fault_before_the_mapper() {
    let m = Arc::new(RecordingMapper::new());
    let mem = mem(0x4000);
    // The area that straddles the end: its first (in-memory) piece is pinned and undone,
    // the piece outside is the fault.
    for (ccw, want) in [
        (ccw1(0x02, 0, 16, 0x8000), (0x8000, 16)),
        (ccw1(0x01, 0, 0x20, 0x3FF0), (0x4000, 0x10)),
        (ccw1(0x02, IDA, 16, 0x2000), (0x10_0000, 16)),
    ] {
        put(&mem, 0x1000, &ccw);
        put(&mem, 0x2000, &0x10_0000u64.to_be_bytes());
        let e = refused(&mem, &m, 0x1000);
        let got = match e.reason {
            K::GuestFault {
                what: Block::Data,
                addr,
                len,
            } => (addr, len),
            other => panic!("{other:?}"),
        };
        assert_eq!(got, want);
        assert_eq!(
            (e.errno(), e.program_check()),
            (Errno::Invalid, Some(SubchannelStatus::PROGRAM_CHECK))
        );
    }
    assert_eq!(m.stats().pins, m.stats().unpins);
}

#[test]
fn mapper_failures_undo_everything() {
    let mem = guest(&[
        ccw1(0x02, CC, 0x2000, 0x3000),
        ccw1(0x01, 0, 0x2000, 0x6000),
    ]);
    let m = Arc::new(RecordingMapper::new());
    for n in 0..4 {
        m.fail_pin_after(Some(n));
        let e = refused(&mem, &m, 0x1000);
        assert_eq!(
            e.reason,
            K::Map {
                op: MapOp::Pin,
                error: MapError::Exhausted("injected pin failure")
            }
        );
        assert_eq!((e.errno().raw(), e.program_check()), (libc::ENOMEM, None));
        assert_eq!(e.ccw_index, Some(n as usize / 2));
    }
    m.fail_pin_after(None);
    m.fail_alloc(true);
    let e = refused(&mem, &m, 0x1000);
    assert!(matches!(
        e.reason,
        K::Map {
            op: MapOp::AllocControl,
            ..
        }
    ));
    m.fail_alloc(false);
    m.fail_write(true);
    let e = refused(&mem, &m, 0x1000);
    assert!(matches!(
        e.reason,
        K::Map {
            op: MapOp::WriteControl,
            ..
        }
    ));
    assert_eq!(e.errno().raw(), libc::EIO);
    m.fail_write(false);
    // Data outside what the backend maps: EINVAL, a program check on real hardware.
    let m = Arc::new(RecordingMapper::new().with_guest_limit(0x4000));
    let e = refused(&mem, &m, 0x1000);
    assert!(matches!(
        e.reason,
        K::Map {
            op: MapOp::Pin,
            error: MapError::NotMapped(_)
        }
    ));
    assert_eq!(
        (e.errno().raw(), e.program_check()),
        (libc::EINVAL, Some(SubchannelStatus::PROGRAM_CHECK))
    );
    let s = m.stats();
    assert_eq!(s.pins, s.unpins);
}

#[test]
fn mapper_contract_is_checked() {
    let mem = mem(0x10000);
    put(&mem, 0x1000, &ccw1(0x02, 0, 0x10, 0x3000));
    // Device addresses that shift the offset inside a 4 KiB block.
    let m = Arc::new(RecordingMapper::new().with_offset(0x100));
    let e = refused(&mem, &m, 0x1000);
    assert!(matches!(e.reason, K::MapperContract(_)));
    // A page-preserving offset is fine.
    let m = Arc::new(RecordingMapper::new().with_offset(0x1_0000_0000));
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    check_program(&p, &m, &mem, F1, IdawFormat::Format2K4);
    drop(p);
    // Control memory reaching beyond 2 GiB.
    let m = Arc::new(RecordingMapper::new().with_control(0x7FFF_FFF8, 0x100));
    let e = refused(&mem, &m, 0x1000);
    assert!(matches!(e.reason, K::MapperContract(_)));
}

#[test]
fn release_unpins_exactly_what_was_pinned() {
    let mem = guest(&[
        ccw1(0x02, CC, 0x1800, 0x3800),
        ccw1(0x01, CC, 16, 0x3800),
        ccw1(0x03, 0, 0, 0),
    ]);
    let m = Arc::new(RecordingMapper::new().recording(true));
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    let pins = p.pins().to_vec();
    drop(p);
    let ev = m.events();
    let pinned: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Pin(r, ..) => Some(*r),
            _ => None,
        })
        .collect();
    let unpinned: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Unpin(r) => Some(*r),
            _ => None,
        })
        .collect();
    assert_eq!(pinned, pins);
    assert_eq!(unpinned, pins);
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, Event::Free { .. }))
            .count(),
        1
    );
    assert!(m.violations().is_empty());
}

/// A program releases itself wherever it is dropped: on another thread, after the translator
/// that built it is gone; it holds its mapper until then.
#[test]
fn a_program_releases_itself_after_its_translator_and_on_another_thread() {
    let mem = guest(&[ccw1(0x02, CC, 0x1800, 0x3800), ccw1(0x03, 0, 0, 0)]);
    let m = Arc::new(RecordingMapper::new());
    let mut tr = t();
    let p = tr.translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    let pinned = p.pins().len() as u64;
    assert!(pinned >= 2);
    drop(tr);
    assert_eq!(Arc::strong_count(&m), 2, "the program holds its mapper");
    std::thread::spawn(move || drop(p)).join().unwrap();
    assert_eq!(Arc::strong_count(&m), 1, "and lets it go when dropped");
    let s = m.stats();
    assert_eq!(
        (s.pins, s.unpins, s.allocs, s.frees),
        (pinned, pinned, 1, 1)
    );
    assert!(m.live_pins().is_empty() && m.live_areas() == 0 && m.violations().is_empty());
}

#[test]
fn is_pinned_answers_dma_unmap() {
    let mem = mem(0x10000);
    put(&mem, 0x1000, &ccw1(0x02, 0, 0x100, 0x3F80));
    let m = Arc::new(RecordingMapper::new());
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    assert!(p.is_pinned(GuestRange::new(0x3000, 0x1000)));
    assert!(p.is_pinned(GuestRange::new(0x4000, 0x1000)));
    assert!(p.is_pinned(GuestRange::new(0x407F, 1)));
    assert!(!p.is_pinned(GuestRange::new(0x4080, 0x1000)));
    assert!(!p.is_pinned(GuestRange::new(0x3000, 0xF80)));
    drop(p);
}

#[test]
fn update_scsw_maps_host_to_guest_and_leaves_others() {
    let mem = mem(0x10000);
    tic_ladder(&mem, 3);
    let m = Arc::new(RecordingMapper::new());
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    check_program(&p, &m, &mem, F1, IdawFormat::Format2K4);
    let mut scsw = Scsw::default();
    scsw.cpa.set(0x10);
    p.update_scsw(&mut scsw);
    assert_eq!(scsw.cpa.get(), 0x10);
    // Host addresses map back; guest addresses map forth.
    for (g, h, len) in p.segments() {
        assert_eq!(p.host_cpa(g + 8 * len as u64), Some(h + 8 * len as u64));
    }
    drop(p);
}

#[test]
fn translator_is_reusable_after_errors() {
    let mem = mem(0x10000);
    let m = Arc::new(RecordingMapper::new());
    let mut tr = t();
    put(&mem, 0x1000, &ccw1(0x00, 0, 1, 0));
    assert!(tr.translate(&orb1(0x1000), &mem, m.clone(), 0x80).is_err());
    put(&mem, 0x1000, &ccw1(0x02, 0, 1, 0x3000));
    let p = tr.translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    check_program(&p, &m, &mem, F1, IdawFormat::Format2K4);
    drop(p);
    assert_eq!(tr.limits(), &Limits::default());
}

#[test]
fn error_messages_name_ccw_and_address() {
    let mem = guest(&[ccw1(0x03, CC, 0, 0), ccw1(0x02, IDA, 8, 0x2004)]);
    let e = err(&orb1(0x1000), &mem, &Arc::new(RecordingMapper::new()));
    assert_eq!(
        e.to_string(),
        "CCW #1 at 0x1008: IDAL address 0x2004 is not 8-byte aligned"
    );
}

/// Translates the format-1 program at `cpa` (4 KiB IDAWs), which must succeed, and checks it
/// against the byte-level channel model.
fn ok(
    mem: &vm_memory::GuestMemoryMmap<()>,
    m: &Arc<RecordingMapper>,
    cpa: u32,
) -> ccw_translate::ChannelProgram {
    let p = t().translate(&orb1(cpa), mem, m.clone(), 0x80).unwrap();
    check_program(&p, m, mem, F1, IdawFormat::Format2K4);
    p
}

/// Pin directions the mapper saw, in pin order.
fn pin_dirs(m: &RecordingMapper) -> Vec<DmaAccess> {
    m.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Pin(_, d, _) => Some(d),
            _ => None,
        })
        .collect()
}

#[test]
fn tic_back_into_the_segment_continues_it() {
    // The device-orientation idiom: Seek, Search ID Equal (CC), TIC back to the search,
    // Read. A search hit presents status modifier and the channel skips the TIC, fetching
    // the Read at TIC + 8: it must be in the same host segment and have its data pinned.
    let mem = guest(&[
        ccw1(0x07, CC, 6, 0x3000),    // Seek
        ccw1(0x31, CC, 5, 0x3010),    // Search ID Equal
        ccw1(0x08, 0, 0, 0x1008),     // TIC back to the search
        ccw1(0x06, SLI, 512, 0x4000), // Read Data
    ]);
    let m = Arc::new(RecordingMapper::new());
    let p = ok(&mem, &m, 0x1000);
    let segs: Vec<_> = p.segments().collect();
    assert_eq!(segs.len(), 1);
    assert_eq!((segs[0].0, segs[0].2), (0x1000, 4));
    let host = segs[0].1;
    assert_eq!(
        host_ccw(&m, host + 16).cda.get() as u64,
        host + 8,
        "TIC retarget"
    );
    let read = host_ccw(&m, host + 24);
    assert_eq!((read.cmd, read.flags & IDA), (0x06, IDA));
    assert!(p.is_pinned(GuestRange::new(0x4000, 512)));
    // Status after the Read (one past the end), after the TIC (skipped or program check
    // there) and after the search map back to the guest program.
    for (host_cpa, guest_cpa) in [
        (host + 32, 0x1020),
        (host + 24, 0x1018),
        (host + 16, 0x1010),
    ] {
        let mut scsw = Scsw::default();
        scsw.cpa.set(host_cpa as u32);
        p.update_scsw(&mut scsw);
        assert_eq!(scsw.cpa.get() as u64, guest_cpa);
    }
    drop(p);
    assert!(m.live_pins().is_empty());
}

#[test]
fn tic_within_range_is_measured_against_the_ccws_counted_so_far() {
    let mem = mem(0x10000);
    let m = Arc::new(RecordingMapper::new());
    // A TIC to itself is within the range (vfio-ccw counts the TIC itself); the CCW after it
    // is part of the segment.
    chain(
        &mem,
        0x1000,
        &[
            ccw1(0x03, CC, 0, 0),
            ccw1(0x08, 0, 0, 0x1008),
            ccw1(0x02, 0, 4, 0x3000),
        ],
    );
    let p = ok(&mem, &m, 0x1000);
    assert_eq!(p.segments().map(|s| s.2).collect::<Vec<_>>(), [3]);
    assert_eq!(p.pins(), &[GuestRange::new(0x3000, 4)]);
    drop(p);
    // A forward TIC (to the CCW right after it, not yet counted) ends the segment: its target
    // becomes a segment of its own.
    put(&mem, 0x1008, &ccw1(0x08, 0, 0, 0x1010));
    let p = ok(&mem, &m, 0x1000);
    assert_eq!(
        p.segments().map(|s| (s.0, s.2)).collect::<Vec<_>>(),
        [(0x1000, 2), (0x1010, 1)]
    );
    drop(p);
    // A TIC to before the segment's head (into memory not counted) ends it too.
    chain(
        &mem,
        0x2000,
        &[ccw1(0x03, CC, 0, 0), ccw1(0x08, 0, 0, 0x1ff8)],
    );
    put(&mem, 0x1ff8, &ccw1(0x03, 0, 0, 0));
    let p = ok(&mem, &m, 0x2000);
    assert_eq!(
        p.segments().map(|s| (s.0, s.2)).collect::<Vec<_>>(),
        [(0x2000, 2), (0x1ff8, 1)]
    );
    drop(p);
}

#[test]
fn tic_within_range_keeps_the_segment_length_limit() {
    let mem = mem(0x10000);
    let m = Arc::new(RecordingMapper::new());
    // 253 chained NOPs, a TIC back to the head, one NOP: 255 CCWs, the most a segment holds.
    let mut ccws = vec![ccw1(0x03, CC, 0, 0); 253];
    ccws.push(ccw1(0x08, 0, 0, 0x1000));
    ccws.push(ccw1(0x03, 0, 0, 0));
    chain(&mem, 0x1000, &ccws);
    let p = ok(&mem, &m, 0x1000);
    assert_eq!(p.segments().next().unwrap().2, 255);
    drop(p);
    // The CCW after the TIC chains on: 256 CCWs, refused as before.
    ccws[254] = ccw1(0x03, CC, 0, 0);
    ccws.push(ccw1(0x03, 0, 0, 0));
    chain(&mem, 0x1000, &ccws);
    let e = refused(&mem, &m, 0x1000);
    assert_eq!(e.reason, K::SegmentTooLong { limit: 255 });
    assert_eq!(e.ccw_index, Some(255));
    // Every CCW was read once: a TIC loop is not followed round and round.
    let mut counting = Translator::new(Limits {
        max_ccws_per_segment: 8,
        ..Limits::default()
    });
    chain(
        &mem,
        0x1000,
        &[ccw1(0x03, CC, 0, 0), ccw1(0x08, 0, 0, 0x1000)],
    );
    put(&mem, 0x1010, &ccw1(0x03, 0, 0, 0));
    let p = counting
        .translate(&orb1(0x1000), &mem, m.clone(), 0x80)
        .unwrap();
    assert_eq!(p.segments().map(|s| s.2).collect::<Vec<_>>(), [3]);
    drop(p);
}

#[test]
fn ccw_after_a_looping_tic_that_a_css_would_refuse_is_poisoned_not_refused() {
    // A plain loop (NOP CC; TIC back) followed by bytes that are no CCW: the channel only
    // gets there after a status modifier, so the program is valid. The host copy is an
    // all-zero CCW (invalid command), where the channel program-checks if it ever arrives.
    let mem = mem(0x10000);
    let m = Arc::new(RecordingMapper::new());
    for junk in [
        [0u8; 8],                      // command code 0x00
        ccw1(0x02, IDA, 8, 0x3001),    // misaligned IDAL
        ccw1(0x02, 0, 8, 0x7FFF_FFFC), // data past guest memory: the backend cannot map it
    ] {
        chain(
            &mem,
            0x1000,
            &[ccw1(0x03, CC, 0, 0), ccw1(0x08, 0, 0, 0x1000), junk],
        );
        let m = Arc::new(RecordingMapper::new().with_guest_limit(0x10000));
        let p = ok(&mem, &m, 0x1000);
        let (_, host, len) = p.segments().next().unwrap();
        assert_eq!(len, 3);
        assert_eq!(host_ccw(&m, host + 16).into_bytes(), [0; 8], "{junk:x?}");
        assert!(p.pins().is_empty());
        drop(p);
        assert!(m.live_pins().is_empty());
    }
    // The same junk where command chaining reaches it is refused, as before.
    chain(&mem, 0x1000, &[ccw1(0x03, CC, 0, 0), [0u8; 8]]);
    let e = refused(&mem, &m, 0x1000);
    assert_eq!(
        (e.reason, e.ccw_index),
        (K::InvalidCommand { cmd: 0 }, Some(1))
    );
}

#[test]
fn data_chained_ccws_are_classified_by_the_chains_command() {
    // In data chaining the channel ignores the continuation's command code (the command is
    // the chain's first): a NOP code moves data, a read code in a write chain is read by
    // the device, a SKIP on a write chain is ignored, on a sense chain honoured.
    let mem = guest(&[
        ccw1(0x01, CD, 16, 0x3000),        // write ...
        ccw1(0x03, CD, 16, 0x3100),        // ... continued under a NOP code: data
        ccw1(0x02, CD | SKIP, 16, 0x3200), // ... under a read code with SKIP: write ignores SKIP
        ccw1(0x00, CC, 16, 0x3300),        // ... under an invalid code: ignored too
        ccw1(0x04, CD, 8, 0x3400),         // sense ...
        ccw1(0x01, CD | SKIP, 8, 0x3500),  // ... under a write code with SKIP: not stored
        ccw1(0x03, CC, 8, 0x3600),         // ... under a NOP code: stored
        ccw1(0x03, CD, 8, 0x3700),         // NOP ...
        ccw1(0x02, 0, 8, 0x3800),          // ... under a read code: NOP moves nothing
    ]);
    let m = Arc::new(RecordingMapper::new().recording(true));
    let p = ok(&mem, &m, 0x1000);
    assert_eq!(
        p.pins(),
        &[
            GuestRange::new(0x3000, 16),
            GuestRange::new(0x3100, 16),
            GuestRange::new(0x3200, 16),
            GuestRange::new(0x3300, 16),
            GuestRange::new(0x3400, 8),
            GuestRange::new(0x3600, 8),
        ]
    );
    use DmaAccess::{Read as R, Write as W};
    assert_eq!(pin_dirs(&m), [R, R, R, R, W, W]);
    // Host CCWs keep the guest's command codes and flags (only the data address changes).
    let host = p.host_orb().cpa.get() as u64;
    let c = host_ccw(&m, host + 8);
    assert_eq!((c.cmd, c.flags), (0x03, CD | IDA));
    let c = host_ccw(&m, host + 8 * 8);
    assert_eq!((c.cmd, c.flags & IDA, c.cda.get()), (0x02, 0, 0));
    drop(p);
}

#[test]
fn read_backward_data_chain_continues_backward() {
    // Read backward, data-chained into a CCW with a (forward) read code: the continuation
    // also stores at descending addresses, so its address designates the highest byte.
    let mem = guest(&[ccw1(0x0C, CD, 0x10, 0x30FF), ccw1(0x02, 0, 0x20, 0x401F)]);
    let m = Arc::new(RecordingMapper::new().recording(true));
    let p = ok(&mem, &m, 0x1000);
    assert_eq!(
        p.pins(),
        &[GuestRange::new(0x30F0, 0x10), GuestRange::new(0x4000, 0x20)]
    );
    assert_eq!(pin_dirs(&m), [DmaAccess::Write, DmaAccess::Write]);
    drop(p);
}

#[test]
fn data_chaining_through_a_tic() {
    // A TIC carries the chaining of the CCW before it: a write data-chains through a TIC
    // into a CCW with a read code, which the device therefore reads.
    let mem = guest(&[ccw1(0x01, CD, 8, 0x3000), ccw1(0x08, 0, 0, 0x2000)]);
    put(&mem, 0x2000, &ccw1(0x02, 0, 8, 0x3100));
    let m = Arc::new(RecordingMapper::new().recording(true));
    let p = ok(&mem, &m, 0x1000);
    assert_eq!(p.segments().count(), 2);
    assert_eq!(pin_dirs(&m), [DmaAccess::Read, DmaAccess::Read]);
    drop(p);
    // Data chaining through a TIC into an invalid command code: the code is ignored.
    put(&mem, 0x2000, &ccw1(0x00, 0, 8, 0x3100));
    let p = ok(&mem, &m, 0x1000);
    drop(p);
    // Command chaining through a TIC into it: a new command, invalid.
    put(&mem, 0x1000, &ccw1(0x01, CC, 8, 0x3000));
    let e = refused(&mem, &m, 0x1000);
    assert_eq!(
        (e.reason, e.guest_addr),
        (K::InvalidCommand { cmd: 0 }, Some(0x2000))
    );
}

#[test]
fn ccw_reached_as_two_different_commands_is_unsupported() {
    // 0x1000 write CC, 0x1008 read (new command by command chaining); 0x1010 write CD,
    // 0x1018 TIC to 0x1008, which makes the read a continuation of a write as well.
    let mem = guest(&[
        ccw1(0x03, CC, 0, 0),
        ccw1(0x02, CC, 8, 0x3000),
        ccw1(0x01, CD, 8, 0x3100),
        ccw1(0x08, 0, 0, 0x1008),
    ]);
    let m = Arc::new(RecordingMapper::new());
    let e = refused(&mem, &m, 0x1000);
    assert_eq!(e.reason, K::Unsupported(Unsupported::AmbiguousDataChain));
    assert_eq!((e.ccw_index, e.guest_addr), (Some(1), Some(0x1008)));
    assert_eq!(
        (e.errno().raw(), e.program_check()),
        (libc::EOPNOTSUPP, None)
    );
    // The same shape where both roles execute the same way is fine (write chain into a
    // write).
    put(&mem, 0x1008, &ccw1(0x01, CC, 8, 0x3000));
    let p = ok(&mem, &m, 0x1000);
    drop(p);
}

/// The final CCW address one past the end of the segment a program ended in maps back to that
/// segment's guest CCWs + 8, never to another segment's start. Linux's vfio-ccw gets this
/// wrong when its chains are allocated back to back (`cp_update_scsw`, a kernel finding the
/// s390x lanes report apart): the TIC-first program below, ending in its second segment,
/// was reported there with cpa 0x1000, its first CCW.
#[test]
fn one_past_a_segment_never_maps_to_the_next_segments_head() {
    let mem = mem(0x10000);
    let m = Arc::new(RecordingMapper::new());
    // tic_first: TIC -> NOP; and tic_to_tic's shape, three segments.
    chain(&mem, 0x1000, &[ccw1(0x08, 0, 0, 0x3000)]);
    chain(
        &mem,
        0x3000,
        &[ccw1(0x03, CC, 0, 0), ccw1(0x08, 0, 0, 0x5000)],
    );
    chain(&mem, 0x5000, &[ccw1(0x03, 0, 0, 0)]);
    let p = ok(&mem, &m, 0x1000);
    let segs: Vec<_> = p.segments().collect();
    assert_eq!(segs.len(), 3);
    for (guest, host, len) in &segs {
        let end = host + 8 * *len as u64;
        assert!(
            segs.iter().all(|(_, h, _)| *h != end),
            "segment at {guest:#x}: its end is another segment's head"
        );
        let mut scsw = Scsw::default();
        scsw.cpa.set(end as u32);
        p.update_scsw(&mut scsw);
        assert_eq!(scsw.cpa.get() as u64, guest + 8 * *len as u64);
    }
    drop(p);
    assert_eq!((m.live_pins().len(), m.live_areas()), (0, 0));
}
