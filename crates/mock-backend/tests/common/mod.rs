// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Shared test harness: a backend, its event stream, host programs written into the arena.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use ccw_translate::{ControlArea, DmaAccess, GuestRange, Mapper};
use ccw_types::{CcwFlags, CommandOrb, Irb, Orb, SubchannelId};
use css_core::{Backend, BackendEvent, ConditionCode, EventReceiver};
use mock_backend::{GUEST_BASE, MockBackend, MockBuilder};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

pub const VIRTIO: SubchannelId = SubchannelId::new(0, 0, 0);
pub const TESTDEV: SubchannelId = SubchannelId::new(0, 0, 1);

pub fn guest_mem() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap()
}

pub struct Rig {
    pub backend: MockBackend,
    pub events: EventReceiver,
    pub guest: GuestMemoryMmap,
    pub mapper: Arc<dyn Mapper>,
    areas: Vec<ControlArea>,
}

impl Rig {
    /// The default subsystem with both subchannels enabled (intparm 0x00d30000).
    pub async fn default_enabled() -> Self {
        let guest = guest_mem();
        let backend = MockBackend::default_subsystem(&guest).unwrap();
        let rig = Self::from_backend(backend, guest);
        for sch in [VIRTIO, TESTDEV] {
            assert_eq!(
                rig.backend.enable(sch, 0x00d3_0000).await.unwrap(),
                ConditionCode::Cc0
            );
        }
        rig
    }

    pub async fn with(builder: MockBuilder) -> Self {
        let guest = guest_mem();
        let backend = builder.guest_memory(&guest).build().unwrap();
        let rig = Self::from_backend(backend, guest);
        for sch in rig.backend.subchannel_ids() {
            rig.backend.enable(sch, 0x1234).await.unwrap();
        }
        rig
    }

    pub fn from_backend(backend: MockBackend, guest: GuestMemoryMmap) -> Self {
        let events = backend.take_events().unwrap();
        let mapper = backend.storage_mapper();
        Self {
            backend,
            events,
            guest,
            mapper,
            areas: Vec::new(),
        }
    }

    /// Allocates `len` bytes of arena, filled with `fill`, and returns its device address.
    pub fn alloc(&mut self, len: usize, fill: u8) -> u32 {
        let a = self.mapper.alloc_control(len).unwrap();
        self.mapper.write_control(&a, 0, &vec![fill; len]).unwrap();
        let addr = a.addr as u32;
        self.areas.push(a);
        addr
    }

    /// Writes a host program (8-byte CCWs) into a fresh area; returns its address.
    pub fn program(&mut self, ccws: &[[u8; 8]]) -> u32 {
        let addr = self.alloc(ccws.len() * 8 + 8, 0);
        self.poke(addr as u64, &ccws.concat());
        addr
    }

    pub fn poke(&self, addr: u64, bytes: &[u8]) {
        self.backend.write_storage(addr, bytes).unwrap();
    }

    pub fn peek(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.backend.read_storage(addr, &mut b).unwrap();
        b
    }

    /// Pins guest page(s) covering `[gpa, gpa + len)` (4 KiB pieces); returns device address.
    pub fn pin(&self, gpa: u64, len: u64) -> u64 {
        let mut at = gpa;
        while at < gpa + len {
            let end = ((at / 4096) + 1) * 4096;
            let n = end.min(gpa + len) - at;
            self.mapper
                .pin(GuestRange::new(at, n), DmaAccess::Write)
                .unwrap();
            at += n;
        }
        GUEST_BASE + gpa
    }

    pub fn unpin(&self, gpa: u64, len: u64) {
        let mut at = gpa;
        while at < gpa + len {
            let end = ((at / 4096) + 1) * 4096;
            let n = end.min(gpa + len) - at;
            self.mapper.unpin(GuestRange::new(at, n));
            at += n;
        }
    }

    pub fn guest_read(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.guest.read_slice(&mut b, GuestAddress(gpa)).unwrap();
        b
    }

    pub fn release(&mut self) {
        for a in self.areas.drain(..) {
            self.mapper.free_control(a);
        }
    }

    pub async fn start(&self, sch: SubchannelId, orb: &Orb) -> ConditionCode {
        self.backend.start(sch, orb).await.unwrap()
    }

    /// The next event, within a generous bound.
    pub async fn event(&mut self) -> BackendEvent {
        tokio::time::timeout(Duration::from_secs(5), self.events.recv())
            .await
            .expect("an event within 5 s")
            .expect("event stream open")
    }

    pub async fn irb(&mut self) -> (SubchannelId, Irb) {
        loop {
            if let BackendEvent::Interrupt { sch, irb } = self.event().await {
                return (sch, irb);
            }
        }
    }

    /// Starts `orb` on `sch` (cc 0 expected) and returns the next IRB.
    pub async fn run(&mut self, sch: SubchannelId, orb: &Orb) -> Irb {
        assert_eq!(self.start(sch, orb).await, ConditionCode::Cc0);
        let (s, irb) = self.irb().await;
        assert_eq!(s, sch);
        irb
    }

    /// Asserts that no event arrives for a while.
    pub async fn quiet(&mut self) {
        let r = tokio::time::timeout(Duration::from_millis(30), self.events.recv()).await;
        assert!(r.is_err(), "unexpected event {r:?}");
    }
}

/// A format-1 CCW.
pub fn ccw1(cmd: u8, flags: CcwFlags, count: u16, cda: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = cmd;
    b[1] = flags.bits();
    b[2..4].copy_from_slice(&count.to_be_bytes());
    b[4..].copy_from_slice(&cda.to_be_bytes());
    b
}

/// A format-0 CCW.
pub fn ccw0(cmd: u8, flags: CcwFlags, count: u16, cda: u32) -> [u8; 8] {
    let a = cda.to_be_bytes();
    [
        cmd,
        a[1],
        a[2],
        a[3],
        flags.bits(),
        0,
        (count >> 8) as u8,
        count as u8,
    ]
}

/// The guest's ORB: F, P, H (C64), LPM 0xFF, as vfio-ccw passed it (word 1 0x00C2FF00).
pub fn orb(cpa: u32) -> Orb {
    let o = CommandOrb::new(0x0bad_cafe, cpa).emit();
    assert_eq!(o.ctrl.into_bits().get(), 0x00C2_FF00);
    o
}

pub fn orb_with(cpa: u32, f: impl FnOnce(&mut CommandOrb)) -> Orb {
    let mut o = CommandOrb::new(0x0bad_cafe, cpa);
    f(&mut o);
    o.emit()
}

pub fn scsw(irb: &Irb) -> [u8; 12] {
    irb.scsw.into_bytes()
}

/// SCSW bytes: word 0, cpa, dstat, cstat, count.
pub fn scsw_bytes(word0: u32, cpa: u32, dstat: u8, cstat: u8, count: u16) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&word0.to_be_bytes());
    b[4..8].copy_from_slice(&cpa.to_be_bytes());
    b[8] = dstat;
    b[9] = cstat;
    b[10..].copy_from_slice(&count.to_be_bytes());
    b
}
