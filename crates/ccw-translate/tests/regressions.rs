// SPDX-License-Identifier: Apache-2.0 OR MIT

//! One regression test per translation bug in vfio-ccw's history (anchors.md), each written
//! so that the old behaviour would fail it.

mod common;

use std::sync::Arc;
use std::sync::Mutex;

use ccw_translate::testing::RecordingMapper;
use ccw_translate::{GuestRange, Limits, TranslateReason as K, Translator};
use ccw_types::{CcwFormat, IdawFormat, Scsw};
use common::*;
use vm_memory::bitmap::BS;
use vm_memory::guest_memory::GuestMemorySliceIterator;
use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryMmap, Permissions};

const F1: CcwFormat = CcwFormat::Format1;

/// Guest memory that logs every access and, once `watch` has been read, rewrites it with
/// `flip` before the next access: a guest racing the translator.
struct Watched {
    inner: GuestMemoryMmap<()>,
    state: Mutex<WatchState>,
}

#[derive(Default)]
struct WatchState {
    log: Vec<(u64, usize)>,
    watch: Option<(u64, Vec<u8>)>,
    touched: bool,
}

impl Watched {
    fn new(inner: GuestMemoryMmap<()>) -> Self {
        Self {
            inner,
            state: Mutex::new(WatchState::default()),
        }
    }
    fn watch(&self, addr: u64, flip: &[u8]) {
        let mut s = self.state.lock().unwrap();
        s.watch = Some((addr, flip.to_vec()));
        s.touched = false;
    }
    fn log(&self) -> Vec<(u64, usize)> {
        self.state.lock().unwrap().log.clone()
    }
    fn clear(&self) {
        self.state.lock().unwrap().log.clear();
    }
    /// Accesses that touch `[addr, addr + len)`.
    fn touching(&self, addr: u64, len: u64) -> usize {
        self.log()
            .iter()
            .filter(|(a, l)| *a < addr + len && addr < *a + *l as u64)
            .count()
    }
}

impl GuestMemory for Watched {
    type PhysicalMemory = GuestMemoryMmap<()>;
    type Bitmap = ();

    fn check_range(&self, addr: GuestAddress, count: usize, access: Permissions) -> bool {
        <GuestMemoryMmap<()> as GuestMemory>::check_range(&self.inner, addr, count, access)
    }

    fn get_slices<'a>(
        &'a self,
        addr: GuestAddress,
        count: usize,
        access: Permissions,
    ) -> vm_memory::GuestMemoryResult<impl GuestMemorySliceIterator<'a, BS<'a, ()>>> {
        let mut s = self.state.lock().unwrap();
        if s.touched {
            if let Some((w, flip)) = s.watch.take() {
                self.inner.write_slice(&flip, GuestAddress(w)).unwrap();
            }
        }
        s.log.push((addr.0, count));
        if let Some((w, flip)) = &s.watch {
            if addr.0 < w + flip.len() as u64 && *w < addr.0 + count as u64 {
                s.touched = true;
            }
        }
        drop(s);
        <GuestMemoryMmap<()> as GuestMemory>::get_slices(&self.inner, addr, count, access)
    }
}

fn t() -> Translator {
    Translator::new(Limits::default())
}

/// 2019 "recursive TICs": TICs between segments and back must not recurse forever.
#[test]
fn recursive_tics_terminate() {
    let mem = guest(&[ccw1(0x02, CC, 8, 0x3000), ccw1(0x08, 0, 0, 0x2000)]);
    chain(
        &mem,
        0x2000,
        &[ccw1(0x01, CC, 8, 0x3100), ccw1(0x08, 0, 0, 0x1000)],
    );
    let m = Arc::new(RecordingMapper::new());
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    assert_eq!(p.segments().count(), 2);
    check_program(&p, &m, &mem, F1, IdawFormat::Format2K4);
    drop(p);
    // A TIC to itself (TIC to TIC is for the executing CSS to reject). It is within the
    // CCWs counted so far, so, as in vfio-ccw, the segment goes on to the (old) TIC after
    // it, whose target 0x2000 is read once more as its own segment.
    put(&mem, 0x1000, &ccw1(0x08, 0, 0, 0x1000));
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    assert_eq!(p.segments().map(|s| s.2).collect::<Vec<_>>(), [2, 2]);
    check_program(&p, &m, &mem, F1, IdawFormat::Format2K4);
    drop(p);
}

/// 2019 "SCSW at end of chain": the SCSW cpa of the last CCW + 8 must map back.
#[test]
fn scsw_cpa_one_past_the_end_maps_back() {
    let mem = guest(&[ccw1(0x03, CC, 0, 0), ccw1(0x08, 0, 0, 0x2000)]);
    chain(&mem, 0x2000, &[ccw1(0x03, CC, 0, 0), ccw1(0x03, 0, 0, 0)]);
    let m = Arc::new(RecordingMapper::new());
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    let segs: Vec<_> = p.segments().collect();
    let mut scsw = Scsw::default();
    scsw.cpa.set((segs[1].1 + 16) as u32);
    p.update_scsw(&mut scsw);
    assert_eq!(scsw.cpa.get(), 0x2010);
    scsw.cpa.set((segs[0].1 + 16) as u32);
    p.update_scsw(&mut scsw);
    assert_eq!(scsw.cpa.get(), 0x1010);
    drop(p);
}

/// 2019 "zero-length CCWs": count 0 (with or without IDA) translates, needs no IDAW fetch
/// and pins nothing.
#[test]
fn zero_length_ccws() {
    let g = mem(0x10000);
    chain(
        &g,
        0x1000,
        &[
            ccw1(0x02, CC | IDA, 0, 0x2000),
            ccw1(0x01, CC, 0, 0x3000),
            ccw1(0x03, 0, 0, 0),
        ],
    );
    let w = Watched::new(g);
    let m = Arc::new(RecordingMapper::new());
    let p = t().translate(&orb1(0x1000), &w, m.clone(), 0x80).unwrap();
    assert!(p.pins().is_empty());
    assert_eq!(
        w.touching(0x2000, 8),
        0,
        "IDAL of a zero-length CCW was read"
    );
    let c = host_ccw(&m, p.host_orb().cpa.get() as u64);
    assert_eq!((c.cmd, c.count.get()), (0x02, 0));
    drop(p);
}

/// 2019 "don't pin empty transfers": count 0, NOP, skip on input pin nothing.
#[test]
fn empty_transfers_are_not_pinned() {
    let mem = guest(&[
        ccw1(0x03, CC, 0x100, 0x3000),
        ccw1(0x02, CC | SKIP, 0x100, 0x3000),
        ccw1(0x04, 0, 0, 0x3000),
    ]);
    let m = Arc::new(RecordingMapper::new());
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    assert_eq!(m.stats().pins, 0);
    drop(p);
    assert_eq!(m.stats().unpins, 0);
}

/// 2018 "cleanup on prefetch failure": a failure at any pin undoes all earlier pins.
#[test]
fn prefetch_failure_at_every_pin_cleans_up() {
    let mem = mem(0x20000);
    chain(
        &mem,
        0x1000,
        &[ccw1(0x02, CC, 0x3000, 0x4000), ccw1(0x08, 0, 0, 0x2000)],
    );
    chain(&mem, 0x2000, &[ccw1(0x01, IDA, 0x1800, 0x2100)]);
    idal(&mem, 0x2100, IdawFormat::Format2K4, &[0x8800, 0xA000]);
    let m = Arc::new(RecordingMapper::new());
    let total = {
        let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
        let n = p.pins().len() as u64;
        drop(p);
        n
    };
    assert_eq!(total, 5);
    for n in 0..total {
        m.fail_pin_after(Some(n));
        assert!(t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).is_err());
        assert!(
            m.live_pins().is_empty(),
            "pins left after failure at pin {n}"
        );
        assert_eq!(m.live_areas(), 0);
    }
    let s = m.stats();
    assert_eq!(s.pins, s.unpins);
    assert!(m.violations().is_empty());
}

/// 2019 / 2026 "memory leak in cp_init" and "leak on cp_init failure": a failure while the
/// chain is still being read allocates nothing that could leak.
#[test]
fn init_failure_allocates_nothing() {
    let mem = mem(0x4000);
    // Second segment outside guest memory.
    chain(
        &mem,
        0x1000,
        &[ccw1(0x02, CC, 8, 0x3000), ccw1(0x08, 0, 0, 0x8000)],
    );
    let m = Arc::new(RecordingMapper::new());
    let mut tr = t();
    for _ in 0..100 {
        let e = tr
            .translate(&orb1(0x1000), &mem, m.clone(), 0x80)
            .unwrap_err();
        assert!(matches!(e.reason, K::GuestFault { addr: 0x8000, .. }));
    }
    let s = m.stats();
    assert_eq!((s.pins, s.allocs), (0, 0));
}

/// 2024 "TIC target address truncation" (dma32): host TIC addresses near 2 GiB are exact,
/// and so is the guest address update_scsw gives back.
#[test]
fn tic_targets_near_2gib_are_not_truncated() {
    let mem = GuestMemoryMmap::<()>::from_ranges(&[
        (GuestAddress(0), 0x10000),
        (GuestAddress(0x7FFF_0000), 0x10000),
    ])
    .unwrap();
    chain(
        &mem,
        0x1000,
        &[ccw1(0x03, CC, 0, 0), ccw1(0x08, 0, 0, 0x7FFF_F000)],
    );
    chain(
        &mem,
        0x7FFF_F000,
        &[ccw1(0x02, CC, 0x10, 0x7FFF_FF00), ccw1(0x08, 0, 0, 0x1000)],
    );
    let m = Arc::new(RecordingMapper::new().with_control(0x7FF0_0000, 0x1000));
    let p = t().translate(&orb1(0x1000), &mem, m.clone(), 0x80).unwrap();
    let segs: Vec<_> = p.segments().collect();
    assert_eq!(segs[1].0, 0x7FFF_F000);
    let tic = host_ccw(&m, segs[0].1 + 8);
    assert_eq!(tic.cda.get() as u64, segs[1].1);
    assert!(segs[1].1 > 0x7FF0_0000);
    let mut scsw = Scsw::default();
    scsw.cpa.set((segs[1].1 + 8) as u32);
    p.update_scsw(&mut scsw);
    assert_eq!(scsw.cpa.get(), 0x7FFF_F008);
    check_program(&p, &m, &mem, F1, IdawFormat::Format2K4);
    drop(p);
}

/// 2026 "OOB read of CCW 257": a segment that is too long is rejected with EINVAL without
/// reading past the segment window.
#[test]
fn overlong_segment_reads_no_ccw_past_the_window() {
    let g = mem(0x10000);
    chain(&g, 0x1000, &vec![ccw1(0x03, CC, 0, 0); 300]);
    let w = Watched::new(g);
    let m = Arc::new(RecordingMapper::new());
    let e = t()
        .translate(&orb1(0x1000), &w, m.clone(), 0x80)
        .unwrap_err();
    assert_eq!(e.reason, K::SegmentTooLong { limit: 255 });
    assert_eq!(e.errno().raw(), libc::EINVAL);
    let end = w.log().iter().map(|(a, l)| a + *l as u64).max().unwrap();
    assert!(end <= 0x1000 + 255 * 8, "read up to {end:#x}, past CCW 255");
    // Guest memory that ends right after CCW 255: still EINVAL, not EFAULT.
    let g = mem(0x1000 + 255 * 8);
    chain(&g, 0x1000, &vec![ccw1(0x03, CC, 0, 0); 255]);
    let e = t()
        .translate(&orb1(0x1000), &g, m.clone(), 0x80)
        .unwrap_err();
    assert_eq!(e.reason, K::SegmentTooLong { limit: 255 });
}

/// 2026 "unbounded TIC recursion": a program that TICs to new places forever is cut off at
/// the segment limit with ENOMEM, after a bounded amount of reading.
#[test]
fn endless_tic_ladders_are_bounded() {
    let g = mem(0x40000);
    for i in 0..1000u64 {
        let a = 0x1000 + 0x100 * i;
        put(&g, a, &ccw1(0x08, 0, 0, (a + 0x100) as u32));
    }
    let w = Watched::new(g);
    let m = Arc::new(RecordingMapper::new());
    let e = t()
        .translate(&orb1(0x1000), &w, m.clone(), 0x80)
        .unwrap_err();
    assert_eq!(e.reason, K::TooManySegments { limit: 16 });
    assert_eq!(e.errno().raw(), libc::ENOMEM);
    assert!(w.log().len() <= 16, "{} guest reads", w.log().len());
}

/// 2026 "IDAL over-read by IDAW type": a format-1 IDAL is read as 4-byte IDAWs, exactly as
/// many as the count needs.
#[test]
fn idal_is_read_by_idaw_size_and_count() {
    for fmt in [
        IdawFormat::Format1,
        IdawFormat::Format2K2,
        IdawFormat::Format2K4,
    ] {
        let g = mem(0x10000);
        // Three IDAWs: the IDAL sits at the very end of guest memory.
        let n = 3u64;
        let idal_at = 0x10000 - n * fmt.idaw_size();
        let bs = fmt.block_size();
        put(
            &g,
            0x1000,
            &ccw1(0x02, IDA, (2 * bs + 16) as u16, idal_at as u32),
        );
        idal(
            &g,
            idal_at,
            fmt,
            &[0x4000, 0x4000 + 2 * bs, 0x4000 + 4 * bs],
        );
        let w = Watched::new(g);
        let m = Arc::new(RecordingMapper::new());
        let p = t()
            .translate(&orb(F1, fmt, 0x1000), &w, m.clone(), 0x80)
            .unwrap();
        assert_eq!(p.pins().len(), 3, "{fmt:?}");
        let idal_reads: Vec<_> = w.log().into_iter().filter(|(a, _)| *a >= idal_at).collect();
        let bytes: usize = idal_reads.iter().map(|(_, l)| l).sum();
        assert_eq!(
            bytes as u64,
            n * fmt.idaw_size(),
            "{fmt:?}: {idal_reads:x?}"
        );
        drop(p);
    }
}

/// 2026 "first-IDAW TOCTOU": the guest rewrites the first IDAW right after the translator
/// read it; the IDAW is read once and what is pinned is what the host IDAL designates.
#[test]
fn first_idaw_is_read_once() {
    let g = mem(0x10000);
    put(&g, 0x1000, &ccw1(0x02, IDA, 0x1010, 0x2000));
    // First IDAW at 0x3FF0: 16 bytes in its block, then one more block.
    idal(&g, 0x2000, IdawFormat::Format2K4, &[0x3FF0, 0x5000]);
    let w = Watched::new(g);
    // After the first read the guest points the first IDAW at the start of a block: a
    // translator that re-read it would pin 0x9000.. but count 2 IDAWs from 0x3FF0.
    w.watch(0x2000, &0x9000u64.to_be_bytes());
    let m = Arc::new(RecordingMapper::new());
    let p = t().translate(&orb1(0x1000), &w, m.clone(), 0x80).unwrap();
    assert_eq!(
        w.touching(0x2000, 8),
        1,
        "first IDAW fetched more than once"
    );
    assert_eq!(
        p.pins(),
        &[
            GuestRange::new(0x3FF0, 0x10),
            GuestRange::new(0x5000, 0x1000)
        ]
    );
    let host = host_bytes(&p, &m, p.host_orb().cpa.get() as u64);
    assert_eq!(host.first(), Some(&0x3FF0));
    assert!(host.iter().all(|b| pinned(p.pins(), *b)));
    drop(p);
    w.clear();
}

/// Every CCW is fetched from guest memory exactly once per segment it belongs to.
#[test]
fn each_ccw_is_read_once() {
    let g = mem(0x10000);
    let mut ccws = vec![ccw1(0x02, CC, 16, 0x8000); 100];
    ccws.push(ccw1(0x08, 0, 0, 0x1000));
    chain(&g, 0x1000, &ccws);
    let w = Watched::new(g);
    let m = Arc::new(RecordingMapper::new());
    let p = t().translate(&orb1(0x1000), &w, m.clone(), 0x80).unwrap();
    for k in 0..101 {
        assert_eq!(w.touching(0x1000 + 8 * k, 8), 1, "CCW {k}");
    }
    drop(p);
}

/// Read-ahead of control bytes never turns a valid program into a fault: guest memory that
/// ends right after the last CCW and right after the IDAL (not on a page boundary).
#[test]
fn read_ahead_stops_at_the_end_of_guest_memory() {
    let g = GuestMemoryMmap::<()>::from_ranges(&[
        (GuestAddress(0), 0x2000),
        (GuestAddress(0x10000), 0x3018),
    ])
    .unwrap();
    chain(
        &g,
        0x13000,
        &[
            ccw1(0x02, CC | IDA, 0x900, 0x13010),
            ccw1(0x01, 0, 8, 0x100),
        ],
    );
    idal(&g, 0x13010, IdawFormat::Format2K4, &[0x1F00]);
    // The IDAL's single IDAW ends guest memory: 0x900 bytes from 0x1F00 need two IDAWs.
    let m = Arc::new(RecordingMapper::new());
    let e = t()
        .translate(&orb1(0x13000), &g, m.clone(), 0x80)
        .unwrap_err();
    assert!(
        matches!(e.reason, K::GuestFault { addr: 0x13018, .. }),
        "{e}"
    );
    put(&g, 0x13000, &ccw1(0x02, CC | IDA, 0x100, 0x13010));
    let p = t().translate(&orb1(0x13000), &g, m.clone(), 0x80).unwrap();
    assert_eq!(
        p.pins(),
        &[GuestRange::new(0x1F00, 0x100), GuestRange::new(0x100, 8)]
    );
    check_program(&p, &m, &g, F1, IdawFormat::Format2K4);
    drop(p);
}

/// vfio-ccw's `ccwchain_calc_length` keeps counting past a TIC whose target lies within the
/// CCWs counted so far (`is_tic_within_range`): the device-orientation idiom (Seek, Search
/// ID Equal, TIC back to the search, Read) needs the Read, which the channel fetches at
/// TIC + 8 when the search ends with status modifier. Ending the segment at every TIC left
/// the Read out of the host program: a program check, and an SCSW cpa that mapped back to
/// the wrong guest CCW.
#[test]
fn vfio_ccw_is_tic_within_range_keeps_the_ccw_after_a_looping_tic() {
    let g = mem(0x10000);
    chain(
        &g,
        0x1000,
        &[
            ccw1(0x07, CC, 6, 0x3000),      // Seek
            ccw1(0x31, CC, 5, 0x3010),      // Search ID Equal
            ccw1(0x08, 0, 0, 0x1008),       // TIC back to the search
            ccw1(0x06, CD, 0x100, 0x4000),  // Read Data, data-chained ...
            ccw1(0x03, SLI, 0x100, 0x5000), // ... on (its NOP code is ignored)
        ],
    );
    let w = Watched::new(g);
    let m = Arc::new(RecordingMapper::new());
    let p = t().translate(&orb1(0x1000), &w, m.clone(), 0x80).unwrap();
    let segs: Vec<_> = p.segments().collect();
    assert_eq!(segs.len(), 1);
    assert_eq!((segs[0].0, segs[0].2), (0x1000, 5));
    for k in 0..5 {
        assert_eq!(w.touching(0x1000 + 8 * k, 8), 1, "CCW {k} read once");
    }
    assert!(p.is_pinned(GuestRange::new(0x4000, 0x100)));
    assert!(p.is_pinned(GuestRange::new(0x5000, 0x100)));
    // Final status after the last CCW, and a unit check on the Read, map back exactly.
    let host = segs[0].1;
    for (k, guest) in [(5, 0x1028), (4, 0x1020)] {
        let mut scsw = Scsw::default();
        scsw.cpa.set((host + 8 * k) as u32);
        p.update_scsw(&mut scsw);
        assert_eq!(scsw.cpa.get(), guest);
    }
    check_program(&p, &m, &w.inner, F1, IdawFormat::Format2K4);
    drop(p);
    assert!(m.live_pins().is_empty());
}
