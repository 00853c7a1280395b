// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Shared helpers of the integration tests: guest memory images, CCW encoders, an
//! independent byte-level model of what a channel transfers, and a walker of host programs.

#![allow(dead_code, unreachable_pub)]

use ccw_translate::testing::RecordingMapper;
use ccw_translate::{ChannelProgram, GuestRange};
use ccw_types::{Ccw1, CcwFormat, CommandClass, CommandOrb, IdawFormat, Orb};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Flag bytes.
pub const CD: u8 = 0x80;
pub const CC: u8 = 0x40;
pub const SLI: u8 = 0x20;
pub const SKIP: u8 = 0x10;
pub const PCI: u8 = 0x08;
pub const IDA: u8 = 0x04;
pub const MIDA: u8 = 0x01;

pub fn mem(size: usize) -> GuestMemoryMmap<()> {
    GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), size)]).unwrap()
}

pub fn put(mem: &GuestMemoryMmap<()>, addr: u64, bytes: &[u8]) {
    mem.write_slice(bytes, GuestAddress(addr)).unwrap();
}

pub fn ccw1(cmd: u8, flags: u8, count: u16, cda: u32) -> [u8; 8] {
    let c = count.to_be_bytes();
    let a = cda.to_be_bytes();
    [cmd, flags, c[0], c[1], a[0], a[1], a[2], a[3]]
}

pub fn ccw0(cmd: u8, flags: u8, count: u16, cda: u32) -> [u8; 8] {
    let c = count.to_be_bytes();
    let a = cda.to_be_bytes();
    [cmd, a[1], a[2], a[3], flags, 0, c[0], c[1]]
}

pub fn ccw(fmt: CcwFormat, cmd: u8, flags: u8, count: u16, cda: u32) -> [u8; 8] {
    match fmt {
        CcwFormat::Format0 => ccw0(cmd, flags, count, cda),
        CcwFormat::Format1 => ccw1(cmd, flags, count, cda),
    }
}

/// Writes a chain of CCWs at `addr`.
pub fn chain(mem: &GuestMemoryMmap<()>, addr: u64, ccws: &[[u8; 8]]) {
    for (i, c) in ccws.iter().enumerate() {
        put(mem, addr + 8 * i as u64, c);
    }
}

/// Writes an IDAL of `fmt` at `addr`.
pub fn idal(mem: &GuestMemoryMmap<()>, addr: u64, fmt: IdawFormat, idaws: &[u64]) {
    for (i, a) in idaws.iter().enumerate() {
        match fmt {
            IdawFormat::Format1 => put(mem, addr + 4 * i as u64, &(*a as u32).to_be_bytes()),
            _ => put(mem, addr + 8 * i as u64, &a.to_be_bytes()),
        }
    }
}

pub fn orb(fmt: CcwFormat, idaw: IdawFormat, cpa: u32) -> Orb {
    let mut o = CommandOrb::new(0x1234_5678, cpa);
    o.format = fmt;
    o.format2_idaw = idaw != IdawFormat::Format1;
    o.idaw_2k = idaw == IdawFormat::Format2K2;
    o.emit()
}

pub fn orb1(cpa: u32) -> Orb {
    CommandOrb::new(0x1234_5678, cpa).emit()
}

/// The host CCW at device address `addr`.
pub fn host_ccw(m: &RecordingMapper, addr: u64) -> Ccw1 {
    let mut b = [0u8; 8];
    assert!(
        m.read_control(addr, &mut b),
        "host CCW {addr:#x} not in control memory"
    );
    Ccw1::from_bytes(b)
}

/// The IDAW block size of the host program.
pub fn host_block(p: &ChannelProgram) -> u64 {
    let o = p.host_orb();
    assert!(o.ctrl.format1() && o.ctrl.format2_idaw());
    if o.ctrl.idaw_2k() { 2048 } else { 4096 }
}

/// Guest byte addresses the host CCW at `addr` transfers, in transfer order (empty when it
/// transfers nothing), following its host IDAL as the channel would.
pub fn host_bytes(p: &ChannelProgram, m: &RecordingMapper, addr: u64) -> Vec<u64> {
    let c = host_ccw(m, addr);
    let class = CommandClass::of(c.cmd, CcwFormat::Format1);
    let count = c.count.get() as u64;
    if class == CommandClass::Tic || count == 0 || c.cmd == 0x03 {
        return vec![];
    }
    if c.flags & SKIP != 0 && class.honours_skip() {
        return vec![];
    }
    assert!(
        c.flags & IDA != 0,
        "a host data CCW must use a format-2 IDAL: {c:?}"
    );
    let bs = host_block(p);
    let backward = class == CommandClass::ReadBackward;
    let idal = c.cda.get() as u64;
    let read = |i: u64| {
        let mut b = [0u8; 8];
        assert!(
            m.read_control(idal + 8 * i, &mut b),
            "host IDAW outside control memory"
        );
        u64::from_be_bytes(b)
    };
    walk(count, bs, backward, read)
        .into_iter()
        .map(|dev| m.device_to_guest(dev).unwrap())
        .collect()
}

/// Guest byte addresses a guest CCW transfers, by byte-level simulation of the channel
/// (independent of the translator's arithmetic). `None` for programs the model rejects.
pub fn guest_bytes(
    mem: &GuestMemoryMmap<()>,
    fmt: CcwFormat,
    idaw: IdawFormat,
    raw: [u8; 8],
) -> Vec<u64> {
    let (cmd, flags, count, cda) = match fmt {
        CcwFormat::Format1 => {
            let c = Ccw1::from_bytes(raw);
            (c.cmd, c.flags, c.count.get() as u64, c.cda.get() as u64)
        }
        CcwFormat::Format0 => {
            let c = ccw_types::Ccw0::from_bytes(raw);
            (
                c.cmd,
                c.flags,
                c.count.get() as u64,
                c.data_address() as u64,
            )
        }
    };
    let class = CommandClass::of(cmd, fmt);
    if class == CommandClass::Tic || count == 0 || cmd == 0x03 {
        return vec![];
    }
    if flags & SKIP != 0 && class.honours_skip() {
        return vec![];
    }
    let backward = class == CommandClass::ReadBackward;
    if flags & IDA == 0 {
        return (0..count)
            .map(|i| if backward { cda - i } else { cda + i })
            .collect();
    }
    let bs = idaw.block_size();
    let sz = idaw.idaw_size();
    let read = |i: u64| -> u64 {
        let mut b = [0u8; 8];
        mem.read_slice(&mut b[..sz as usize], GuestAddress(cda + sz * i))
            .unwrap();
        if sz == 4 {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64
        } else {
            u64::from_be_bytes(b)
        }
    };
    walk(count, bs, backward, read)
}

/// The addresses a channel touches for `count` bytes through an IDAL whose IDAW `k` is
/// `read(k)`, byte by byte, in transfer order; asserts the later-IDAW alignment rules.
fn walk(count: u64, bs: u64, backward: bool, read: impl Fn(u64) -> u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut k = 0;
    let mut pos = read(0);
    loop {
        out.push(pos);
        if out.len() as u64 == count {
            return out;
        }
        let block_done = if backward {
            pos % bs == 0
        } else {
            (pos + 1) % bs == 0
        };
        if block_done {
            k += 1;
            pos = read(k);
            let aligned = if backward {
                pos % bs == bs - 1
            } else {
                pos % bs == 0
            };
            assert!(aligned, "IDAW {k} ({pos:#x}) breaks the block rule");
        } else if backward {
            pos -= 1;
        } else {
            pos += 1;
        }
    }
}

/// Whether `addr` lies in one of `pins`.
pub fn pinned(pins: &[GuestRange], addr: u64) -> bool {
    pins.iter().any(|r| r.gpa <= addr && addr < r.gpa + r.len)
}

/// Checks the invariants every translated program must satisfy against the guest image:
/// per CCW, host bytes == guest bytes and every one is pinned; TICs retargeted to the host
/// copy of their target; update_scsw inverts the mapping (incl. one past the end).
pub fn check_program(
    p: &ChannelProgram,
    m: &RecordingMapper,
    mem: &GuestMemoryMmap<()>,
    fmt: CcwFormat,
    idaw: IdawFormat,
) {
    let pins = p.pins();
    for (guest, host, len) in p.segments() {
        for k in 0..len as u64 {
            let mut raw = [0u8; 8];
            mem.read_slice(&mut raw, GuestAddress(guest + 8 * k))
                .unwrap();
            let hb = host_bytes(p, m, host + 8 * k);
            let gb = guest_bytes(mem, fmt, idaw, raw);
            assert_eq!(
                hb,
                gb,
                "CCW at guest {:#x}: host bytes differ",
                guest + 8 * k
            );
            for b in &hb {
                assert!(pinned(pins, *b), "byte {b:#x} reachable but not pinned");
            }
            let hc = host_ccw(m, host + 8 * k);
            if CommandClass::of(raw[0], fmt) == CommandClass::Tic {
                let target = match fmt {
                    CcwFormat::Format1 => Ccw1::from_bytes(raw).cda.get() as u64,
                    CcwFormat::Format0 => ccw_types::Ccw0::from_bytes(raw).data_address() as u64,
                };
                assert_eq!(hc.cmd, 0x08);
                assert_eq!(
                    p.guest_cpa(hc.cda.get() as u64),
                    Some(target),
                    "TIC retarget"
                );
            }
        }
        for k in 0..=len as u64 {
            let mut scsw = ccw_types::Scsw::default();
            scsw.cpa.set((host + 8 * k) as u32);
            p.update_scsw(&mut scsw);
            assert_eq!(scsw.cpa.get() as u64, guest + 8 * k, "update_scsw");
        }
    }
    // Every pin is inside a 4 KiB page and is live in the mapper.
    let live = m.live_pins();
    for r in pins {
        assert!(r.len > 0 && r.gpa / 4096 == (r.gpa + r.len - 1) / 4096);
        assert!(live.contains(r));
    }
}
