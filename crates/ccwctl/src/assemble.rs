// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Lays a parsed [`Program`] out in guest memory: CCWs, IDAW and MIDAW lists, data buffers,
//! and the ORB that starts it.
//!
//! Default layout (all guest physical addresses):
//!
//! | what | where |
//! |---|---|
//! | CCWs | from `0x1000` (or `orb cpa=`), 8 bytes each |
//! | IDAW / MIDAW lists | after the CCWs, 16-byte aligned |
//! | data buffers | from `0x10000` (or after the lists, if later), 8-byte aligned, in CCW order; `at=` fixes one |
//!
//! Guest memory is one region from 0 (at least 1 MiB), plus a region around every `at=` buffer
//! beyond it, so format-2 IDAWs can reach data above 2 GiB without mapping everything below.
//!
//! ```
//! use ccwctl::{assemble::Assembled, program::{no_files, Program}};
//! use vm_memory::{Bytes, GuestAddress};
//! let p = Program::parse("sense-id sli count=8\n", "x", &mut no_files)?;
//! let asm = Assembled::new(&p).unwrap();
//! let mut ccw = [0u8; 8];
//! asm.mem.read_slice(&mut ccw, GuestAddress(0x1000)).unwrap();
//! assert_eq!(ccw, [0xE4, 0x20, 0x00, 0x08, 0x00, 0x01, 0x00, 0x00]);
//! assert_eq!(asm.orb.cpa.get(), 0x1000);
//! # Ok::<(), ccwctl::program::ProgramError>(())
//! ```

use std::sync::Arc;

use ccw_types::{
    Ccw1, CcwFlags, CcwFormat, CcwRepr, CommandClass, IdawFormat, MidawFlags, MidawRepr, Orb,
};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use zerocopy::big_endian::{U16, U32};

use crate::program::{Data, Program};
use crate::program_error::{Pos, ProgramError, Reason};

/// Where CCWs go unless the program says `orb cpa=`.
pub const DEFAULT_CPA: u32 = 0x1000;
/// Where data buffers start by default.
pub const DATA_BASE: u64 = 0x1_0000;
/// Smallest guest memory.
pub const MIN_MEMORY: u64 = 1 << 20;
/// Largest total guest memory the assembler maps.
pub const MAX_MEMORY: u64 = 1 << 30;
const REGION_ALIGN: u64 = 1 << 16;

/// Where one CCW and its data ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Guest address of the CCW.
    pub addr: u32,
    /// The CCW as written.
    pub ccw: CcwRepr,
    /// The data buffer (guest address, length), when the assembler allocated one.
    pub buffer: Option<(u64, u16)>,
    /// The IDAW or MIDAW list: guest address and the data addresses it holds.
    pub list: Option<(u64, Vec<u64>)>,
}

/// A program laid out in guest memory, ready to start.
#[derive(Debug)]
pub struct Assembled {
    /// The guest memory holding everything.
    pub mem: Arc<GuestMemoryMmap>,
    /// The ORB (guest form: `cpa` is a guest address).
    pub orb: Orb,
    /// Per CCW, in program order.
    pub placed: Vec<Placed>,
    /// The CCW format.
    pub format: CcwFormat,
}

fn place_err(pos: Pos, what: &'static str, addr: u64, problem: &'static str) -> ProgramError {
    ProgramError::at(
        pos,
        Reason::Placement {
            what,
            addr,
            problem,
        },
    )
}

fn align_up(v: u64, a: u64) -> Option<u64> {
    v.checked_add(a - 1).map(|x| x & !(a - 1))
}

/// The data addresses of a MIDAW list for `count` bytes at `addr`: one piece per 4 KiB page.
fn midaw_pieces(addr: u64, count: u64) -> Vec<(u64, u16)> {
    let mut out = Vec::new();
    let mut a = addr;
    let end = addr + count;
    while a < end {
        let page_end = (a & !0xFFF) + 0x1000;
        let n = page_end.min(end) - a;
        out.push((a, n as u16));
        a += n;
    }
    out
}

/// IDAW addresses for `count` bytes at `addr`, descending for read backward (reference §8.3);
/// `None` when no list of this format can reach the whole transfer (format 1 past 2 GiB).
fn idaw_list(fmt: IdawFormat, addr: u64, count: u64, backward: bool) -> Option<Vec<u64>> {
    if !backward {
        return fmt.idaw_addresses(addr, count).ok().map(Iterator::collect);
    }
    fmt.check_transfer(addr, count).ok()?;
    // Read backward: the first IDAW designates the highest byte; later ones the last byte of
    // each lower block.
    let bs = fmt.block_size();
    let high = addr + count.max(1) - 1;
    let n = fmt.idaws_needed(addr, count);
    Some(
        (0..n)
            .map(|i| {
                if i == 0 {
                    high
                } else {
                    (high & !(bs - 1)) - (i - 1) * bs - 1
                }
            })
            .collect(),
    )
}

impl Assembled {
    /// Lays `program` out in a new guest memory sized for it. Errors (addresses out of range
    /// for the format, overlaps with the program, memory too large) name the CCW line.
    pub fn new(program: &Program) -> Result<Self, ProgramError> {
        Self::build(program, None)
    }

    /// Lays `program` out in `mem` (which a backend may already know), failing with a
    /// placement error if something falls outside it. [`Assembled::memory_for`] makes a memory
    /// that fits.
    pub fn in_memory(program: &Program, mem: Arc<GuestMemoryMmap>) -> Result<Self, ProgramError> {
        Self::build(program, Some(mem))
    }

    /// A guest memory with every region `program` needs (at least [`MIN_MEMORY`] from 0).
    pub fn memory_for(program: &Program) -> Result<GuestMemoryMmap, ProgramError> {
        Ok(Arc::unwrap_or_clone(Self::new(program)?.mem))
    }

    /// The default guest memory: [`MIN_MEMORY`] from 0 (enough for programs without `at=`
    /// buffers beyond it).
    pub fn default_memory() -> Result<GuestMemoryMmap, ProgramError> {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MIN_MEMORY as usize)])
            .map_err(|_| place_err(Pos::default(), "guest memory", 0, "cannot map guest memory"))
    }

    fn build(program: &Program, given: Option<Arc<GuestMemoryMmap>>) -> Result<Self, ProgramError> {
        let format = program.format();
        let first = program.ccws.first().map(|c| c.pos).unwrap_or_default();
        let cpa = program.cpa.unwrap_or(DEFAULT_CPA);
        let n = program.ccws.len() as u64;
        let ccw_end = u64::from(cpa) + 8 * n;
        let limit = match format {
            CcwFormat::Format0 => 1u64 << 24,
            CcwFormat::Format1 => 1u64 << 31,
        };
        if ccw_end > limit {
            return Err(place_err(
                first,
                "channel program",
                cpa.into(),
                "beyond the format's addressing limit",
            ));
        }
        let idaw_fmt = program.orb.idaw_format();

        // Control lists after the CCWs.
        let mut ctl = align_up(ccw_end, 16).unwrap_or(ccw_end);
        let mut next_data = DATA_BASE;
        // First pass: buffers and list sizes.
        struct Plan {
            buffer: Option<(u64, u16)>,
            list_addr: Option<u64>,
        }
        let mut plans = Vec::with_capacity(program.ccws.len());
        let mut fixed: Vec<(u64, u64)> = Vec::new();
        for line in &program.ccws {
            let buffer = match &line.data {
                Data::Buffer { at: Some(a), .. } => {
                    let end = a.checked_add(u64::from(line.count)).ok_or(place_err(
                        line.pos,
                        "data buffer",
                        *a,
                        "wraps the address space",
                    ))?;
                    if *a < ccw_end && end > u64::from(cpa) {
                        return Err(place_err(
                            line.pos,
                            "data buffer",
                            *a,
                            "overlaps the channel program",
                        ));
                    }
                    fixed.push((*a, end));
                    Some((*a, line.count))
                }
                Data::Buffer { at: None, .. } => None, // placed below, after the lists
                Data::None | Data::Raw(_) => None,
            };
            let wants_list = matches!(line.data, Data::Buffer { .. })
                && line.flags.intersects(CcwFlags::IDA | CcwFlags::MIDA);
            let list_addr = if wants_list {
                let a = ctl;
                let len = if line.flags.contains(CcwFlags::MIDA) {
                    16 * (u64::from(line.count) / 0x1000 + 2)
                } else {
                    8 * (u64::from(line.count) / 2048 + 2)
                };
                ctl = align_up(ctl + len, 16).unwrap_or(ctl + len);
                Some(a)
            } else {
                None
            };
            plans.push(Plan { buffer, list_addr });
        }
        next_data = next_data.max(align_up(ctl, 0x1000).unwrap_or(ctl));
        for (plan, line) in plans.iter_mut().zip(&program.ccws) {
            if let (Data::Buffer { at: None, .. }, None) = (&line.data, plan.buffer) {
                // Skip over fixed buffers so defaults never land on them.
                let mut a = next_data;
                let len = u64::from(line.count).max(1);
                while let Some(&(_, e)) = fixed.iter().find(|&&(s, e)| a < e && a + len > s) {
                    a = align_up(e, 8).unwrap_or(e);
                }
                plan.buffer = Some((a, line.count));
                next_data = align_up(a + len, 8).unwrap_or(a + len);
            }
        }

        // Memory regions: low [0, low_end) plus one around each far fixed buffer.
        let mut low_end = next_data.max(ctl).max(MIN_MEMORY);
        let mut far: Vec<(u64, u64)> = Vec::new();
        for &(s, e) in &fixed {
            if s < low_end + (64 << 20) {
                low_end = low_end.max(e);
            } else {
                far.push((
                    s & !(REGION_ALIGN - 1),
                    align_up(e, REGION_ALIGN).unwrap_or(e),
                ));
            }
        }
        let low_end = align_up(low_end, REGION_ALIGN).unwrap_or(low_end);
        far.sort_unstable();
        let mut ranges: Vec<(u64, u64)> = vec![(0, low_end)];
        for (s, e) in far {
            let last = ranges.last_mut().expect("ranges starts non-empty");
            if s <= last.1 {
                last.1 = last.1.max(e);
            } else {
                ranges.push((s, e));
            }
        }
        let total: u64 = ranges.iter().map(|(s, e)| e - s).sum();
        if total > MAX_MEMORY {
            return Err(place_err(
                first,
                "guest memory",
                total,
                "more than 1 GiB would be needed",
            ));
        }
        let regions: Vec<(GuestAddress, usize)> = ranges
            .iter()
            .map(|&(s, e)| (GuestAddress(s), (e - s) as usize))
            .collect();
        let mem =
            match given {
                Some(m) => m,
                None => Arc::new(GuestMemoryMmap::from_ranges(&regions).map_err(|_| {
                    place_err(first, "guest memory", total, "cannot map guest memory")
                })?),
            };

        // Second pass: write buffers, lists, CCWs.
        let mut placed = Vec::with_capacity(program.ccws.len());
        for (i, (line, plan)) in program.ccws.iter().zip(&plans).enumerate() {
            let class = line.class(format);
            let mut list = None;
            let cda: u64 = match (&line.data, plan.buffer) {
                (Data::Raw(a), _) => u64::from(*a),
                (Data::None, _) => match line.tic_target {
                    Some(t) => u64::from(cpa) + 8 * t as u64,
                    None => 0,
                },
                (Data::Buffer { init, .. }, Some((addr, _))) => {
                    let mut bytes = init.clone();
                    bytes.resize(usize::from(line.count), 0);
                    mem.write_slice(&bytes, GuestAddress(addr)).map_err(|_| {
                        place_err(line.pos, "data buffer", addr, "not in guest memory")
                    })?;
                    let count = u64::from(line.count);
                    if let Some(la) = plan.list_addr {
                        if line.flags.contains(CcwFlags::MIDA) {
                            let pieces = midaw_pieces(addr, count);
                            for (k, &(a, c)) in pieces.iter().enumerate() {
                                let flags = if k + 1 == pieces.len() {
                                    MidawFlags::LAST
                                } else {
                                    MidawFlags::NONE
                                };
                                let m = MidawRepr {
                                    flags,
                                    count: c,
                                    addr: a,
                                }
                                .emit()
                                .into_bytes();
                                mem.write_slice(&m, GuestAddress(la + 16 * k as u64))
                                    .map_err(|_| {
                                        place_err(line.pos, "MIDAW list", la, "not in guest memory")
                                    })?;
                            }
                            list = Some((la, pieces.iter().map(|p| p.0).collect()));
                        } else {
                            let addrs = idaw_list(
                                idaw_fmt,
                                addr,
                                count,
                                class == CommandClass::ReadBackward,
                            )
                            .ok_or_else(|| {
                                place_err(
                                    line.pos,
                                    "data buffer",
                                    addr,
                                    "beyond 2 GiB: format-1 IDAWs cannot reach it (use `orb idaw=format2-4k`)",
                                )
                            })?;
                            for (k, &a) in addrs.iter().enumerate() {
                                let res = match idaw_fmt {
                                    IdawFormat::Format1 => {
                                        if a >= 1 << 31 {
                                            return Err(place_err(
                                                line.pos,
                                                "data buffer",
                                                addr,
                                                "beyond 2 GiB: format-1 IDAWs cannot reach it (use `orb idaw=format2-4k`)",
                                            ));
                                        }
                                        mem.write_slice(
                                            &(a as u32).to_be_bytes(),
                                            GuestAddress(la + 4 * k as u64),
                                        )
                                    }
                                    _ => mem.write_slice(
                                        &a.to_be_bytes(),
                                        GuestAddress(la + 8 * k as u64),
                                    ),
                                };
                                res.map_err(|_| {
                                    place_err(line.pos, "IDAW list", la, "not in guest memory")
                                })?;
                            }
                            list = Some((la, addrs));
                        }
                        la
                    } else {
                        addr
                    }
                }
                (Data::Buffer { .. }, None) => 0,
            };
            let max: u64 = match format {
                CcwFormat::Format0 => 0xFF_FFFF,
                CcwFormat::Format1 => 0x7FFF_FFFF,
            };
            let direct_end = cda
                + if plan.list_addr.is_some() {
                    0
                } else {
                    u64::from(line.count)
                };
            let raw = matches!(line.data, Data::Raw(_));
            if !raw && (cda > max || direct_end > max + 1) {
                return Err(place_err(
                    line.pos,
                    "data buffer",
                    cda,
                    "beyond the format's data-address limit (use `ida`, or format 1)",
                ));
            }
            let ccw = CcwRepr {
                cmd: line.cmd,
                flags: line.flags,
                count: line.count,
                cda: cda as u32,
            };
            // Stored forms directly: a raw `cda=` may set bits the validated form refuses
            // (format-1 bit 0), which is the point of writing one.
            let bytes = match format {
                CcwFormat::Format1 => Ccw1 {
                    cmd: ccw.cmd,
                    flags: ccw.flags.bits(),
                    count: U16::new(ccw.count),
                    cda: U32::new(ccw.cda),
                }
                .into_bytes(),
                CcwFormat::Format0 => match ccw.emit(CcwFormat::Format0) {
                    Ok(b) => b,
                    Err(_) => {
                        return Err(place_err(
                            line.pos,
                            "data address",
                            cda,
                            "does not fit a format-0 CCW (24 bits)",
                        ));
                    }
                },
            };
            let addr = cpa + 8 * i as u32;
            mem.write_slice(&bytes, GuestAddress(u64::from(addr)))
                .map_err(|_| place_err(line.pos, "CCW", addr.into(), "not in guest memory"))?;
            placed.push(Placed {
                addr,
                ccw,
                buffer: plan.buffer,
                list,
            });
        }
        let mut orb = program.orb;
        orb.cpa = cpa;
        Ok(Self {
            mem,
            orb: orb.emit(),
            placed,
            format,
        })
    }

    /// The index of the CCW at guest address `addr`, if it is one of the program's.
    pub fn index_of(&self, addr: u32) -> Option<usize> {
        let base = self.placed.first()?.addr;
        let off = addr.checked_sub(base)?;
        let i = (off / 8) as usize;
        (off % 8 == 0 && i < self.placed.len()).then_some(i)
    }

    /// Reads `len` bytes of guest memory at `addr` (for showing data after a run).
    pub fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.mem.read_slice(&mut buf, GuestAddress(addr)).ok()?;
        Some(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::no_files;
    use vm_memory::GuestMemoryBackend;

    fn asm(src: &str) -> Result<Assembled, ProgramError> {
        Assembled::new(&Program::parse(src, "t", &mut no_files)?)
    }

    fn word(a: &Assembled, addr: u64, n: usize) -> Vec<u8> {
        a.read(addr, n).unwrap()
    }

    #[test]
    fn chain_layout_and_tic() {
        let a = asm("top: read cc count=16\nwrite cc data=x\"aabb\"\ntic top\n").unwrap();
        assert_eq!(a.placed[0].addr, 0x1000);
        assert_eq!(a.placed[0].buffer, Some((DATA_BASE, 16)));
        assert_eq!(a.placed[1].buffer, Some((DATA_BASE + 16, 2)));
        assert_eq!(word(&a, DATA_BASE + 16, 2), vec![0xaa, 0xbb]);
        assert_eq!(word(&a, 0x1010, 8), vec![0x08, 0, 0, 0, 0, 0, 0x10, 0x00]);
        assert_eq!(a.index_of(0x1008), Some(1));
        assert_eq!(a.index_of(0x1018), None);
        let orb = ccw_types::OrbRepr::from_orb(&a.orb).unwrap();
        let ccw_types::OrbRepr::Command(o) = orb else {
            panic!()
        };
        assert_eq!((o.cpa, o.format), (0x1000, CcwFormat::Format1));
    }

    #[test]
    fn format2_idal_for_a_buffer_crossing_pages() {
        let a = asm("read ida count=0x1800 at=0x20800\n").unwrap();
        let (la, addrs) = a.placed[0].list.clone().unwrap();
        assert_eq!(addrs, vec![0x20800, 0x21000]);
        assert_eq!(u64::from(a.placed[0].ccw.cda), la);
        assert_eq!(word(&a, la, 8), 0x20800u64.to_be_bytes().to_vec());
        assert_eq!(word(&a, la + 8, 8), 0x21000u64.to_be_bytes().to_vec());
    }

    #[test]
    fn format1_idaws_are_words_with_2k_blocks() {
        let a = asm("orb idaw=format1\nread ida count=0x1000 at=0x20400\n").unwrap();
        let (la, addrs) = a.placed[0].list.clone().unwrap();
        assert_eq!(addrs, vec![0x20400, 0x20800, 0x21000]);
        assert_eq!(word(&a, la + 4, 4), 0x20800u32.to_be_bytes().to_vec());
    }

    #[test]
    fn midaws_split_at_pages_and_mark_the_last() {
        let a = asm("orb midaw\nread mida count=0x1000 at=0x20800\n").unwrap();
        let (la, addrs) = a.placed[0].list.clone().unwrap();
        assert_eq!(addrs, vec![0x20800, 0x21000]);
        assert_eq!(word(&a, la, 16)[5..8], [0x00, 0x08, 0x00]);
        assert_eq!(word(&a, la + 16, 16)[5..8], [0x80, 0x08, 0x00]);
    }

    #[test]
    fn read_backward_idaws_designate_last_bytes() {
        assert_eq!(
            idaw_list(IdawFormat::Format2K4, 0x20800, 0x1000, true).unwrap(),
            vec![0x217FF, 0x20FFF]
        );
    }

    #[test]
    fn data_above_2g_through_format2_idaws() {
        let a = asm("read ida count=16 at=0x1_0000_0000\n").unwrap();
        assert_eq!(a.placed[0].list.as_ref().unwrap().1, vec![0x1_0000_0000]);
        assert!(asm("read count=16 at=0x1_0000_0000\n").is_err());
        assert!(asm("orb idaw=format1\nread ida count=16 at=0x1_0000_0000\n").is_err());
    }

    #[test]
    fn raw_addresses_are_written_as_given() {
        let a = asm("read count=4 cda=0x80001000\ntic cda=0x1234\n").unwrap();
        assert_eq!(
            word(&a, 0x1000, 8),
            vec![0x02, 0, 0, 4, 0x80, 0x00, 0x10, 0x00]
        );
        assert_eq!(word(&a, 0x1008, 8), vec![0x08, 0, 0, 0, 0, 0, 0x12, 0x34]);
        assert_eq!(a.placed[0].buffer, None);
        assert!(asm("orb format=0\nread count=4 cda=0x1000000\n").is_err());
    }

    #[test]
    fn format0_limits() {
        let a = asm("orb format=0\nread count=4\n").unwrap();
        assert_eq!(
            word(&a, 0x1000, 8),
            vec![0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04]
        );
        let e = asm("orb format=0\nread count=4 at=0x1000000\n").unwrap_err();
        assert!(matches!(e.reason, Reason::Placement { .. }), "{e}");
    }

    #[test]
    fn buffers_may_not_overwrite_the_program_and_defaults_avoid_fixed_ones() {
        assert!(asm("read count=8 at=0x1000\n").is_err());
        let a = asm("read count=8 at=0x10000\nread count=8\n").unwrap();
        assert_eq!(a.placed[1].buffer, Some((0x10008, 8)));
    }

    #[test]
    fn far_buffers_get_their_own_small_region() {
        let a = asm("read count=8 at=0x70000000\n").unwrap();
        assert_eq!(a.placed[0].buffer, Some((0x7000_0000, 8)));
        assert_eq!(a.mem.num_regions(), 2);
    }
}
