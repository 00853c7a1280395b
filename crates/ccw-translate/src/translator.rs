// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Guest channel program -> host channel program.
//!
//! Three passes, each bounded by [`Limits`]:
//! 1. **Discover**: starting at the ORB's cpa, copy every CCW of every chain segment out of
//!    guest memory exactly once (format 0 converted to format 1), following TICs to new
//!    segments through a work list (no recursion).
//! 2. **Data**: for every CCW that transfers data, copy its IDAL (or fabricate one for a
//!    direct address), pin each block piece and record its device address as a host IDAW.
//! 3. **Emit**: allocate control memory once, write host CCWs and format-2 IDALs with one
//!    `write_control`.
//!
//! Any error undoes what was done (pins, control memory) before it is returned.

use std::sync::{Arc, Mutex};

use ccw_types::{
    Ccw0, Ccw1, CcwFlags, CcwFormat, CommandClass, CommandOrb, IdawFormat, Orb, OrbRepr,
};
use vm_memory::{Bytes, GuestAddress, GuestMemory};
use zerocopy::big_endian::{U16, U32};

use crate::error::{Block, MapOp, TranslateError, TranslateErrorKind as K, Unsupported};
use crate::mapper::{ControlArea, DmaAccess, GuestRange, Mapper};
use crate::program::{Buffers, ChannelProgram, Pool, Segment, pool_put, pool_take};

/// Highest format-1 (31-bit) address.
const MAX_31: u64 = 0x7FFF_FFFF;
/// Highest format-0 (24-bit) address.
const MAX_24: u64 = 0x00FF_FFFF;
/// Most IDAWs one CCW can need: 65535 bytes starting at the last byte of a 2 KiB block.
const MAX_IDAWS_PER_CCW: usize = 34;
/// Bytes of CCWs read from guest memory at once (never past a 4 KiB page or the segment
/// limit).
const CCW_CHUNK: usize = 2048;

/// Bounds on the work one translation may do. `Default` is what Linux vfio-ccw allows.
///
/// ```
/// use ccw_translate::Limits;
/// let l = Limits::default();
/// assert_eq!((l.max_ccws_per_segment, l.max_segments), (256, 16));
/// assert_eq!(l.max_segment_len(), 255);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// The CCW window of one chain segment (the kernel's `CCWCHAIN_LEN_MAX`, 256). A segment
    /// must end within `max_ccws_per_segment - 1` CCWs; a longer one fails with `EINVAL`, as
    /// since the 2026 kernel fix (the old code read CCW 257 past its buffer to find out).
    pub max_ccws_per_segment: usize,
    /// Chain segments per program: the ORB's plus one per TIC target outside the known
    /// segments (the kernel's `CCWCHAIN_COUNT_MAX`, 16; more fails with `ENOMEM`).
    pub max_segments: usize,
    /// Host IDAWs (= pinned pieces) per program (more fails with `ENOMEM`). The default is
    /// what the kernel's other limits allow: 16 x 255 CCWs x 33 IDAWs.
    pub max_idaws: usize,
}

impl Limits {
    /// The kernel-compatible limits.
    pub const KERNEL: Limits = Limits {
        max_ccws_per_segment: 256,
        max_segments: 16,
        max_idaws: 16 * 255 * 33,
    };

    /// The most CCWs one segment may hold.
    pub const fn max_segment_len(&self) -> usize {
        self.max_ccws_per_segment.saturating_sub(1)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::KERNEL
    }
}

/// What the host CCW's data address becomes.
#[derive(Debug, Clone, Copy)]
enum HostCda {
    /// No data transfer: no IDA, address 0.
    None,
    /// Index of the CCW's first host IDAW.
    Idal(usize),
    /// A TIC to this guest CCW address.
    Tic(u64),
}

/// One guest CCW as copied (converted to format 1).
#[derive(Debug, Clone, Copy)]
struct Entry {
    guest_addr: u64,
    cmd: u8,
    flags: CcwFlags,
    count: u16,
    cda: u64,
    class: CommandClass,
    host: HostCda,
}

/// Translates guest channel programs; keeps scratch buffers between translations so a warm
/// translator does not allocate.
///
/// One translator serves one subchannel (it is `Send`, not shared).
///
/// ```
/// # #[cfg(feature = "test-utils")] {
/// use ccw_translate::{ErrorKind, Limits, Translator, testing::RecordingMapper};
/// use ccw_types::CommandOrb;
/// use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
///
/// let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap();
/// // Command code 0x00 is invalid: a real CSS program-checks, we refuse before starting.
/// mem.write_slice(&[0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x20, 0x00], GuestAddress(0x1000)).unwrap();
/// let mapper = RecordingMapper::new();
/// let mut t = Translator::new(Limits::default());
/// let err = t.translate(&CommandOrb::new(1, 0x1000).emit(), &mem, &mapper, 0x80).unwrap_err();
/// assert_eq!((err.ccw_index, err.guest_addr), (Some(0), Some(0x1000)));
/// assert_eq!(err.kind(), ErrorKind::InvalidProgram);
/// assert_eq!(err.errno(), libc::EINVAL);
/// assert!(err.program_check().is_some());
/// # }
/// ```
#[derive(Debug)]
pub struct Translator {
    limits: Limits,
    entries: Vec<Entry>,
    idaws: Vec<u64>,
    image: Vec<u8>,
    pool: Pool,
}

impl Translator {
    /// A translator bounded by `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            entries: Vec::new(),
            idaws: Vec::new(),
            image: Vec::new(),
            pool: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The limits this translator enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Translates the guest program `orb` designates in `mem` into a host program the
    /// backend behind `mapper` can run. `lpm_default` replaces an LPM of 0.
    ///
    /// On error nothing stays pinned or allocated.
    pub fn translate<M: GuestMemory + ?Sized>(
        &mut self,
        orb: &Orb,
        mem: &M,
        mapper: &dyn Mapper,
        lpm_default: u8,
    ) -> Result<ChannelProgram, TranslateError> {
        if orb.ctrl.transport() {
            return Err(K::Unsupported(Unsupported::TransportMode).into());
        }
        let guest = match OrbRepr::from_orb(orb) {
            Ok(OrbRepr::Command(c)) => c,
            Ok(OrbRepr::Transport(_)) => {
                return Err(K::Unsupported(Unsupported::TransportMode).into());
            }
            Err(e) => return Err(K::InvalidOrb(e).into()),
        };
        let mut bufs = pool_take(&self.pool);
        self.entries.clear();
        self.idaws.clear();
        let result = self.build(&guest, mem, mapper, &mut bufs);
        match result {
            Ok(area) => {
                let host_2k = guest.idaw_format().block_size() == 2048;
                let host = CommandOrb {
                    format: CcwFormat::Format1,
                    format2_idaw: true,
                    idaw_2k: host_2k,
                    lpm: if guest.lpm == 0 {
                        lpm_default
                    } else {
                        guest.lpm
                    },
                    // The first segment is the ORB's and starts the control area; the area
                    // is below 2 GiB (checked in `emit`).
                    cpa: area.addr as u32,
                    ..guest
                };
                Ok(ChannelProgram {
                    guest_orb: guest,
                    host_orb: host.emit(),
                    area: Some(area),
                    bufs,
                    pool: Arc::clone(&self.pool),
                })
            }
            Err(e) => {
                for range in bufs.pins.drain(..) {
                    mapper.unpin(range);
                }
                pool_put(&self.pool, bufs);
                Err(e)
            }
        }
    }

    fn build<M: GuestMemory + ?Sized>(
        &mut self,
        guest: &CommandOrb,
        mem: &M,
        mapper: &dyn Mapper,
        bufs: &mut Buffers,
    ) -> Result<ControlArea, TranslateError> {
        self.discover(guest, mem, &mut bufs.segments)?;
        self.data(guest, mem, mapper, &mut bufs.pins)?;
        self.emit(mapper, &mut bufs.segments)
    }

    /// Pass 1: copy every CCW of every segment, once.
    fn discover<M: GuestMemory + ?Sized>(
        &mut self,
        guest: &CommandOrb,
        mem: &M,
        segments: &mut Vec<Segment>,
    ) -> Result<(), TranslateError> {
        let fmt = guest.format;
        let cpa = guest.cpa as u64;
        let max_addr = match fmt {
            CcwFormat::Format0 => MAX_24,
            CcwFormat::Format1 => MAX_31,
        };
        if cpa % 8 != 0 {
            return Err(TranslateError::from(K::Misaligned {
                what: Block::Ccw,
                addr: cpa,
                align: 8,
            })
            .at(0, cpa));
        }
        if cpa > max_addr {
            return Err(TranslateError::from(K::AddressRange {
                what: Block::Ccw,
                addr: cpa,
                len: 8,
                max: max_addr,
            })
            .at(0, cpa));
        }
        let max_len = self.limits.max_segment_len();
        if self.limits.max_segments == 0 {
            return Err(TranslateError::from(K::TooManySegments { limit: 0 }).at(0, cpa));
        }
        segments.push(Segment {
            guest: cpa,
            len: 0,
            host_off: 0,
        });
        let mut chunk = [0u8; CCW_CHUNK];
        let mut s = 0;
        while s < segments.len() {
            let head = segments[s].guest;
            let first = self.entries.len();
            let mut addr = head;
            // Guest address and length of the valid bytes in `chunk`.
            let (mut chunk_addr, mut chunk_len) = (0u64, 0usize);
            loop {
                let index = self.entries.len();
                let n = index - first;
                if n >= max_len {
                    return Err(
                        TranslateError::from(K::SegmentTooLong { limit: max_len }).at(index, addr)
                    );
                }
                if addr + 8 > max_addr + 1 {
                    return Err(TranslateError::from(K::AddressRange {
                        what: Block::Ccw,
                        addr,
                        len: 8,
                        max: max_addr,
                    })
                    .at(index, addr));
                }
                if !(chunk_addr..chunk_addr + chunk_len as u64).contains(&addr) {
                    // Refill: up to the end of the page, never beyond the segment limit.
                    let to_page = 4096 - (addr % 4096) as usize;
                    let len = CCW_CHUNK.min(to_page).min((max_len - n).saturating_mul(8));
                    chunk_addr = addr;
                    chunk_len = if mem
                        .read_slice(&mut chunk[..len], GuestAddress(addr))
                        .is_ok()
                    {
                        len
                    } else if len > 8 && mem.read_slice(&mut chunk[..8], GuestAddress(addr)).is_ok()
                    {
                        8
                    } else {
                        return Err(TranslateError::from(K::GuestFault {
                            what: Block::Ccw,
                            addr,
                            len: 8,
                        })
                        .at(index, addr));
                    };
                }
                let off = (addr - chunk_addr) as usize;
                let mut raw = [0u8; 8];
                raw.copy_from_slice(&chunk[off..off + 8]);
                let entry = parse_ccw(raw, addr, guest).map_err(|e| e.at(index, addr))?;
                self.entries.push(entry);
                if let HostCda::Tic(target) = entry.host {
                    let known = segments.iter().enumerate().any(|(i, seg)| {
                        let len = if i == s {
                            self.entries.len() - first
                        } else {
                            seg.len
                        };
                        // Unread segments (i > s) match only at their head.
                        (seg.guest..seg.guest + 8 * len as u64).contains(&target)
                            || seg.guest == target
                    });
                    if !known {
                        if segments.len() >= self.limits.max_segments {
                            return Err(TranslateError::from(K::TooManySegments {
                                limit: self.limits.max_segments,
                            })
                            .at(index, addr));
                        }
                        segments.push(Segment {
                            guest: target,
                            len: 0,
                            host_off: 0,
                        });
                    }
                    break;
                }
                if !entry.flags.intersects(CcwFlags::CC | CcwFlags::CD) {
                    break;
                }
                addr += 8;
            }
            segments[s].len = self.entries.len() - first;
            s += 1;
        }
        Ok(())
    }

    /// Pass 2: copy IDALs, pin data, collect host IDAWs.
    fn data<M: GuestMemory + ?Sized>(
        &mut self,
        guest: &CommandOrb,
        mem: &M,
        mapper: &dyn Mapper,
        pins: &mut Vec<GuestRange>,
    ) -> Result<(), TranslateError> {
        let idaw_fmt = guest.idaw_format();
        for index in 0..self.entries.len() {
            let e = self.entries[index];
            if matches!(e.host, HostCda::Tic(_)) {
                continue;
            }
            let no_data = e.count == 0
                || e.cmd == ccw_types::ccw::cmd::NOP
                || (e.flags.contains(CcwFlags::SKIP) && e.class.honours_skip());
            if no_data {
                continue;
            }
            let first = self.idaws.len();
            self.ccw_data(&e, guest.format, idaw_fmt, mem, mapper, pins)
                .map_err(|err| err.at(index, e.guest_addr))?;
            self.entries[index].host = HostCda::Idal(first);
        }
        Ok(())
    }

    fn ccw_data<M: GuestMemory + ?Sized>(
        &mut self,
        e: &Entry,
        ccw_fmt: CcwFormat,
        idaw_fmt: IdawFormat,
        mem: &M,
        mapper: &dyn Mapper,
        pins: &mut Vec<GuestRange>,
    ) -> Result<(), TranslateError> {
        let bs = idaw_fmt.block_size();
        let access = if e.class.is_input() {
            DmaAccess::Write
        } else {
            DmaAccess::Read
        };
        // Read backward stores at descending addresses: the address designates the highest
        // byte, and each piece runs down to the start of its block.
        let backward = e.class == CommandClass::ReadBackward;
        let piece = |addr: u64, left: u64| {
            if backward {
                left.min(addr % bs + 1)
            } else {
                left.min(bs - addr % bs)
            }
        };
        let count = e.count as u64;
        let max_idaws = self.limits.max_idaws;
        // Pins the piece of `len` bytes designated by `addr` and records its host IDAW.
        let mut pin = |idaws: &mut Vec<u64>, addr: u64, len: u64| -> Result<(), TranslateError> {
            if idaws.len() >= max_idaws {
                return Err(K::TooManyIdaws { limit: max_idaws }.into());
            }
            let range = if backward {
                GuestRange::new(addr - (len - 1), len)
            } else {
                GuestRange::new(addr, len)
            };
            let dev = mapper.pin(range, access).map_err(|error| K::Map {
                op: MapOp::Pin,
                error,
            })?;
            pins.push(range);
            let idaw = if backward {
                dev.checked_add(len - 1)
            } else {
                dev.checked_add(len).map(|_| dev)
            };
            // The host IDAW must designate the same bytes: same offset inside its block.
            match idaw {
                Some(idaw) if idaw % bs == addr % bs => {
                    idaws.push(idaw);
                    Ok(())
                }
                _ => Err(K::MapperContract(
                    "pin returned a device address whose offset in the IDAW block differs from the guest's",
                )
                .into()),
            }
        };
        if !e.flags.contains(CcwFlags::IDA) {
            // Direct addressing: fabricate an IDAL in blocks of the ORB's IDAW size.
            let max = match ccw_fmt {
                CcwFormat::Format0 => MAX_24,
                CcwFormat::Format1 => MAX_31,
            };
            let (lo, hi) = if backward {
                (e.cda.checked_sub(count - 1), Some(e.cda))
            } else {
                (Some(e.cda), Some(e.cda + count - 1))
            };
            match (lo, hi) {
                (Some(_), Some(hi)) if hi <= max => {}
                _ => {
                    return Err(K::AddressRange {
                        what: Block::Data,
                        addr: e.cda,
                        len: count,
                        max,
                    }
                    .into());
                }
            }
            let (mut addr, mut left) = (e.cda, count);
            while left > 0 {
                let len = piece(addr, left);
                pin(&mut self.idaws, addr, len)?;
                left -= len;
                if left == 0 {
                    break;
                }
                // Backward: the next piece ends below this one (addr >= len - 1 + left).
                addr = if backward { addr - len } else { addr + len };
            }
            return Ok(());
        }
        // Indirect: the IDAL is copied exactly once; the first IDAW decides how many follow
        // and is never fetched again (the kernel's first-IDAW TOCTOU).
        let size = idaw_fmt.idaw_size();
        let idal = e.cda;
        if idal % size != 0 {
            return Err(K::Misaligned {
                what: Block::Idal,
                addr: idal,
                align: size,
            }
            .into());
        }
        let mut buf = [0u8; MAX_IDAWS_PER_CCW * 8];
        let fault = |addr: u64, len: usize| K::GuestFault {
            what: Block::Idal,
            addr,
            len,
        };
        let sz = size as usize;
        mem.read_slice(&mut buf[..sz], GuestAddress(idal))
            .map_err(|_| fault(idal, sz))?;
        let a0 = decode_idaw(&buf[..sz], idaw_fmt)?;
        let first_len = piece(a0, count);
        let n = 1 + (count - first_len).div_ceil(bs) as usize;
        if n > 1 {
            let rest = idal + size;
            mem.read_slice(&mut buf[sz..n * sz], GuestAddress(rest))
                .map_err(|_| fault(rest, (n - 1) * sz))?;
        }
        let mut left = count;
        for k in 0..n {
            let addr = if k == 0 {
                a0
            } else {
                let a = decode_idaw(&buf[k * sz..(k + 1) * sz], idaw_fmt)?;
                // Later IDAWs designate the first (backward: last) byte of a block.
                let aligned = if backward {
                    a % bs == bs - 1
                } else {
                    a % bs == 0
                };
                if !aligned {
                    return Err(K::Misaligned {
                        what: Block::Idaw,
                        addr: a,
                        align: bs,
                    }
                    .into());
                }
                a
            };
            let len = piece(addr, left);
            // The piece must be a representable range (its end below 2^64).
            let fits = if backward {
                addr.checked_sub(len - 1).is_some() && addr.checked_add(1).is_some()
            } else {
                addr.checked_add(len).is_some()
            };
            if !fits {
                return Err(K::AddressRange {
                    what: Block::Data,
                    addr,
                    len,
                    max: u64::MAX,
                }
                .into());
            }
            pin(&mut self.idaws, addr, len)?;
            left -= len;
        }
        debug_assert_eq!(left, 0);
        Ok(())
    }

    /// Pass 3: lay out, allocate and write the host program.
    fn emit(
        &mut self,
        mapper: &dyn Mapper,
        segments: &mut [Segment],
    ) -> Result<ControlArea, TranslateError> {
        // Segments back to back with one unused doubleword between them, so that "one past
        // the end" of a segment never equals the head of the next (update_scsw stays exact).
        let mut off = 0;
        for seg in segments.iter_mut() {
            seg.host_off = off;
            off += 8 * seg.len + 8;
        }
        let idal_off = off;
        let total = idal_off + 8 * self.idaws.len();
        let area = mapper.alloc_control(total).map_err(|error| K::Map {
            op: MapOp::AllocControl,
            error,
        })?;
        let end = area.addr.checked_add(total as u64);
        if area.len < total || area.addr % 8 != 0 || end.is_none_or(|end| end > MAX_31 + 1) {
            mapper.free_control(area);
            return Err(
                K::MapperContract("control area too short, misaligned or not below 2 GiB").into(),
            );
        }
        let base = area.addr;
        self.image.clear();
        self.image.resize(total, 0);
        let mut i = 0;
        for seg in segments.iter() {
            for k in 0..seg.len {
                let e = &self.entries[i];
                i += 1;
                let (flags, cda) = match e.host {
                    HostCda::None => (e.flags.difference(CcwFlags::IDA), 0),
                    HostCda::Idal(j) => (e.flags | CcwFlags::IDA, base + (idal_off + 8 * j) as u64),
                    HostCda::Tic(t) => {
                        let Some(host) = host_of(segments, base, t) else {
                            // Discover guarantees every target is in a segment.
                            mapper.free_control(area);
                            return Err(K::MapperContract("TIC target lost").into());
                        };
                        (e.flags, host)
                    }
                };
                let ccw = Ccw1 {
                    cmd: e.cmd,
                    flags: flags.bits(),
                    count: U16::new(e.count),
                    // Below 2 GiB: checked against the area above.
                    cda: U32::new(cda as u32),
                };
                let at = seg.host_off + 8 * k;
                self.image[at..at + 8].copy_from_slice(&ccw.into_bytes());
            }
        }
        for (j, idaw) in self.idaws.iter().enumerate() {
            let at = idal_off + 8 * j;
            self.image[at..at + 8].copy_from_slice(&idaw.to_be_bytes());
        }
        if let Err(error) = mapper.write_control(&area, 0, &self.image) {
            mapper.free_control(area);
            return Err(K::Map {
                op: MapOp::WriteControl,
                error,
            }
            .into());
        }
        Ok(area)
    }
}

/// The host address of guest CCW address `t` (the first segment holding it).
fn host_of(segments: &[Segment], base: u64, t: u64) -> Option<u64> {
    segments.iter().find_map(|s| {
        (s.guest..s.guest + 8 * s.len as u64)
            .contains(&t)
            .then(|| base + s.host_off as u64 + (t - s.guest))
    })
}

fn decode_idaw(bytes: &[u8], fmt: IdawFormat) -> Result<u64, TranslateError> {
    match fmt {
        IdawFormat::Format1 => {
            let v = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as u64;
            if v & 0x8000_0000 != 0 {
                return Err(K::IdawReserved { idaw: v }.into());
            }
            Ok(v)
        }
        IdawFormat::Format2K2 | IdawFormat::Format2K4 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[..8]);
            Ok(u64::from_be_bytes(b))
        }
    }
}

/// Decodes one guest CCW (converting format 0 to format 1) and applies the checks that do
/// not need more guest memory.
fn parse_ccw(raw: [u8; 8], addr: u64, orb: &CommandOrb) -> Result<Entry, TranslateError> {
    let fmt = orb.format;
    let (mut cmd, mut flags, mut count, cda) = match fmt {
        CcwFormat::Format1 => {
            let c = Ccw1::from_bytes(raw);
            (c.cmd, c.flag_set(), c.count.get(), c.cda.get() as u64)
        }
        CcwFormat::Format0 => {
            let c = Ccw0::from_bytes(raw);
            (c.cmd, c.flag_set(), c.count.get(), c.data_address() as u64)
        }
    };
    let class = CommandClass::of(cmd, fmt);
    let host = match class {
        CommandClass::Tic => {
            if fmt == CcwFormat::Format0 {
                // Format-0 TIC: high nibble, flags and count are ignored; format 1 has
                // them zero.
                cmd = ccw_types::ccw::cmd::TIC;
                flags = CcwFlags::NONE;
                count = 0;
            }
            if cda > MAX_31 {
                return Err(K::AddressRange {
                    what: Block::Ccw,
                    addr: cda,
                    len: 8,
                    max: MAX_31,
                }
                .into());
            }
            if cda % 8 != 0 {
                return Err(K::Misaligned {
                    what: Block::Ccw,
                    addr: cda,
                    align: 8,
                }
                .into());
            }
            HostCda::Tic(cda)
        }
        CommandClass::Invalid => return Err(K::InvalidCommand { cmd }.into()),
        _ => {
            if flags.contains(CcwFlags::MIDA) {
                return Err(K::Unsupported(Unsupported::Midaw {
                    orb_allows: orb.midaw,
                })
                .into());
            }
            if fmt == CcwFormat::Format0 && count == 0 {
                return Err(K::ZeroCountFormat0.into());
            }
            if cda > MAX_31 {
                return Err(K::AddressRange {
                    what: if flags.contains(CcwFlags::IDA) {
                        Block::Idal
                    } else {
                        Block::Data
                    },
                    addr: cda,
                    len: 0,
                    max: MAX_31,
                }
                .into());
            }
            HostCda::None
        }
    };
    Ok(Entry {
        guest_addr: addr,
        cmd,
        flags,
        count,
        cda,
        class,
        host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orb(fmt: CcwFormat) -> CommandOrb {
        let mut o = CommandOrb::new(0, 0x1000);
        o.format = fmt;
        o
    }

    #[test]
    fn format0_tic_is_normalized() {
        let e = parse_ccw(
            [0xF8, 0x00, 0x20, 0x00, 0xFF, 0x00, 0x12, 0x34],
            0x1000,
            &orb(CcwFormat::Format0),
        )
        .unwrap();
        assert_eq!((e.cmd, e.flags, e.count), (0x08, CcwFlags::NONE, 0));
        assert!(matches!(e.host, HostCda::Tic(0x2000)));
    }

    #[test]
    fn format1_tic_keeps_its_bytes_for_the_hardware_to_judge() {
        let e = parse_ccw(
            [0x08, 0x40, 0x00, 0x10, 0x00, 0x00, 0x20, 0x00],
            0x1000,
            &orb(CcwFormat::Format1),
        )
        .unwrap();
        assert_eq!((e.cmd, e.flags, e.count), (0x08, CcwFlags::CC, 0x10));
    }

    #[test]
    fn format0_data_ccw_is_converted() {
        let e = parse_ccw(
            [0x02, 0x01, 0x23, 0x40, 0x24, 0x00, 0x00, 0x07],
            0x1000,
            &orb(CcwFormat::Format0),
        )
        .unwrap();
        assert_eq!(
            (e.cmd, e.flags, e.count, e.cda),
            (0x02, CcwFlags::SLI | CcwFlags::IDA, 7, 0x12340)
        );
        assert_eq!(e.class, CommandClass::Read);
    }

    #[test]
    fn idaw_decoding() {
        assert_eq!(
            decode_idaw(&[0x00, 0x00, 0x10, 0x00], IdawFormat::Format1).unwrap(),
            0x1000
        );
        assert!(decode_idaw(&[0x80, 0x00, 0x10, 0x00], IdawFormat::Format1).is_err());
        assert_eq!(
            decode_idaw(&[0x80, 0, 0, 0, 0, 0, 0x10, 0], IdawFormat::Format2K4).unwrap(),
            0x8000_0000_0000_1000
        );
    }

    #[test]
    fn limits() {
        assert_eq!(Limits::default(), Limits::KERNEL);
        let l = Limits {
            max_ccws_per_segment: 0,
            ..Limits::KERNEL
        };
        assert_eq!(l.max_segment_len(), 0);
    }
}
