// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Seeded soak: many subchannels, random valid and invalid channel programs, halt, clear, cancel
//! and resume at random moments, and every fault of the policy (path loss, device not
//! operational, delayed, spurious and duplicate interruptions, ...). Asserts that every
//! accepted start, halt and clear gets exactly one answer (a final status, or for a start a
//! successful cancel), that nothing panics, that every pin and control area is returned, and
//! (for runs of 100,000 I/Os or more) that resident memory stays flat after warm-up.
//!
//! Size: `CCW_SOAK_SUBCHANNELS` (default 1,000) and `CCW_SOAK_IOS` (default 3,000), so CI runs
//! a small soak in seconds and `cargo xtask soak --ios N` the big one (10,000 subchannels).
//!
//! Duplicate interruptions are a defect of a layer above the channel that consumers must
//! tolerate. The mock sends the copy right behind the original under the subchannel's lock,
//! and this test runs on a current-thread runtime and takes every queued event before it
//! starts anything new, so a copy is always the very next event of its subchannel in the same
//! batch: that is how it is recognised (and counted) here.

mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ccw_translate::{ControlArea, DmaAccess, GuestRange, Mapper};
use ccw_types::{
    ActivityControl as Ac, CcwFlags as F, CcwFormat, CommandOrb, StatusControl as Sc, SubchannelId,
};
use common::{ccw0, ccw1};
use css_core::{Backend, BackendEvent, ConditionCode};
use mock_backend::{FaultKind, FaultPolicy, GUEST_BASE, MockBackend, devices::TestDevice};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const DEFAULT_SUBCHANNELS: u16 = 1000;
const DEFAULT_IOS: u64 = 3000;
const REGION: u64 = 8192;

/// A size from the environment, or its default.
fn size<T: std::str::FromStr>(var: &str, default: T) -> T {
    match std::env::var(var) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{var}={v:?} is not a number")),
        Err(_) => default,
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Default)]
struct Io {
    areas: Vec<ControlArea>,
    pins: Vec<GuestRange>,
}

impl Io {
    fn release(self, m: &dyn Mapper) {
        for r in self.pins {
            m.unpin(r);
        }
        for a in self.areas {
            m.free_control(a);
        }
    }
}

/// Builds a random program for subchannel number `n`; returns its ORB.
fn program(rng: &mut Rng, m: &dyn Mapper, n: u16, subchannels: u16, io: &mut Io) -> ccw_types::Orb {
    let fmt0 = rng.chance(10);
    let count_ccws = 1 + rng.below(5) as usize;
    let prog = m.alloc_control(8 * count_ccws + 8).unwrap();
    let base = prog.addr as u32;
    let mut ccws = Vec::new();
    for i in 0..count_ccws {
        let last = i + 1 == count_ccws;
        let mut flags = if last { F::NONE } else { F::CC };
        if rng.chance(20) {
            flags |= F::SLI;
        }
        if rng.chance(5) {
            flags |= F::PCI;
        }
        let here = base + 8 * i as u32;
        let (cmd, count, cda) = match rng.below(12) {
            0..=4 => {
                let cmd = if rng.below(5) < 3 { 0x02 } else { 0x01 };
                if rng.chance(50) {
                    // Guest data through a format-2 IDAL, possibly over two pages.
                    let gpa = u64::from(n) * REGION + rng.below(4096);
                    let max = if rng.chance(30) { 6000 } else { 300 };
                    let count = 1 + rng.below(max);
                    let mut idaws = Vec::new();
                    let mut at = gpa;
                    while at < gpa + count {
                        let end = ((at / 4096) + 1) * 4096;
                        let len = end.min(gpa + count) - at;
                        let r = GuestRange::new(at, len);
                        m.pin(r, DmaAccess::Write).unwrap();
                        io.pins.push(r);
                        idaws.extend_from_slice(&(GUEST_BASE + at).to_be_bytes());
                        at += len;
                    }
                    let list = m.alloc_control(idaws.len()).unwrap();
                    m.write_control(&list, 0, &idaws).unwrap();
                    let a = list.addr as u32;
                    io.areas.push(list);
                    flags |= F::IDA;
                    (cmd, count as u16, a)
                } else {
                    let count = rng.below(300) as u16;
                    let buf = m.alloc_control(usize::from(count).max(1)).unwrap();
                    let a = buf.addr as u32;
                    io.areas.push(buf);
                    if rng.chance(10) {
                        flags |= F::SKIP;
                    }
                    (cmd, count.max(u16::from(fmt0)), a)
                }
            }
            5 => (0x03, 0, 0),
            6 => {
                let buf = m.alloc_control(32).unwrap();
                let a = buf.addr as u32;
                io.areas.push(buf);
                (0x04, 32, a)
            }
            7 => match rng.below(3) {
                0 if !last => {
                    flags = F::NONE;
                    (0x08, 0, here + 8)
                }
                1 => {
                    flags = F::NONE;
                    (0x08, 0, here)
                }
                _ => {
                    flags = F::NONE;
                    (0x08, 0, here + 4)
                }
            },
            8 => match rng.below(4) {
                0 => (0x00, 1, 0),
                1 => (0x02, 16, 0x100),
                2 => {
                    // A guest page nobody pinned: channel-data check.
                    let unpinned = GUEST_BASE + u64::from(subchannels) * REGION;
                    let list = m.alloc_control(8).unwrap();
                    m.write_control(&list, 0, &unpinned.to_be_bytes()).unwrap();
                    let a = list.addr as u32;
                    io.areas.push(list);
                    flags |= F::IDA;
                    (0x02, 16, a)
                }
                _ => (0x27, 0, 0),
            },
            9 => {
                flags |= F::S;
                (0x03, 0, 0)
            }
            10 => {
                flags |= F::CD;
                (0x02, 0, 0)
            }
            _ => (0x99, 4, 0),
        };
        let bytes = if fmt0 {
            ccw0(cmd, flags, count, cda)
        } else {
            ccw1(cmd, flags, count, cda)
        };
        ccws.extend_from_slice(&bytes);
    }
    m.write_control(&prog, 0, &ccws).unwrap();
    io.areas.push(prog);
    let mut o = CommandOrb::new(u32::from(n), base);
    if fmt0 {
        o.format = CcwFormat::Format0;
    }
    o.suspend = rng.chance(30);
    o.initial_status = rng.chance(5);
    if rng.chance(3) {
        // Storage is key 0: a store with key 5 is a protection check.
        o.key = 5;
    }
    o.emit()
}

#[derive(Default)]
struct Tally {
    starts: usize,
    /// Starts answered by a final status.
    finals: usize,
    cancelled: usize,
    halts: usize,
    halts_answered: usize,
    clears: usize,
    clears_answered: usize,
    duplicates: usize,
    unsolicited: usize,
    intermediate: usize,
    reports: usize,
    refused: usize,
    /// Final statuses by kind.
    kinds: HashMap<&'static str, usize>,
}

fn kind(scsw: &ccw_types::Scsw) -> &'static str {
    use ccw_types::{DeviceStatus as D, FunctionControl as Fc, SubchannelStatus as S};
    let c = scsw.ctrl;
    let cs = scsw.subchannel_status();
    if c.fc().contains(Fc::CLEAR) {
        "clear"
    } else if c.fc().contains(Fc::HALT) {
        "halt"
    } else if c.deferred_cc() == 3 {
        "deferred-cc3"
    } else if cs.contains(S::PROGRAM_CHECK) {
        "program-check"
    } else if cs.intersects(S::CHANNEL_DATA_CHECK | S::PROTECTION_CHECK) {
        "storage-check"
    } else if scsw.device_status().contains(D::UNIT_CHECK) {
        "unit-check"
    } else if cs.contains(S::INCORRECT_LENGTH) {
        "incorrect-length"
    } else {
        "normal"
    }
}

/// What one subchannel is waiting for.
#[derive(Default)]
struct State {
    /// I/Os still to start.
    left: u64,
    /// The accepted start not yet answered.
    io: Option<Io>,
    /// An accepted halt not yet answered.
    halt: bool,
    /// An accepted clear not yet answered.
    clear: bool,
    /// Refused starts in a row.
    attempts: u32,
    /// The subchannel's previous event in this batch (a duplicate repeats it).
    last: Option<ccw_types::Irb>,
}

impl State {
    fn busy(&self) -> bool {
        self.io.is_some() || self.halt || self.clear
    }
}

/// Resident and peak memory of this process in KiB (`VmRSS`, `VmHWM`), where /proc has them.
fn memory_kib() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[tokio::test]
async fn soak() {
    let subchannels: u16 = size("CCW_SOAK_SUBCHANNELS", DEFAULT_SUBCHANNELS);
    let total_ios: u64 = size("CCW_SOAK_IOS", DEFAULT_IOS);
    assert!(subchannels > 0 && total_ios > 0);
    let n = usize::from(subchannels);

    let panics = Arc::new(AtomicUsize::new(0));
    let hook_panics = Arc::clone(&panics);
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        hook_panics.fetch_add(1, Ordering::SeqCst);
        prev(info);
    }));

    let guest = GuestMemoryMmap::<()>::from_ranges(&[(
        GuestAddress(0),
        (u64::from(subchannels) * REGION + 8192) as usize,
    )])
    .unwrap();
    // Touch every page now (guest memory and device buffers are allocated lazily by the OS),
    // so that resident memory after warm-up measures the stack, not first touches.
    let zeros = vec![0u8; REGION as usize];
    for i in 0..=u64::from(subchannels) {
        guest.write_slice(&zeros, GuestAddress(i * REGION)).unwrap();
    }
    let mut b = MockBackend::builder()
        .guest_memory(&guest)
        .arena_size(64 << 20 >> 3)
        .max_ccws(10_000)
        .faults(
            FaultPolicy::seeded(0x5eed)
                .with_all_rates(0.02)
                .with_rate(FaultKind::DuplicateInterrupt, 0.01)
                .with_interrupt_delay(Duration::from_micros(300))
                .with_path_restore(Duration::from_millis(1)),
        );
    for i in 0..subchannels {
        let mut dev = TestDevice::new(8192);
        dev.set_record(&zeros);
        dev.set_record(&[]);
        b = b.subchannel(0x1000 + i, Box::new(dev));
    }
    let backend = b.build().unwrap();
    let mut events = backend.take_events().unwrap();
    let mapper = backend.storage_mapper();
    let ids = backend.subchannel_ids();
    assert_eq!(ids.len(), n);
    let index: HashMap<SubchannelId, usize> =
        ids.iter().enumerate().map(|(i, &s)| (s, i)).collect();
    for &sch in &ids {
        assert_eq!(backend.enable(sch, 0).await.unwrap(), ConditionCode::Cc0);
    }

    let mut rng = Rng(42);
    let mut states: Vec<State> = (0..n as u64)
        .map(|i| State {
            left: total_ios / n as u64 + u64::from(i < total_ios % n as u64),
            ..State::default()
        })
        .collect();
    // Subchannels with I/Os left or a request unanswered.
    let mut open = states.iter().filter(|s| s.left > 0).count();
    let mut to_start: VecDeque<usize> = (0..n).collect();
    let mut t = Tally::default();
    let checkpoint = (total_ios / 10).max(1);
    let mut samples: Vec<(usize, u64)> = Vec::new();
    let began = Instant::now();

    loop {
        // Start what is due.
        let mut retry = Vec::new();
        while let Some(i) = to_start.pop_front() {
            let sch = ids[i];
            let st = &mut states[i];
            if st.left == 0 || st.busy() {
                continue;
            }
            let mut io = Io::default();
            let o = program(&mut rng, mapper.as_ref(), sch.sch_no, subchannels, &mut io);
            let cc = backend.start(sch, &o).await.unwrap();
            if cc != ConditionCode::Cc0 {
                t.refused += 1;
                io.release(mapper.as_ref());
                st.attempts += 1;
                if st.attempts == 1000 {
                    // Give delivery tasks and timers a real pause before calling it a stall.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if st.attempts >= 2000 {
                    let schib = backend.store_schib(sch).await.unwrap();
                    panic!(
                        "{sch} never accepts a start: cc {cc:?} {} {schib:?}",
                        schib.scsw
                    );
                }
                retry.push(i);
                continue;
            }
            st.attempts = 0;
            t.starts += 1;
            st.left -= 1;
            st.io = Some(io);
            match rng.below(20) {
                0 if backend.halt(sch).await.unwrap() == ConditionCode::Cc0 => {
                    t.halts += 1;
                    st.halt = true;
                }
                1 => {
                    assert_eq!(backend.clear(sch).await.unwrap(), ConditionCode::Cc0);
                    t.clears += 1;
                    st.clear = true;
                }
                2 if backend.cancel(sch).await.unwrap() == ConditionCode::Cc0 => {
                    t.cancelled += 1;
                    st.io.take().unwrap().release(mapper.as_ref());
                    if st.left == 0 {
                        open -= 1;
                    } else {
                        to_start.push_back(i);
                    }
                }
                _ => {}
            }
        }
        if open == 0 {
            break;
        }
        let first = if retry.is_empty() {
            match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
                Ok(ev) => ev,
                Err(_) => {
                    let mut why = String::new();
                    for i in (0..n).filter(|&i| states[i].busy()).take(5) {
                        let st = &states[i];
                        let schib = backend.store_schib(ids[i]).await.unwrap();
                        why.push_str(&format!(
                            "\n  {}: start {} halt {} clear {}: {}",
                            ids[i],
                            st.io.is_some(),
                            st.halt,
                            st.clear,
                            schib.scsw
                        ));
                    }
                    panic!("no event within 5 s; {open} subchannels open:{why}");
                }
            }
        } else {
            // Let delivery tasks run before retrying (a ready event stream never yields).
            tokio::task::yield_now().await;
            tokio::time::timeout(Duration::from_micros(500), events.recv())
                .await
                .unwrap_or_default()
        };
        to_start.extend(retry);
        // Take the whole batch before starting anything (see the module docs on duplicates).
        let mut batch: Vec<BackendEvent> = first.into_iter().collect();
        while let Ok(ev) = events.try_recv() {
            batch.push(ev);
        }
        let mut touched = Vec::with_capacity(batch.len());
        for ev in batch {
            let (sch, irb) = match ev {
                BackendEvent::ChannelReport(_) => {
                    t.reports += 1;
                    continue;
                }
                BackendEvent::ReleaseRequest { .. } => unreachable!("the mock never asks"),
                BackendEvent::Interrupt { sch, irb } => (sch, irb),
            };
            let i = index[&sch];
            touched.push(i);
            let st = &mut states[i];
            if st.last.as_ref() == Some(&irb) {
                t.duplicates += 1;
                st.last = None;
                continue;
            }
            st.last = Some(irb);
            let c = irb.scsw.ctrl;
            if c.fc().is_empty() {
                t.unsolicited += 1;
                continue;
            }
            let active = c.ac().intersects(Ac::SUBCHANNEL_ACTIVE | Ac::DEVICE_ACTIVE);
            if c.ac().contains(Ac::SUSPENDED)
                && c.sc().contains(Sc::INTERMEDIATE)
                && !c.sc().intersects(Sc::PRIMARY | Sc::SECONDARY)
            {
                t.intermediate += 1;
                match rng.below(3) {
                    0 => {
                        let cc = backend.resume(sch).await.unwrap();
                        assert_eq!(cc, ConditionCode::Cc0, "{}", irb.scsw);
                    }
                    1 if !st.halt && !st.clear => {
                        if backend.halt(sch).await.unwrap() == ConditionCode::Cc0 {
                            t.halts += 1;
                            st.halt = true;
                        }
                    }
                    _ if st.clear => {}
                    _ => {
                        if backend.cancel(sch).await.unwrap() == ConditionCode::Cc0 {
                            t.cancelled += 1;
                            st.io.take().unwrap().release(mapper.as_ref());
                            if !st.busy() {
                                if st.left == 0 {
                                    open -= 1;
                                } else {
                                    to_start.push_back(i);
                                }
                            }
                        } else {
                            assert_eq!(backend.clear(sch).await.unwrap(), ConditionCode::Cc0);
                            t.clears += 1;
                            st.clear = true;
                        }
                    }
                }
                continue;
            }
            if active {
                t.intermediate += 1;
                continue;
            }
            // A final status: it answers a clear, a halt or the start, whichever was asked.
            use ccw_types::FunctionControl as Fc;
            if c.fc().contains(Fc::CLEAR) {
                assert!(
                    st.clear,
                    "{sch}: a clear status without a clear: {}",
                    irb.scsw
                );
                st.clear = false;
                t.clears_answered += 1;
                if std::mem::take(&mut st.halt) {
                    // The clear ended the halt function too.
                    t.halts_answered += 1;
                }
            } else if c.fc().contains(Fc::HALT) {
                assert!(st.halt, "{sch}: a halt status without a halt: {}", irb.scsw);
                st.halt = false;
                t.halts_answered += 1;
            } else {
                assert!(
                    st.io.is_some(),
                    "{sch}: a final status without a start: {}",
                    irb.scsw
                );
            }
            *t.kinds.entry(kind(&irb.scsw)).or_insert(0) += 1;
            if let Some(io) = st.io.take() {
                io.release(mapper.as_ref());
                t.finals += 1;
                if (t.finals + t.cancelled) as u64 % checkpoint == 0 {
                    if let Some((rss, _)) = memory_kib() {
                        samples.push((t.finals + t.cancelled, rss));
                    }
                    eprintln!(
                        "soak: {} of {total_ios} I/Os answered after {:.1?}, rss {:?} KiB, {:?}",
                        t.finals + t.cancelled,
                        began.elapsed(),
                        memory_kib().map(|m| m.0),
                        backend.mapping_stats()
                    );
                }
            }
            if !st.busy() {
                if st.left == 0 {
                    open -= 1;
                } else {
                    to_start.push_back(i);
                }
            }
        }
        // A copy never crosses batches: what comes next may repeat an event genuinely (a
        // resumed program that suspends again at the same CCW).
        for i in touched {
            states[i].last = None;
        }
        // Halt or clear a random subchannel at a random moment of its program.
        if rng.chance(2) {
            let i = rng.below(n as u64) as usize;
            let st = &mut states[i];
            if st.io.is_some() && !st.halt && !st.clear {
                if rng.chance(50) {
                    if backend.halt(ids[i]).await.unwrap() == ConditionCode::Cc0 {
                        t.halts += 1;
                        st.halt = true;
                    }
                } else {
                    assert_eq!(backend.clear(ids[i]).await.unwrap(), ConditionCode::Cc0);
                    t.clears += 1;
                    st.clear = true;
                }
            }
        }
    }

    assert_eq!(panics.load(Ordering::SeqCst), 0, "a task panicked");
    // Every request answered exactly once.
    assert_eq!(t.starts as u64, total_ios);
    assert_eq!(t.starts, t.finals + t.cancelled);
    assert_eq!(t.halts, t.halts_answered);
    assert_eq!(t.clears, t.clears_answered);
    assert!(states.iter().all(|s| !s.busy() && s.left == 0));
    // Nothing is left pinned or allocated.
    let stats = backend.mapping_stats();
    assert!(stats.is_idle(), "{stats:?}");
    assert_eq!(stats.unbalanced_unpins, 0);
    eprintln!("soak endings: {:?}", t.kinds);
    eprintln!(
        "soak: {subchannels} subchannels, {} starts, {} finals, {} cancelled, {} halts, {} clears, {} refused, {} duplicates, {} unsolicited, {} intermediate, {} reports in {:.1?}",
        t.starts,
        t.finals,
        t.cancelled,
        t.halts,
        t.clears,
        t.refused,
        t.duplicates,
        t.unsolicited,
        t.intermediate,
        t.reports,
        began.elapsed()
    );
    if let Some((rss, peak)) = memory_kib() {
        eprintln!("soak memory: rss {rss} KiB, peak {peak} KiB, samples {samples:?}");
    }
    // Memory is flat after warm-up (the first fifth of the run; every page was touched up
    // front): no later sample grows past the warm-up one by more than 2 % plus 4 MiB. Too
    // short a run has no warm-up.
    if total_ios >= 100_000 && samples.len() >= 4 {
        let warm = samples[1].1;
        for &(at, rss) in &samples[2..] {
            assert!(
                rss <= warm + warm / 50 + 4 * 1024,
                "resident memory grew from {warm} KiB (warm) to {rss} KiB at {at} I/Os"
            );
        }
    }
    // The run exercised what it claims to.
    assert!(t.refused > 0 && t.unsolicited > 0 && t.intermediate > 0 && t.reports > 0);
    assert!(t.cancelled > 0 && t.halts > 0 && t.clears > 0 && t.duplicates > 0);
    for k in [
        "clear",
        "halt",
        "deferred-cc3",
        "program-check",
        "storage-check",
        "unit-check",
        "incorrect-length",
        "normal",
    ] {
        assert!(
            t.kinds.get(k).copied().unwrap_or(0) > 0,
            "no {k} ending: {:?}",
            t.kinds
        );
    }
}
