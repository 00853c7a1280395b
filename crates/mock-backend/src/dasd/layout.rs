// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Lays an [`EckdProgram`] out as format-1 CCWs in guest memory, the way a driver does before
//! START SUBCHANNEL: parameter blocks, data buffers, optionally IDALs (format-2, 4 KiB blocks)
//! and data chaining, then a TIC where the program loops.

use ccw_types::{CcwFlags, CcwFormat, CcwRepr, CommandOrb, IdawFormat};
use vm_memory::{Bytes, GuestAddress, GuestMemory};

use super::program::{EckdProgram, Payload};

/// How to lay a program out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayoutOptions {
    /// Address data through IDALs (format-2 IDAWs, 4 KiB blocks). Buffers are placed so that
    /// records cross page boundaries, as block-layer buffers do.
    pub idal: bool,
    /// Split every read buffer into two data-chained CCWs.
    pub data_chain_reads: bool,
}

/// Why a program could not be laid out.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The program does not fit below 2 GiB at the given base, or memory is missing.
    #[error("guest memory at {addr:#x}: {detail}")]
    Memory {
        /// The address.
        addr: u64,
        /// What failed.
        detail: String,
    },
    /// A buffer is longer than a CCW count can describe.
    #[error("command {index}: {len} bytes do not fit a CCW count")]
    TooLong {
        /// Command index.
        index: usize,
        /// Length.
        len: usize,
    },
}

/// A program in guest memory.
#[derive(Debug, Clone)]
pub struct LaidOut {
    /// The ORB to start it with (format-1 CCWs, format-2 IDAWs with 4 KiB blocks).
    pub orb: CommandOrb,
    /// For each `In` command in order: the guest ranges its data lands in.
    pub inputs: Vec<Vec<(u64, usize)>>,
    /// First free address after everything laid out.
    pub end: u64,
}

impl LaidOut {
    /// Reads the data the `In` commands received back from guest memory.
    pub fn read_inputs<M: GuestMemory>(&self, mem: &M) -> Result<Vec<Vec<u8>>, LayoutError> {
        self.inputs
            .iter()
            .map(|ranges| {
                let mut out = Vec::new();
                for &(addr, len) in ranges {
                    let mut b = vec![0u8; len];
                    mem.read_slice(&mut b, GuestAddress(addr))
                        .map_err(|e| mem_err(addr, e))?;
                    out.extend_from_slice(&b);
                }
                Ok(out)
            })
            .collect()
    }
}

fn mem_err(addr: u64, e: impl std::fmt::Display) -> LayoutError {
    LayoutError::Memory {
        addr,
        detail: e.to_string(),
    }
}

const PAGE: u64 = 4096;

/// A bump allocator over guest memory.
struct Arena {
    next: u64,
}

impl Arena {
    fn take(&mut self, len: u64, align: u64) -> u64 {
        let at = self.next.next_multiple_of(align);
        self.next = at + len.max(1);
        at
    }
}

/// One CCW to emit: command, flags, count and where its data lives.
struct Slot {
    cmd: u8,
    flags: CcwFlags,
    count: u16,
    cda: u32,
}

/// Lays `prog` out at `base` (8-aligned, below 2 GiB) in `mem`.
///
/// ```
/// use mock_backend::dasd::{EckdProgram, LayoutOptions, TrackAddr, lay_out};
/// use vm_memory::{GuestAddress, GuestMemoryMmap};
/// let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
/// let prog = EckdProgram::read_data(TrackAddr::new(0, 1), 1, 2, 4096);
/// let opts = LayoutOptions { idal: true, data_chain_reads: true };
/// let laid = lay_out(&prog, &mem, 0x1000, opts).unwrap();
/// assert_eq!(laid.orb.cpa, 0x1000);
/// assert_eq!(laid.inputs.len(), 2);
/// ```
pub fn lay_out<M: GuestMemory>(
    prog: &EckdProgram,
    mem: &M,
    base: u64,
    opts: LayoutOptions,
) -> Result<LaidOut, LayoutError> {
    // First pass: how many CCWs (data chaining adds one per read).
    let split = |p: &Payload| opts.data_chain_reads && matches!(p, Payload::In(n) if *n >= 2);
    let n_ccws: u64 = prog
        .ccws
        .iter()
        .map(|c| if split(&c.payload) { 2 } else { 1 })
        .sum();
    let mut arena = Arena { next: base };
    let ccw_base = arena.take(n_ccws * 8, 8);
    // Index of each command's first CCW (for TIC targets).
    let mut first_ccw = Vec::with_capacity(prog.ccws.len());
    let mut k = 0u64;
    for c in &prog.ccws {
        first_ccw.push(ccw_base + k * 8);
        k += if split(&c.payload) { 2 } else { 1 };
    }

    let mut slots: Vec<Slot> = Vec::new();
    let mut inputs = Vec::new();
    for (index, c) in prog.ccws.iter().enumerate() {
        let (bytes, len, is_in) = match &c.payload {
            Payload::Tic(to) => {
                let target = *first_ccw
                    .get(*to)
                    .ok_or_else(|| mem_err(0, "TIC target out of range"))?;
                slots.push(Slot {
                    cmd: 0x08,
                    flags: CcwFlags::NONE,
                    count: 0,
                    cda: target as u32,
                });
                continue;
            }
            Payload::Out(b) => (Some(b.as_slice()), b.len(), false),
            Payload::In(n) => (None, *n, true),
        };
        if len > usize::from(u16::MAX) {
            return Err(LayoutError::TooLong { index, len });
        }
        let parts: Vec<usize> = if split(&c.payload) {
            vec![len / 2, len - len / 2]
        } else {
            vec![len]
        };
        let mut ranges = Vec::new();
        let mut off = 0usize;
        for (pi, &plen) in parts.iter().enumerate() {
            // Buffers start mid-page with IDALs so that they cross page boundaries.
            let addr = if opts.idal {
                arena.take(PAGE + plen as u64, PAGE) + PAGE / 2
            } else {
                arena.take(plen as u64, 8)
            };
            arena.next = arena.next.max(addr + plen as u64);
            if let Some(b) = bytes {
                mem.write_slice(&b[off..off + plen], GuestAddress(addr))
                    .map_err(|e| mem_err(addr, e))?;
            }
            ranges.push((addr, plen));
            off += plen;
            let mut flags = c.flags;
            if pi + 1 < parts.len() {
                flags |= CcwFlags::CD;
            }
            let cda = if opts.idal {
                flags |= CcwFlags::IDA;
                let list: Vec<u64> = IdawFormat::Format2K4
                    .idaw_addresses(addr, plen as u64)
                    .collect();
                let at = arena.take(list.len() as u64 * 8, 8);
                for (i, a) in list.iter().enumerate() {
                    mem.write_slice(&a.to_be_bytes(), GuestAddress(at + i as u64 * 8))
                        .map_err(|e| mem_err(at, e))?;
                }
                at
            } else {
                addr
            };
            if cda > 0x7FFF_FFFF {
                return Err(mem_err(cda, "above 2 GiB"));
            }
            slots.push(Slot {
                cmd: c.cmd,
                flags,
                count: plen as u16,
                cda: cda as u32,
            });
        }
        if is_in {
            inputs.push(ranges);
        }
    }
    // Command chaining: every CCW that does not chain data chains commands, except the last
    // and TICs (which need no flags).
    let last = slots.len().saturating_sub(1);
    for (i, s) in slots.iter_mut().enumerate() {
        if i < last && s.cmd != 0x08 && !s.flags.contains(CcwFlags::CD) {
            s.flags |= CcwFlags::CC;
        }
        let repr = CcwRepr {
            cmd: s.cmd,
            flags: s.flags,
            count: s.count,
            cda: s.cda,
        };
        let bytes = repr
            .emit(CcwFormat::Format1)
            .map_err(|e| mem_err(ccw_base, e))?;
        let at = ccw_base + i as u64 * 8;
        mem.write_slice(&bytes, GuestAddress(at))
            .map_err(|e| mem_err(at, e))?;
    }
    if ccw_base > 0x7FFF_FFFF {
        return Err(mem_err(ccw_base, "above 2 GiB"));
    }
    Ok(LaidOut {
        orb: CommandOrb::new(0x00D0_A5D0, ccw_base as u32),
        inputs,
        end: arena.next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dasd::TrackAddr;
    use vm_memory::GuestMemoryMmap;

    #[test]
    fn idal_and_data_chaining_layout() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        let prog = EckdProgram::read_data(TrackAddr::new(0, 1), 1, 1, 4096);
        let opts = LayoutOptions {
            idal: true,
            data_chain_reads: true,
        };
        let laid = lay_out(&prog, &mem, 0x1000, opts).unwrap();
        let ccw = |i: u64| {
            let mut b = [0u8; 8];
            mem.read_slice(&mut b, GuestAddress(0x1000 + i * 8))
                .unwrap();
            CcwRepr::parse(b, CcwFormat::Format1).unwrap()
        };
        // DE, LR, read part 1 (CD|IDA), read part 2 (IDA, last: no CC).
        assert_eq!(ccw(0).cmd, 0x63);
        assert!(ccw(0).flags.contains(CcwFlags::CC));
        assert!(ccw(2).flags.contains(CcwFlags::CD | CcwFlags::IDA));
        assert!(!ccw(2).flags.contains(CcwFlags::CC));
        assert_eq!(ccw(3).flags, CcwFlags::IDA);
        assert_eq!((ccw(2).count, ccw(3).count), (2048, 2048));
        // Each part starts mid-page: its IDAL holds the address then the next page.
        let mut idaw = [0u8; 8];
        mem.read_slice(&mut idaw, GuestAddress(u64::from(ccw(2).cda)))
            .unwrap();
        assert_eq!(u64::from_be_bytes(idaw) % 4096, 2048);
        assert_eq!(laid.inputs[0].len(), 2);
    }
}
