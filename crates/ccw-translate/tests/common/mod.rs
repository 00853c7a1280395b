// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Shared helpers of the integration tests: guest memory images, CCW encoders, an
//! independent byte-level model of what a channel transfers, and a walker of host programs.

#![allow(dead_code, unreachable_pub)]

use ccw_translate::testing::RecordingMapper;
use ccw_translate::{ChannelProgram, GuestRange};
use ccw_types::{Ccw1, CcwFlags, CcwFormat, CcwRepr, CommandClass, CommandOrb, IdawFormat, Orb};
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

/// A 64 KiB guest with `ccws` chained at 0x1000, where most tests' ORBs point.
pub fn guest(ccws: &[[u8; 8]]) -> GuestMemoryMmap<()> {
    let m = mem(0x10000);
    chain(&m, 0x1000, ccws);
    m
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
    let cmd = host_ccw(m, addr).cmd;
    host_bytes_as(p, m, addr, cmd)
}

/// [`host_bytes`] for a CCW executing command `exec` (a data-chained CCW executes the
/// command of its chain's first CCW; its own code is ignored unless it is a TIC).
pub fn host_bytes_as(p: &ChannelProgram, m: &RecordingMapper, addr: u64, exec: u8) -> Vec<u64> {
    let c = host_ccw(m, addr);
    if CommandClass::of(c.cmd, CcwFormat::Format1) == CommandClass::Tic {
        return vec![];
    }
    let class = CommandClass::of(exec, CcwFormat::Format1);
    let count = c.count.get() as u64;
    if count == 0 || exec == 0x03 {
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
    guest_bytes_as(mem, fmt, idaw, raw, raw[0])
}

/// [`guest_bytes`] for a CCW executing command `exec` (see [`host_bytes_as`]).
pub fn guest_bytes_as(
    mem: &GuestMemoryMmap<()>,
    fmt: CcwFormat,
    idaw: IdawFormat,
    raw: [u8; 8],
    exec: u8,
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
    if CommandClass::of(cmd, fmt) == CommandClass::Tic {
        return vec![];
    }
    let class = CommandClass::of(exec, fmt);
    if count == 0 || exec == 0x03 {
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

fn guest_ccw(mem: &GuestMemoryMmap<()>, addr: u64) -> [u8; 8] {
    let mut raw = [0u8; 8];
    mem.read_slice(&mut raw, GuestAddress(addr)).unwrap();
    raw
}

fn is_tic(raw: [u8; 8], fmt: CcwFormat) -> bool {
    CommandClass::of(raw[0], fmt) == CommandClass::Tic
}

fn tic_target(raw: [u8; 8], fmt: CcwFormat) -> u64 {
    match fmt {
        CcwFormat::Format1 => Ccw1::from_bytes(raw).cda.get() as u64,
        CcwFormat::Format0 => ccw_types::Ccw0::from_bytes(raw).data_address() as u64,
    }
}

fn data_chains(raw: [u8; 8], fmt: CcwFormat) -> bool {
    let flags = match fmt {
        CcwFormat::Format1 => raw[1],
        CcwFormat::Format0 => raw[4],
    };
    !is_tic(raw, fmt) && flags & CD != 0
}

/// The command the channel executes at CCW `k` of segment `s` (segments as
/// [`ChannelProgram::segments`] lists them): its own, or, when the CCW before it in memory
/// data-chains (or, at a segment head other than the ORB's, a TIC whose predecessor
/// data-chains lands on it), the command of that chain's first CCW. Data-chain loops give
/// no answer on their own and are cut.
pub fn exec_cmd(
    mem: &GuestMemoryMmap<()>,
    fmt: CcwFormat,
    segs: &[(u64, u64, usize)],
    s: usize,
    k: usize,
) -> u8 {
    let own = guest_ccw(mem, segs[s].0 + 8 * k as u64)[0];
    exec_walk(mem, fmt, segs, s, k, &mut Vec::new()).unwrap_or(own)
}

fn exec_walk(
    mem: &GuestMemoryMmap<()>,
    fmt: CcwFormat,
    segs: &[(u64, u64, usize)],
    s: usize,
    k: usize,
    seen: &mut Vec<(usize, usize)>,
) -> Option<u8> {
    if seen.contains(&(s, k)) {
        return None;
    }
    seen.push((s, k));
    let g = segs[s].0;
    let own = guest_ccw(mem, g + 8 * k as u64)[0];
    if k > 0 {
        if data_chains(guest_ccw(mem, g + 8 * (k as u64 - 1)), fmt) {
            return exec_walk(mem, fmt, segs, s, k - 1, seen);
        }
        return Some(own);
    }
    if s == 0 {
        // The ORB starts a new command here.
        return Some(own);
    }
    let mut found = None;
    for (j, &(gj, _, lj)) in segs.iter().enumerate() {
        for m in 1..lj {
            let raw = guest_ccw(mem, gj + 8 * m as u64);
            if found.is_none()
                && is_tic(raw, fmt)
                && tic_target(raw, fmt) == g
                && data_chains(guest_ccw(mem, gj + 8 * (m as u64 - 1)), fmt)
            {
                found = exec_walk(mem, fmt, segs, j, m - 1, seen);
            }
        }
    }
    Some(found.unwrap_or(own))
}

/// Whether CCW `k` of segment `s` is reached only through a status-modifier skip over a TIC
/// back into its own segment: it follows such a TIC, or its segment was found by a TIC that
/// is (the first TIC, in discovery order, that targets the head).
pub fn speculative(
    mem: &GuestMemoryMmap<()>,
    fmt: CcwFormat,
    segs: &[(u64, u64, usize)],
    s: usize,
    k: usize,
) -> bool {
    let (g, _, _) = segs[s];
    let loops_back = (0..k).any(|m| {
        let raw = guest_ccw(mem, g + 8 * m as u64);
        is_tic(raw, fmt) && (g..g + 8 * (m as u64 + 1)).contains(&tic_target(raw, fmt))
    });
    if loops_back || s == 0 {
        return loops_back;
    }
    let creator = segs[..s].iter().enumerate().find_map(|(j, &(gj, _, lj))| {
        (0..lj)
            .find(|&m| {
                let raw = guest_ccw(mem, gj + 8 * m as u64);
                is_tic(raw, fmt) && tic_target(raw, fmt) == g
            })
            .map(|m| (j, m))
    });
    creator.is_some_and(|(j, m)| speculative(mem, fmt, segs, j, m))
}

/// Whether a guest CCW faithfully translates to the all-zero host CCW that also marks a
/// poisoned one: command 0, count 0 and no flag but IDA (dropped when no data moves), e.g. a
/// data-chained continuation (whose own command byte the channel ignores) with IDA and count 0.
pub fn translates_to_zero(raw: [u8; 8], fmt: CcwFormat) -> bool {
    CcwRepr::parse(raw, fmt).is_ok_and(|c| {
        c.cmd == 0 && c.count == 0 && c.flags.difference(CcwFlags::IDA) == CcwFlags::NONE
    })
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
    let segs: Vec<_> = p.segments().collect();
    for (s, &(guest, host, len)) in segs.iter().enumerate() {
        for k in 0..len as u64 {
            let raw = guest_ccw(mem, guest + 8 * k);
            let hc = host_ccw(m, host + 8 * k);
            if hc.into_bytes() == [0; 8] && raw != [0; 8] && !translates_to_zero(raw, fmt) {
                // Poisoned: the channel program-checks here, as it would at the guest CCW.
                assert!(
                    speculative(mem, fmt, &segs, s, k as usize),
                    "poisoned CCW at guest {:#x} is not speculative",
                    guest + 8 * k
                );
                continue;
            }
            let exec = exec_cmd(mem, fmt, &segs, s, k as usize);
            let hb = host_bytes_as(p, m, host + 8 * k, exec);
            let gb = guest_bytes_as(mem, fmt, idaw, raw, exec);
            assert_eq!(
                hb,
                gb,
                "CCW at guest {:#x}: host bytes differ",
                guest + 8 * k
            );
            for b in &hb {
                assert!(pinned(pins, *b), "byte {b:#x} reachable but not pinned");
            }
            if is_tic(raw, fmt) {
                let target = tic_target(raw, fmt);
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
