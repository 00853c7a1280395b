// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Seeded soak: 1,000 subchannels, random valid and invalid channel programs, random halt,
//! clear, cancel and resume, and every fault of the policy except duplicate interrupts (which
//! by design deliver a final status twice). Asserts that every accepted start gets exactly one
//! final status (or was cancelled), that nothing panics, and that every pin and control area is
//! returned.

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
use vm_memory::{GuestAddress, GuestMemoryMmap};

const SUBCHANNELS: u16 = 1000;
const IOS_PER_SUBCHANNEL: u32 = 3;
const REGION: u64 = 8192;

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
fn program(rng: &mut Rng, m: &dyn Mapper, n: u16, io: &mut Io) -> ccw_types::Orb {
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
                    let unpinned = GUEST_BASE + u64::from(SUBCHANNELS) * REGION;
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
    finals: usize,
    cancelled: usize,
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

#[tokio::test]
async fn soak_1000_subchannels() {
    let panics = Arc::new(AtomicUsize::new(0));
    let hook_panics = Arc::clone(&panics);
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        hook_panics.fetch_add(1, Ordering::SeqCst);
        prev(info);
    }));

    let guest = GuestMemoryMmap::<()>::from_ranges(&[(
        GuestAddress(0),
        (u64::from(SUBCHANNELS) * REGION + 8192) as usize,
    )])
    .unwrap();
    let mut b = MockBackend::builder()
        .guest_memory(&guest)
        .arena_size(64 << 20 >> 3)
        .max_ccws(10_000)
        .faults(
            FaultPolicy::seeded(0x5eed)
                .with_all_rates(0.02)
                .with_rate(FaultKind::DuplicateInterrupt, 0.0)
                .with_interrupt_delay(Duration::from_micros(300))
                .with_path_restore(Duration::from_millis(1)),
        );
    for n in 0..SUBCHANNELS {
        b = b.subchannel(0x1000 + n, Box::new(TestDevice::new(8192)));
    }
    let backend = b.build().unwrap();
    let mut events = backend.take_events().unwrap();
    let mapper = backend.storage_mapper();
    let ids = backend.subchannel_ids();
    assert_eq!(ids.len(), usize::from(SUBCHANNELS));
    for &sch in &ids {
        assert_eq!(backend.enable(sch, 0).await.unwrap(), ConditionCode::Cc0);
    }

    let mut rng = Rng(42);
    let mut left: HashMap<SubchannelId, u32> =
        ids.iter().map(|&s| (s, IOS_PER_SUBCHANNEL)).collect();
    let mut outstanding: HashMap<SubchannelId, Io> = HashMap::new();
    let mut to_start: VecDeque<SubchannelId> = ids.iter().copied().collect();
    let mut attempts: HashMap<SubchannelId, u32> = HashMap::new();
    let mut t = Tally::default();
    let deadline = Instant::now() + Duration::from_secs(60);

    loop {
        // Start what is due.
        let mut retry = Vec::new();
        while let Some(sch) = to_start.pop_front() {
            if left[&sch] == 0 || outstanding.contains_key(&sch) {
                continue;
            }
            let mut io = Io::default();
            let o = program(&mut rng, mapper.as_ref(), sch.sch_no, &mut io);
            let cc = backend.start(sch, &o).await.unwrap();
            match cc {
                ConditionCode::Cc0 => {
                    attempts.remove(&sch);
                    t.starts += 1;
                    *left.get_mut(&sch).unwrap() -= 1;
                    outstanding.insert(sch, io);
                    match rng.below(20) {
                        0 => {
                            backend.halt(sch).await.unwrap();
                        }
                        1 => {
                            backend.clear(sch).await.unwrap();
                        }
                        2 if backend.cancel(sch).await.unwrap() == ConditionCode::Cc0 => {
                            t.cancelled += 1;
                            outstanding.remove(&sch).unwrap().release(mapper.as_ref());
                            to_start.push_back(sch);
                        }
                        _ => {}
                    }
                }
                _ => {
                    t.refused += 1;
                    io.release(mapper.as_ref());
                    let a = attempts.entry(sch).or_insert(0);
                    *a += 1;
                    if *a >= 1000 {
                        let schib = backend.store_schib(sch).await.unwrap();
                        panic!(
                            "{sch} never accepts a start: cc {cc:?} {} {schib:?}",
                            schib.scsw
                        );
                    }
                    retry.push(sch);
                }
            }
        }
        if left.values().all(|&l| l == 0) && outstanding.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "soak did not finish: {} outstanding",
            outstanding.len()
        );
        let ev = if retry.is_empty() {
            tokio::time::timeout(Duration::from_secs(5), events.recv())
                .await
                .expect("an event within 5 s")
        } else {
            tokio::time::timeout(Duration::from_micros(500), events.recv())
                .await
                .unwrap_or_default()
        };
        if !retry.is_empty() {
            // Let delivery tasks run before retrying (a ready event stream never yields).
            tokio::task::yield_now().await;
        }
        to_start.extend(retry);
        let Some(ev) = ev else { continue };
        match ev {
            BackendEvent::ChannelReport(_) => t.reports += 1,
            BackendEvent::ReleaseRequest { .. } => unreachable!("the mock never asks"),
            BackendEvent::Interrupt { sch, irb } => {
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
                        1 => {
                            backend.halt(sch).await.unwrap();
                        }
                        _ => {
                            if backend.cancel(sch).await.unwrap() == ConditionCode::Cc0 {
                                t.cancelled += 1;
                                outstanding.remove(&sch).unwrap().release(mapper.as_ref());
                                to_start.push_back(sch);
                            } else {
                                backend.clear(sch).await.unwrap();
                            }
                        }
                    }
                    continue;
                }
                if active {
                    t.intermediate += 1;
                    continue;
                }
                let io = outstanding.remove(&sch).unwrap_or_else(|| {
                    panic!("{sch}: a final status without a start: {}", irb.scsw)
                });
                io.release(mapper.as_ref());
                *t.kinds.entry(kind(&irb.scsw)).or_insert(0) += 1;
                t.finals += 1;
                to_start.push_back(sch);
            }
        }
    }

    assert_eq!(panics.load(Ordering::SeqCst), 0, "a task panicked");
    assert_eq!(t.starts, t.finals + t.cancelled);
    assert_eq!(
        t.starts,
        usize::from(SUBCHANNELS) * IOS_PER_SUBCHANNEL as usize
    );
    let stats = backend.mapping_stats();
    assert!(stats.is_idle(), "{stats:?}");
    assert_eq!(stats.unbalanced_unpins, 0);
    // The run exercised what it claims to.
    assert!(t.refused > 0 && t.unsolicited > 0 && t.intermediate > 0 && t.reports > 0);
    assert!(t.cancelled > 0);
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
    eprintln!("soak endings: {:?}", t.kinds);
    eprintln!(
        "soak: {} starts, {} finals, {} cancelled, {} refused, {} unsolicited, {} intermediate, {} reports",
        t.starts, t.finals, t.cancelled, t.refused, t.unsolicited, t.intermediate, t.reports
    );
}
