// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Fuzzes the simulated channel subsystem: arbitrary host channel programs and ORBs executed
//! by mock-backend on every device model (test device, virtio-blk, ECKD 3390 on an in-memory
//! image) with seeded random faults, halt and clear at arbitrary moments.
//!
//! Input: byte 0 = device model (bits 0-1), fault rate (bits 2-4), halt/clear/resume choices
//! (bits 5-7); byte 1 = fault seed, when to halt or clear (bits 0-3) and which (bit 6); bytes 2..14 = the ORB (its CPA is
//! moved into the program area unless byte 1 bit 7 is set); the rest = the program area in
//! control memory (CCWs, IDAWs, MIDAWs, data), at most 4 KiB. Guest memory is pinned so IDAWs
//! may reach it.
//!
//! Checked on every input: no panic (in a spawned task either: libfuzzer-sys aborts on any
//! panic); START answers cc 0-3 or an operand error; every
//! accepted start, halt and clear is answered by exactly one final status (a halt or clear
//! status also answers the start it ended) and nothing follows (duplicate interruptions are
//! excluded: they are a defect by design); a suspended program is resumed or ended; after
//! the end no pin or control area is left.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use ccw_translate::{DmaAccess, GuestRange};
use ccw_types::{ActivityControl as Ac, Orb, SubchannelId};
use css_core::{Backend, BackendEvent, ConditionCode};
use libfuzzer_sys::fuzz_target;
use mock_backend::dasd::testing::MemFs;
use mock_backend::dasd::{CkdImage, CreateOptions, Eckd, Model3390};
use mock_backend::devices::{TestDevice, VirtioBlkCcw};
use mock_backend::{DeviceModel, FaultKind, FaultPolicy, MockBackend};
use vm_memory::{GuestAddress, GuestMemoryMmap};

const GUEST: usize = 0x4000;
const SCH: SubchannelId = SubchannelId::new(0, 0, 0);

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    })
}

fn device(model: u8) -> Box<dyn DeviceModel> {
    match model & 3 {
        0 | 3 => Box::new(TestDevice::new(512)),
        1 => Box::new(VirtioBlkCcw::new(64)),
        _ => {
            let fs = MemFs::new();
            let opts = CreateOptions {
                cylinders: Some(1),
                volser: Some("FUZZ01".into()),
            };
            let img =
                CkdImage::create_on(fs, std::path::Path::new("/fuzz.3390"), Model3390::M1, &opts)
                    .unwrap();
            Box::new(Eckd::new(img, 0x0100))
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 14 {
        return;
    }
    let (k0, k1) = (data[0], data[1]);
    let Ok(mut orb) = Orb::read_from(&data[2..14]) else {
        return;
    };
    let program = &data[14..data.len().min(14 + 4096)];
    runtime().block_on(run(k0, k1, &mut orb, program));
});

async fn run(k0: u8, k1: u8, orb: &mut Orb, program: &[u8]) {
    let guest = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), GUEST)]).unwrap();
    let rate = f64::from((k0 >> 2) & 7) * 0.03;
    let faults = FaultPolicy::seeded(u64::from(k1))
        .with_all_rates(rate)
        .with_rate(FaultKind::DuplicateInterrupt, 0.0)
        .with_interrupt_delay(Duration::from_micros(50))
        .with_path_restore(Duration::from_micros(100));
    let backend = MockBackend::builder()
        .subchannel(0x0100, device(k0))
        .guest_memory(&guest)
        .arena_size(1 << 16)
        .max_ccws(256)
        .faults(faults)
        .build()
        .unwrap();
    let mut events = backend.take_events().unwrap();
    let m = backend.storage_mapper();
    let area = m.alloc_control(program.len().max(8)).unwrap();
    m.write_control(&area, 0, program).unwrap();
    // Pins stay inside a page.
    let pins: Vec<GuestRange> = (0..GUEST as u64 / 4096)
        .map(|p| GuestRange::new(p * 4096, 4096))
        .collect();
    for &r in &pins {
        m.pin(r, DmaAccess::Write).unwrap();
    }
    if k1 & 0x80 == 0 {
        let len = program.len().max(8) as u32;
        orb.cpa.set(area.addr as u32 + (orb.cpa.get() % len));
    }
    assert_eq!(backend.enable(SCH, 0).await.unwrap(), ConditionCode::Cc0);

    // Requests not yet answered: the start, a halt, a clear.
    let mut start = match backend.start(SCH, orb).await {
        Ok(ConditionCode::Cc0) => true,
        Ok(_) => false,
        Err(e) => {
            // An operand exception: typed, named.
            let _ = e.to_string();
            false
        }
    };
    let (mut halt, mut clear) = (false, false);
    // Halt or clear at a moment byte 1 picks: now, or after some (virtual) microseconds.
    if start && k0 & 0x80 != 0 {
        let after = u64::from(k1 & 0x0F) * 10;
        if after > 0 {
            tokio::time::sleep(Duration::from_micros(after)).await;
        }
        if k1 & 0x40 != 0 {
            clear = backend.clear(SCH).await.unwrap() == ConditionCode::Cc0;
        } else {
            halt = backend.halt(SCH).await.unwrap() == ConditionCode::Cc0;
        }
    }
    let mut events_seen = 0u32;
    let mut idle_waits = 0;
    let mut resumes = 0;
    loop {
        let open = start || halt || clear;
        // With nothing open, wait a while longer: whatever comes then is a defect.
        let wait = Duration::from_millis(if open { 1000 } else { 20 });
        let ev = match tokio::time::timeout(wait, events.recv()).await {
            Ok(Some(ev)) => ev,
            Ok(None) => panic!("event stream closed"),
            Err(_) if !open => break,
            Err(_) => {
                // A program suspended with its interruption suppressed (ORB U) waits silently
                // for RESUME: look, and end or continue it as for a suspended interruption.
                let scsw = backend.store_schib(SCH).await.unwrap().scsw;
                if scsw.ctrl.ac().contains(Ac::SUSPENDED) && !clear {
                    act_on_suspended(&backend, k0, &mut resumes, &mut halt, &mut clear).await;
                }
                idle_waits += 1;
                assert!(
                    idle_waits < 10,
                    "unanswered after 10 s (virtual): start {start} halt {halt} clear {clear}: {scsw}"
                );
                continue;
            }
        };
        idle_waits = 0;
        events_seen += 1;
        assert!(events_seen < 10_000, "an interruption storm");
        let BackendEvent::Interrupt { sch, irb } = ev else {
            continue;
        };
        assert_eq!(sch, SCH);
        let _ = irb.to_string();
        let c = irb.scsw.ctrl;
        if c.fc().is_empty() {
            continue; // unsolicited (attention)
        }
        if !irb.scsw.is_final() {
            if c.ac().contains(Ac::SUSPENDED) && !clear {
                act_on_suspended(&backend, k0, &mut resumes, &mut halt, &mut clear).await;
            }
            continue;
        }
        use ccw_types::FunctionControl as Fc;
        if c.fc().contains(Fc::CLEAR) {
            assert!(clear, "a clear status without a clear: {}", irb.scsw);
            (start, halt, clear) = (false, false, false);
        } else if c.fc().contains(Fc::HALT) {
            assert!(halt, "a halt status without a halt: {}", irb.scsw);
            (start, halt) = (false, false);
        } else {
            assert!(start, "a final status without a start: {}", irb.scsw);
            start = false;
        }
    }
    for r in pins {
        m.unpin(r);
    }
    m.free_control(area);
    let stats = backend.mapping_stats();
    assert!(stats.is_idle(), "{stats:?}");
    assert_eq!(stats.unbalanced_unpins, 0);
}

/// Ends or continues a suspended program, as byte 0 says; after a few resumes (a CCW whose
/// suspend flag stays set suspends again at once) it is cleared.
async fn act_on_suspended(
    backend: &MockBackend,
    k0: u8,
    resumes: &mut u32,
    halt: &mut bool,
    clear: &mut bool,
) {
    let choice = if *resumes >= 3 { 3 } else { (k0 >> 5) & 3 };
    match choice {
        0 | 1 => {
            *resumes += 1;
            let _ = backend.resume(SCH).await.unwrap();
        }
        2 if !*halt => {
            *halt = backend.halt(SCH).await.unwrap() == ConditionCode::Cc0;
        }
        _ => {
            *clear = backend.clear(SCH).await.unwrap() == ConditionCode::Cc0;
        }
    }
}
