// SPDX-License-Identifier: Apache-2.0 OR MIT

//! ccw-translate: translate + release of typical channel programs, against two baselines
//! over the same control bytes (the guest's CCWs and IDAWs):
//! - `memcpy`: one contiguous copy of that many bytes (the floor of any copy);
//! - `guest_copy`: every control block read out of guest memory through vm-memory, one read
//!   per CCW and one per IDAL (what a TOCTOU-safe copy costs before any translation).
//!
//! Three mappers: `bare` (identity device addresses, all guest memory premapped as a VMM
//! maps guest RAM once with IOVA = GPA, no bookkeeping: the translator's own cost),
//! `bare_pin` (the same without the premapped span: one `pin` and one `unpin` call per data
//! piece, which do nothing), `recording` (the `test-utils` RecordingMapper with its mutex
//! and pin ledger) and `mock` (the mock backend's own mapper of its simulated storage,
//! which checks guest memory and counts pins per page for its channel).

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ccw_translate::testing::RecordingMapper;
use ccw_translate::{
    ControlArea, DeviceAddr, DmaAccess, GuestRange, Limits, MapError, Mapper, Premapped, Translator,
};
use ccw_types::{CommandOrb, IdawFormat, Orb};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mock_backend::MockBackend;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Identity device addresses, one fixed control area: measures the translator alone.
struct BareMapper {
    control: Mutex<Vec<u8>>,
    /// Declares all guest memory premapped (no pin / unpin calls).
    premapped: bool,
}

impl Mapper for BareMapper {
    fn pin(&self, range: GuestRange, _: DmaAccess) -> Result<DeviceAddr, MapError> {
        Ok(range.gpa)
    }
    fn unpin(&self, _: GuestRange) {}
    fn premapped(&self) -> Option<Premapped> {
        self.premapped.then_some(Premapped::IDENTITY)
    }
    fn alloc_control(&self, len: usize) -> Result<ControlArea, MapError> {
        if len > 1 << 20 {
            return Err(MapError::Exhausted("control"));
        }
        Ok(ControlArea {
            addr: 0x7000_0000,
            len,
            token: 0,
        })
    }
    fn write_control(&self, _: &ControlArea, offset: usize, bytes: &[u8]) -> Result<(), MapError> {
        let mut c = self.control.lock().unwrap();
        c[offset..offset + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }
    fn free_control(&self, _: ControlArea) {}
}

const IDA: u8 = 0x04;
const CC: u8 = 0x40;
const CD: u8 = 0x80;
const SLI: u8 = 0x20;

fn ccw1(cmd: u8, flags: u8, count: u16, cda: u32) -> [u8; 8] {
    let c = count.to_be_bytes();
    let a = cda.to_be_bytes();
    [cmd, flags, c[0], c[1], a[0], a[1], a[2], a[3]]
}

struct Case {
    name: &'static str,
    mem: GuestMemoryMmap<()>,
    orb: Orb,
    /// Guest addresses and lengths of the control blocks (CCWs, IDALs).
    blocks: Vec<(u64, usize)>,
    ccws: u64,
    idaws: u64,
}

fn case(name: &'static str, idaw: IdawFormat, ccws: &[[u8; 8]], idals: &[(u64, Vec<u64>)]) -> Case {
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x200_0000)]).unwrap();
    let mut blocks = Vec::new();
    for (i, c) in ccws.iter().enumerate() {
        mem.write_slice(c, GuestAddress(0x1000 + 8 * i as u64))
            .unwrap();
        blocks.push((0x1000 + 8 * i as u64, 8));
    }
    let mut idaws = 0;
    for (at, list) in idals {
        let sz = idaw.idaw_size() as usize;
        for (k, a) in list.iter().enumerate() {
            let b = a.to_be_bytes();
            mem.write_slice(&b[8 - sz..], GuestAddress(at + (k * sz) as u64))
                .unwrap();
        }
        blocks.push((*at, list.len() * sz));
        idaws += list.len() as u64;
    }
    let mut o = CommandOrb::new(1, 0x1000);
    o.format2_idaw = idaw != IdawFormat::Format1;
    o.idaw_2k = idaw == IdawFormat::Format2K2;
    // Direct CCWs get one host IDAW per block piece.
    for c in ccws {
        if c[1] & IDA == 0 && c[0] != 0x08 {
            let count = u16::from_be_bytes([c[2], c[3]]) as u64;
            let addr = u32::from_be_bytes([c[4], c[5], c[6], c[7]]) as u64;
            idaws += idaw.idaws_needed(addr, count);
        }
    }
    Case {
        name,
        mem,
        orb: o.emit(),
        blocks,
        ccws: ccws.len() as u64,
        idaws,
    }
}

fn cases() -> Vec<Case> {
    let sense_id = case(
        "sense_id_1ccw",
        IdawFormat::Format2K4,
        &[ccw1(0xE4, SLI, 256, 0x10_0000)],
        &[],
    );

    let mut dasd = vec![ccw1(0x63, CC, 16, 0x10_0000), ccw1(0x47, CC, 16, 0x10_0100)];
    for i in 0..64u32 {
        let flags = if i == 63 { 0 } else { CC };
        dasd.push(ccw1(0x86, flags, 4096, 0x20_0000 + 4096 * i));
    }
    let dasd = case("dasd_de_lr_64x4k", IdawFormat::Format2K4, &dasd, &[]);

    let mut ccws = Vec::new();
    let mut idals = Vec::new();
    for i in 0..255u64 {
        let flags = if i == 254 { IDA } else { IDA | CC };
        ccws.push(ccw1(0x02, flags, 4096, (0x8000 + 8 * i) as u32));
        idals.push((0x8000 + 8 * i, vec![0x40_0000 + 4096 * i]));
    }
    let big = case("idal_255x4k", IdawFormat::Format2K4, &ccws, &idals);

    // 64 KiB through format-1 (2 KiB) IDAWs: two data-chained CCWs of 32 KiB, 16 IDAWs each.
    let mut ccws = Vec::new();
    let mut idals = Vec::new();
    for i in 0..2u64 {
        let flags = if i == 0 { IDA | CD } else { IDA };
        ccws.push(ccw1(0x01, flags, 0x8000, (0x8000 + 0x100 * i) as u32));
        idals.push((
            0x8000 + 0x100 * i,
            (0..16)
                .map(|k| 0x60_0000 + 0x10000 * i + 0x800 * k)
                .collect(),
        ));
    }
    let fmt1 = case("fmt1_idal_64k", IdawFormat::Format1, &ccws, &idals);
    vec![sense_id, dasd, big, fmt1]
}

fn bench(c: &mut Criterion) {
    // Each program holds its mapper and releases into it when dropped.
    let bare: Arc<dyn Mapper> = Arc::new(BareMapper {
        control: Mutex::new(vec![0; 1 << 20]),
        premapped: true,
    });
    let bare_pin: Arc<dyn Mapper> = Arc::new(BareMapper {
        control: Mutex::new(vec![0; 1 << 20]),
        premapped: false,
    });
    let rec: Arc<dyn Mapper> = Arc::new(RecordingMapper::new());
    let mut t = Translator::new(Limits::default());
    let mut g = c.benchmark_group("translate");
    g.warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30);
    for case in cases() {
        let bytes: usize = case.blocks.iter().map(|b| b.1).sum();
        g.throughput(Throughput::Elements(case.ccws));
        // Sanity: the case translates.
        let p = t
            .translate(&case.orb, &case.mem, bare.clone(), 0x80)
            .unwrap();
        assert_eq!(p.pins().len() as u64, case.idaws, "{}", case.name);
        drop(p);
        eprintln!(
            "{}: {} CCWs, {} host IDAWs, {} control bytes",
            case.name, case.ccws, case.idaws, bytes
        );

        g.bench_function(format!("{}/bare", case.name), |b| {
            b.iter(|| {
                drop(
                    t.translate(black_box(&case.orb), &case.mem, bare.clone(), 0x80)
                        .unwrap(),
                );
            })
        });
        g.bench_function(format!("{}/bare_pin", case.name), |b| {
            b.iter(|| {
                drop(
                    t.translate(black_box(&case.orb), &case.mem, bare_pin.clone(), 0x80)
                        .unwrap(),
                );
            })
        });
        // The mock's mapper over this case's guest memory (no subchannels needed).
        let backend = MockBackend::builder()
            .guest_memory(&case.mem)
            .build()
            .expect("mock backend");
        let mock = backend.storage_mapper();
        g.bench_function(format!("{}/mock", case.name), |b| {
            b.iter(|| {
                drop(
                    t.translate(black_box(&case.orb), &case.mem, mock.clone(), 0x80)
                        .unwrap(),
                );
            })
        });
        g.bench_function(format!("{}/recording", case.name), |b| {
            b.iter(|| {
                drop(
                    t.translate(black_box(&case.orb), &case.mem, rec.clone(), 0x80)
                        .unwrap(),
                );
            })
        });
        let src = vec![0x5Au8; bytes];
        let mut dst = vec![0u8; bytes];
        g.bench_function(format!("{}/memcpy", case.name), |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&src));
                black_box(&mut dst);
            })
        });
        g.bench_function(format!("{}/guest_copy", case.name), |b| {
            b.iter(|| {
                let mut off = 0;
                for (addr, len) in &case.blocks {
                    case.mem
                        .read_slice(&mut dst[off..off + len], GuestAddress(*addr))
                        .unwrap();
                    off += len;
                }
                black_box(&mut dst);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
