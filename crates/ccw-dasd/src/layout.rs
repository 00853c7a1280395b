// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Lays an [`EckdProgram`] out as format-1 CCWs in guest memory, the way a driver does before
//! START SUBCHANNEL: parameter blocks, data buffers, optionally IDALs (format-2, 4 KiB blocks)
//! and data chaining, then a TIC where the program loops.

use std::sync::Arc;

use ccw_translate::{ControlArea, DmaAccess, GuestRange, Mapper};
use ccw_types::{CcwFlags, CcwFormat, CcwRepr, CommandOrb, IdawFormat};
use vm_memory::{Bytes, GuestAddress, GuestMemory};

use crate::program::{EckdProgram, Payload};

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

/// Where one planned CCW points.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// A TIC to the planned CCW with this index.
    Tic(usize),
    /// Data in guest memory.
    Data { gpa: u64, len: usize },
}

/// One CCW before addresses of CCWs and IDALs are assigned.
#[derive(Debug, Clone, Copy)]
struct Planned {
    cmd: u8,
    flags: CcwFlags,
    target: Target,
}

/// The CCWs of `prog` with their data placed (and, for output, written) in guest memory from
/// `data_base` on; also the guest ranges of each input command.
struct Plan {
    ccws: Vec<Planned>,
    inputs: Vec<Vec<(u64, usize)>>,
    arena: Arena,
}

fn split(opts: LayoutOptions, p: &Payload) -> bool {
    opts.data_chain_reads && matches!(p, Payload::In(n) if *n >= 2)
}

fn ccw_count(prog: &EckdProgram, opts: LayoutOptions) -> usize {
    prog.ccws
        .iter()
        .map(|c| if split(opts, &c.payload) { 2 } else { 1 })
        .sum()
}

fn plan<M: GuestMemory>(
    prog: &EckdProgram,
    mem: &M,
    data_base: u64,
    opts: LayoutOptions,
) -> Result<Plan, LayoutError> {
    // Index of each command's first CCW (TIC targets).
    let mut first_ccw = Vec::with_capacity(prog.ccws.len());
    let mut k = 0usize;
    for c in &prog.ccws {
        first_ccw.push(k);
        k += if split(opts, &c.payload) { 2 } else { 1 };
    }
    let mut arena = Arena { next: data_base };
    let mut ccws = Vec::with_capacity(k);
    let mut inputs = Vec::new();
    for (index, c) in prog.ccws.iter().enumerate() {
        let (bytes, len, is_in) = match &c.payload {
            Payload::Tic(to) => {
                let target = *first_ccw
                    .get(*to)
                    .ok_or_else(|| mem_err(0, "TIC target out of range"))?;
                ccws.push(Planned {
                    cmd: 0x08,
                    flags: CcwFlags::NONE,
                    target: Target::Tic(target),
                });
                continue;
            }
            Payload::Out(b) => (Some(b.as_slice()), b.len(), false),
            Payload::In(n) => (None, *n, true),
        };
        if len > usize::from(u16::MAX) {
            return Err(LayoutError::TooLong { index, len });
        }
        let parts: Vec<usize> = if split(opts, &c.payload) {
            vec![len / 2, len - len / 2]
        } else {
            vec![len]
        };
        let mut ranges = Vec::new();
        let mut off = 0usize;
        for (pi, &plen) in parts.iter().enumerate() {
            // Buffers start mid-page with IDALs so that they cross page boundaries.
            let gpa = if opts.idal {
                arena.take(PAGE + plen as u64, PAGE) + PAGE / 2
            } else {
                arena.take(plen as u64, 8)
            };
            arena.next = arena.next.max(gpa + plen as u64);
            if let Some(b) = bytes {
                mem.write_slice(&b[off..off + plen], GuestAddress(gpa))
                    .map_err(|e| mem_err(gpa, e))?;
            }
            ranges.push((gpa, plen));
            off += plen;
            let mut flags = c.flags;
            if pi + 1 < parts.len() {
                flags |= CcwFlags::CD;
            }
            ccws.push(Planned {
                cmd: c.cmd,
                flags,
                target: Target::Data { gpa, len: plen },
            });
        }
        if is_in {
            inputs.push(ranges);
        }
    }
    Ok(Plan {
        ccws,
        inputs,
        arena,
    })
}

/// Encodes the planned CCWs with their final data addresses; command chaining is set on every
/// CCW that does not chain data, except the last and TICs.
fn encode(ccws: &[Planned], cdas: &[u64], ida: bool) -> Result<Vec<u8>, LayoutError> {
    let last = ccws.len().saturating_sub(1);
    let mut out = Vec::with_capacity(ccws.len() * 8);
    for (i, (c, &cda)) in ccws.iter().zip(cdas).enumerate() {
        let mut flags = c.flags;
        if i < last && c.cmd != 0x08 && !flags.contains(CcwFlags::CD) {
            flags |= CcwFlags::CC;
        }
        let count = match c.target {
            Target::Tic(_) => 0,
            Target::Data { len, .. } => {
                if ida {
                    flags |= CcwFlags::IDA;
                }
                len as u16
            }
        };
        if cda > 0x7FFF_FFFF {
            return Err(mem_err(cda, "above 2 GiB"));
        }
        let repr = CcwRepr {
            cmd: c.cmd,
            flags,
            count,
            cda: cda as u32,
        };
        out.extend_from_slice(&repr.emit(CcwFormat::Format1).map_err(|e| mem_err(cda, e))?);
    }
    Ok(out)
}

/// Lays `prog` out at `base` (8-aligned, below 2 GiB) in `mem`: CCWs first, then data and
/// IDALs, all at guest addresses (what a guest hands to START SUBCHANNEL).
///
/// ```
/// use ccw_dasd::{EckdProgram, LayoutOptions, lay_out};
/// use ccw_types::eckd::TrackAddr;
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
    let ccw_base = base.next_multiple_of(8);
    let n = ccw_count(prog, opts) as u64;
    let Plan {
        ccws,
        inputs,
        mut arena,
    } = plan(prog, mem, ccw_base + n * 8, opts)?;
    let mut cdas = Vec::with_capacity(ccws.len());
    for c in &ccws {
        cdas.push(match c.target {
            Target::Tic(i) => ccw_base + 8 * i as u64,
            Target::Data { gpa, .. } if !opts.idal => gpa,
            Target::Data { gpa, len } => {
                let list: Vec<u64> = IdawFormat::Format2K4
                    .idaw_addresses(gpa, len as u64)
                    .map_err(|e| mem_err(gpa, e))?
                    .collect();
                let at = arena.take(list.len() as u64 * 8, 8);
                let bytes: Vec<u8> = list.iter().flat_map(|a| a.to_be_bytes()).collect();
                mem.write_slice(&bytes, GuestAddress(at))
                    .map_err(|e| mem_err(at, e))?;
                at
            }
        });
    }
    let bytes = encode(&ccws, &cdas, opts.idal)?;
    mem.write_slice(&bytes, GuestAddress(ccw_base))
        .map_err(|e| mem_err(ccw_base, e))?;
    if ccw_base > 0x7FFF_FFFF {
        return Err(mem_err(ccw_base, "above 2 GiB"));
    }
    Ok(LaidOut {
        orb: CommandOrb::new(0x00D0_A5D0, ccw_base as u32),
        inputs,
        end: arena.next,
    })
}

/// A program laid out the way a driver running directly on the channel subsystem (not in a
/// guest) builds it: CCWs and IDALs in control memory from the [`Mapper`], data in guest
/// memory pinned page by page and addressed through format-2 IDAWs with device addresses.
/// It holds its [`Mapper`]: dropping it (once its final status arrived) unpins the data and
/// frees the control memory, exactly once.
pub struct NativeProgram {
    /// The ORB to start it with.
    pub orb: CommandOrb,
    /// For each `In` command in order: the guest ranges its data lands in.
    pub inputs: Vec<Vec<(u64, usize)>>,
    area: Option<ControlArea>,
    pins: Vec<GuestRange>,
    mapper: Arc<dyn Mapper>,
}

impl std::fmt::Debug for NativeProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeProgram")
            .field("orb", &self.orb)
            .field("inputs", &self.inputs)
            .field("area", &self.area)
            .field("pins", &self.pins)
            .finish_non_exhaustive()
    }
}

/// The release: unpins the data and frees the control memory.
impl Drop for NativeProgram {
    fn drop(&mut self) {
        for r in self.pins.drain(..) {
            self.mapper.unpin(r);
        }
        if let Some(a) = self.area.take() {
            self.mapper.free_control(a);
        }
    }
}

impl NativeProgram {
    /// Reads the data the `In` commands received back from guest memory.
    pub fn read_inputs<M: GuestMemory>(&self, mem: &M) -> Result<Vec<Vec<u8>>, LayoutError> {
        LaidOut {
            orb: self.orb,
            inputs: self.inputs.clone(),
            end: 0,
        }
        .read_inputs(mem)
    }
}

/// Lays `prog` out for direct execution (see [`NativeProgram`]); data goes to guest memory
/// from `data_base`. Every data CCW uses an IDAL.
pub fn lay_out_native<M: GuestMemory>(
    prog: &EckdProgram,
    mem: &M,
    data_base: u64,
    mapper: Arc<dyn Mapper>,
    data_chain_reads: bool,
) -> Result<NativeProgram, LayoutError> {
    let opts = LayoutOptions {
        idal: true,
        data_chain_reads,
    };
    let Plan { ccws, inputs, .. } = plan(prog, mem, data_base, opts)?;
    let mut native = NativeProgram {
        orb: CommandOrb::new(0, 0),
        inputs,
        area: None,
        pins: Vec::new(),
        mapper,
    };
    // On error, dropping the half-built program gives back what it pinned and allocated.
    build_native(&ccws, &mut native)?;
    Ok(native)
}

fn build_native(ccws: &[Planned], native: &mut NativeProgram) -> Result<(), LayoutError> {
    let mapper = Arc::clone(&native.mapper);
    let map_err = |e: ccw_translate::MapError| mem_err(0, e);
    // IDAWs per data CCW, each piece pinned without crossing a page.
    let mut idals: Vec<Vec<u64>> = Vec::with_capacity(ccws.len());
    for c in ccws {
        let mut list = Vec::new();
        if let Target::Data { gpa, len } = c.target {
            let access = match ccw_types::CommandClass::of(c.cmd, CcwFormat::Format1) {
                ccw_types::CommandClass::Write | ccw_types::CommandClass::Control => {
                    DmaAccess::Read
                }
                _ => DmaAccess::Write,
            };
            let end = gpa + (len as u64).max(1);
            let mut at = gpa;
            while at < end {
                let piece = GuestRange {
                    gpa: at,
                    len: (at | (PAGE - 1)) + 1 - at,
                }
                .clamp_to(end);
                let dev = mapper.pin(piece, access).map_err(map_err)?;
                native.pins.push(piece);
                list.push(dev);
                at += piece.len;
            }
        }
        idals.push(list);
    }
    let ccw_bytes = ccws.len() * 8;
    let idal_bytes: usize = idals.iter().map(|l| l.len() * 8).sum();
    let area = mapper
        .alloc_control(ccw_bytes + idal_bytes)
        .map_err(map_err)?;
    let base = area.addr;
    native.area = Some(area);
    let mut cdas = Vec::with_capacity(ccws.len());
    let mut idal_off = ccw_bytes;
    let mut idal_area = Vec::with_capacity(idal_bytes);
    for (c, list) in ccws.iter().zip(&idals) {
        cdas.push(match c.target {
            Target::Tic(i) => base + 8 * i as u64,
            Target::Data { .. } => {
                let at = base + idal_off as u64;
                idal_off += list.len() * 8;
                idal_area.extend(list.iter().flat_map(|a| a.to_be_bytes()));
                at
            }
        });
    }
    let mut bytes = encode(ccws, &cdas, true)?;
    bytes.extend_from_slice(&idal_area);
    let area = native
        .area
        .as_ref()
        .ok_or_else(|| mem_err(base, "control area lost"))?;
    mapper.write_control(area, 0, &bytes).map_err(map_err)?;
    native.orb = CommandOrb::new(0x00D0_A5D1, base as u32);
    Ok(())
}

trait ClampTo {
    fn clamp_to(self, end: u64) -> Self;
}

impl ClampTo for GuestRange {
    /// The range cut so that it ends no later than `end`.
    fn clamp_to(self, end: u64) -> Self {
        GuestRange {
            gpa: self.gpa,
            len: self.len.min(end - self.gpa),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ccw_types::eckd::TrackAddr;
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
