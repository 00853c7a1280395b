// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Fuzz ccw-translate with arbitrary guest memory images and ORBs.
//!
//! Input: byte 0 = knobs, bytes 1..13 = the 12-byte ORB, the rest = guest memory from
//! address 0 (64 KiB, zero-filled beyond the input). Checked on every input: no panic; on
//! success every byte the host IDAWs reach lies in a pinned range, every pin stays inside a
//! 4 KiB page, update_scsw maps every host CCW address (and one past each segment) back to
//! its guest address; after release (or an error) pins == unpins, allocations == frees and
//! the mapper saw no contract violation.

#![no_main]

use std::sync::Arc;

use ccw_translate::testing::RecordingMapper;
use ccw_translate::{ChannelProgram, GuestRange, Limits, Translator};
use ccw_types::{Ccw1, CcwFormat, CommandClass, Orb, Scsw};
use libfuzzer_sys::fuzz_target;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const MEM: usize = 0x10000;

fn in_pins(pins: &[GuestRange], gpa: u64, len: u64) -> bool {
    pins.iter()
        .any(|r| r.gpa <= gpa && gpa + len <= r.gpa + r.len)
}

fn host_ccw(m: &RecordingMapper, h: u64) -> Ccw1 {
    let mut b = [0u8; 8];
    assert!(m.read_control(h, &mut b));
    Ccw1::from_bytes(b)
}

/// The class of the guest CCW whose host copy is at `h`, and whether it data-chains (CD,
/// not a TIC). Read from guest memory: a poisoned host copy (all zero) has lost both.
fn guest_ccw(
    p: &ChannelProgram,
    mem: &GuestMemoryMmap<()>,
    fmt: CcwFormat,
    h: u64,
) -> (CommandClass, bool) {
    let g = p.guest_cpa(h).unwrap();
    let mut raw = [0u8; 8];
    mem.read_slice(&mut raw, GuestAddress(g)).unwrap();
    let flags = match fmt {
        CcwFormat::Format1 => raw[1],
        CcwFormat::Format0 => raw[4],
    };
    let class = CommandClass::of(raw[0], fmt);
    (class, class != CommandClass::Tic && flags & 0x80 != 0)
}

/// The class host CCW `h` executes as: its own command's, or for a CCW reached by data
/// chaining (the guest CCW before it in its segment data-chains, or a host TIC whose
/// predecessor data-chains lands on it) its chain's first command's. `None` inside a
/// data-chain loop.
fn exec_class(
    p: &ChannelProgram,
    m: &RecordingMapper,
    mem: &GuestMemoryMmap<()>,
    fmt: CcwFormat,
    h: u64,
    seen: &mut Vec<u64>,
) -> Option<CommandClass> {
    if seen.contains(&h) {
        return None;
    }
    seen.push(h);
    let own = guest_ccw(p, mem, fmt, h).0;
    let chains = |h: u64| guest_ccw(p, mem, fmt, h).1;
    let segs: Vec<_> = p.segments().collect();
    if segs.first().is_some_and(|s| s.1 == h) {
        return Some(own);
    }
    if !segs.iter().any(|s| s.1 == h) {
        return if chains(h - 8) {
            exec_class(p, m, mem, fmt, h - 8, seen)
        } else {
            Some(own)
        };
    }
    for &(_, host, len) in &segs {
        for k in 1..len as u64 {
            let tic = host_ccw(m, host + 8 * k);
            if tic.cmd == 0x08
                && tic.cda.get() as u64 == h
                && chains(host + 8 * (k - 1))
                && let Some(c) = exec_class(p, m, mem, fmt, host + 8 * (k - 1), seen)
            {
                return Some(c);
            }
        }
    }
    Some(own)
}

/// Follows every host data CCW's IDAL piece by piece, as a channel would.
fn check(p: &ChannelProgram, m: &RecordingMapper, mem: &GuestMemoryMmap<()>, fmt: CcwFormat) {
    let pins = p.pins();
    for r in pins {
        assert!(
            r.len > 0 && r.gpa / 4096 == (r.gpa + r.len - 1) / 4096,
            "pin {r}"
        );
    }
    let o = p.host_orb();
    assert!(o.ctrl.format1() && o.ctrl.format2_idaw());
    let bs: u64 = if o.ctrl.idaw_2k() { 2048 } else { 4096 };
    for (guest, host, len) in p.segments() {
        for k in 0..len as u64 {
            let mut b = [0u8; 8];
            assert!(m.read_control(host + 8 * k, &mut b));
            let c = Ccw1::from_bytes(b);
            let class = CommandClass::of(c.cmd, CcwFormat::Format1);
            if class == CommandClass::Tic {
                // Into the host program. A format-1 TIC keeps the guest's flags and count
                // (the executing CSS program-checks them), so IDA here means nothing.
                assert!(
                    p.guest_cpa(c.cda.get() as u64).is_some(),
                    "TIC out of program"
                );
                continue;
            }
            if c.flags & 0x04 == 0 {
                // No IDAL: moves no data.
                assert_eq!(c.cda.get(), 0, "direct host CCW with an address");
                continue;
            }
            let exec = exec_class(p, m, mem, fmt, host + 8 * k, &mut Vec::new()).unwrap_or(class);
            let backward = exec == CommandClass::ReadBackward;
            let mut left = c.count.get() as u64;
            let mut i = 0;
            while left > 0 {
                let mut w = [0u8; 8];
                assert!(m.read_control(c.cda.get() as u64 + 8 * i, &mut w));
                let dev = u64::from_be_bytes(w);
                let g = m.device_to_guest(dev).unwrap();
                let n = if backward {
                    left.min(g % bs + 1)
                } else {
                    left.min(bs - g % bs)
                };
                let lo = if backward { g - (n - 1) } else { g };
                assert!(
                    in_pins(pins, lo, n),
                    "host IDAW {dev:#x} reaches unpinned guest bytes"
                );
                left -= n;
                i += 1;
            }
        }
        for k in 0..=len as u64 {
            let mut scsw = Scsw::default();
            scsw.cpa.set((host + 8 * k) as u32);
            p.update_scsw(&mut scsw);
            assert_eq!(scsw.cpa.get() as u64, guest + 8 * k);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 13 {
        return;
    }
    let knobs = data[0];
    let Ok(mut orb) = Orb::read_from(&data[1..13]) else {
        return;
    };
    if knobs & 1 != 0 {
        // Keep the program inside the image most of the time.
        orb.cpa.set(orb.cpa.get() % MEM as u32);
    }
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM)]).unwrap();
    let image = &data[13..];
    mem.write_slice(&image[..image.len().min(MEM)], GuestAddress(0))
        .unwrap();
    let m = Arc::new(RecordingMapper::new());
    if knobs & 2 != 0 {
        m.fail_pin_after(Some(u64::from(knobs >> 4)));
    }
    let limits = if knobs & 4 != 0 {
        Limits {
            max_ccws_per_segment: 9,
            max_segments: 3,
            max_idaws: 20,
        }
    } else {
        Limits::default()
    };
    let mut t = Translator::new(limits);
    match t.translate(&orb, &mem, m.clone(), 0x80) {
        Ok(p) => {
            check(&p, &m, &mem, p.guest_orb().format);
            drop(p); // releases into `m`
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let s = m.stats();
    assert_eq!(s.pins, s.unpins);
    assert_eq!(s.allocs, s.frees);
    assert!(m.live_pins().is_empty());
    assert!(m.violations().is_empty(), "{:?}", m.violations());
});
