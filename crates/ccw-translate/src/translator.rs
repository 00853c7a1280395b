// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Guest channel program -> host channel program.
//!
//! Three passes, each bounded by [`Limits`]:
//! 1. **Discover**: starting at the ORB's cpa, copy every CCW of every chain segment out of
//!    guest memory exactly once (format 0 converted to format 1), following TICs to new
//!    segments through a work list (no recursion). A segment goes on while a CCW chains (CC
//!    or CD) or is a TIC back into the CCWs counted so far (vfio-ccw's
//!    `is_tic_within_range`: status modifier can skip such a TIC). Each CCW is classified by
//!    the command it executes: its own, or its data chain's first command.
//! 2. **Data**: for every CCW that transfers data, copy its IDAL (or fabricate one for a
//!    direct address), pin each block piece and record its device address as a host IDAW.
//! 3. **Emit**: allocate control memory once, write host CCWs and format-2 IDALs with one
//!    `write_control`.
//!
//! Any error undoes what was done (pins, control memory) before it is returned.
//!
//! **Fast path** (`Translator::fast`), tried first: one pass over the ORB's segment that
//! copies, parses (`parse_ccw`) and checks the data (`Translator::ccw_data`) of each CCW with
//! the same functions, appends its host CCW, and at the end of a segment without TICs pins
//! what is not premapped ([`Mapper::pin_many`], in the general path's order) and writes the
//! control area once. It calls the mapper only once the whole program is known; at a TIC or
//! a data error the general passes take over from the CCWs it did (their copies and host
//! IDAWs are reused, nothing is read from the guest twice), so every decision, error and
//! mapper call is theirs. Proptests compare the two paths call for call.

use std::sync::{Arc, Mutex};

use ccw_types::{
    Ccw0, Ccw1, CcwFlags, CcwFormat, CommandClass, CommandOrb, IdawFormat, Orb, OrbRepr,
};
use vm_memory::{Bytes, GuestAddress, GuestMemory, Permissions};
use zerocopy::big_endian::{U16, U32};

use crate::error::{Block, MapOp, TranslateError, TranslateReason as K, Unsupported};
use crate::mapper::{ControlArea, DmaAccess, GuestRange, Mapper, Premapped};
use crate::program::{Buffers, ChannelProgram, Pool, Segment, pool_put, pool_take, unpin_all};

mod fast;
mod snapshot;
use fast::{Fast, Resume};
use snapshot::Snapshot;

/// Highest format-1 (31-bit) address.
const MAX_31: u64 = 0x7FFF_FFFF;
/// Highest format-0 (24-bit) address.
const MAX_24: u64 = 0x00FF_FFFF;
/// Most IDAWs one CCW can need: 65535 bytes starting at the last byte of a 2 KiB block.
const MAX_IDAWS_PER_CCW: usize = 34;
/// Largest snapshot of guest control bytes taken with one read.
const SNAPSHOT_MAX: usize = 2048;
/// First snapshot size of a translation; each refill doubles it up to [`SNAPSHOT_MAX`], so
/// a one-CCW program copies little and a 255-CCW chain few times.
const SNAPSHOT_MIN: usize = 128;

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
    /// A CCW that is only reached when the CCW before an in-segment TIC ends with status
    /// modifier, and that a real channel subsystem would program-check (or could not fetch):
    /// the host copy is an all-zero CCW (command code 0x00), so the channel program-checks
    /// at the same place instead of the translation refusing a program that may never get
    /// there.
    Poison,
}

/// How the channel executes a CCW: a new command executes its own command code; a CCW
/// reached by data chaining continues the command of its chain's first CCW and its own
/// command code is ignored (unless it is a TIC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Exec {
    /// The class of the executing command (direction, read backward, SKIP honoured).
    class: CommandClass,
    /// The executing command is control no-operation: nothing is transferred.
    nop: bool,
}

impl Exec {
    fn of(cmd: u8, class: CommandClass) -> Self {
        Self {
            class,
            nop: cmd == ccw_types::ccw::cmd::NOP,
        }
    }
}

/// How a segment is entered.
#[derive(Debug, Clone, Copy)]
struct Head {
    /// `Some` when the TIC that found the segment carries data chaining into it.
    chained: Option<Exec>,
    /// The segment was found by a speculative TIC (see [`Entry::spec`]).
    spec: bool,
}

/// One guest CCW as copied (converted to format 1).
#[derive(Debug, Clone, Copy)]
struct Entry {
    guest_addr: u64,
    cmd: u8,
    flags: CcwFlags,
    count: u16,
    cda: u64,
    /// The class of the CCW's own command code.
    own: CommandClass,
    /// Non-TIC: how the channel executes the CCW. TIC: the data chaining it carries (see
    /// `chained`).
    exec: Exec,
    /// Non-TIC: reached by data chaining from the CCW before it. TIC: carries data chaining
    /// from the CCW before it into its target.
    chained: bool,
    /// Follows an in-segment TIC: reached only when a status modifier skips that TIC, so the
    /// bytes may be no channel program at all. Program checks found here become
    /// [`HostCda::Poison`] instead of errors.
    spec: bool,
    host: HostCda,
}

impl Entry {
    /// The all-zero host CCW a real channel subsystem program-checks at.
    fn poison(guest_addr: u64) -> Self {
        Self {
            guest_addr,
            cmd: 0,
            flags: CcwFlags::NONE,
            count: 0,
            cda: 0,
            own: CommandClass::Invalid,
            exec: Exec::of(0, CommandClass::Invalid),
            chained: false,
            spec: true,
            host: HostCda::Poison,
        }
    }

    /// The data chaining this CCW passes to the CCW the channel fetches next (at +8, or at
    /// the target of a TIC): `Some(command)` when it data-chains.
    fn passes(&self) -> Option<Exec> {
        match self.host {
            HostCda::Tic(_) => self.chained.then_some(self.exec),
            HostCda::Poison => None,
            _ => self.flags.contains(CcwFlags::CD).then_some(self.exec),
        }
    }
}

/// One block piece of a CCW's data, checked against guest memory, for a pin sink.
#[derive(Debug, Clone, Copy)]
struct Piece {
    /// The guest address the IDAW designates (backward: the piece's highest byte).
    addr: u64,
    /// The guest bytes of the piece (never crossing a block).
    range: GuestRange,
    backward: bool,
    access: DmaAccess,
    /// Block size - 1.
    mask: u64,
}

/// Where `Translator::ccw_data` hands each checked piece: it pins or records the piece and
/// pushes its host IDAW (or a placeholder). A trait, not a closure, so that it is inlined.
trait Sink {
    fn piece(&mut self, p: &Piece, idaws: &mut Vec<u64>) -> Result<(), TranslateError>;
}

/// The general path's sink: pins each piece at once.
struct PinNow<'a> {
    mapper: &'a dyn Mapper,
    pre: Option<Premapped>,
    bufs: &'a mut Buffers,
}

impl Sink for PinNow<'_> {
    #[inline(always)]
    fn piece(&mut self, p: &Piece, idaws: &mut Vec<u64>) -> Result<(), TranslateError> {
        let dev = match self.pre.and_then(|pre| pre.device_addr(p.range)) {
            Some(dev) => dev,
            None => {
                let dev = self.mapper.pin(p.range, p.access).map_err(|error| K::Map {
                    op: MapOp::Pin,
                    error,
                })?;
                self.bufs.mapper_pins += 1;
                dev
            }
        };
        self.bufs.pins.push(p.range);
        idaws.push(p.host_idaw(dev)?);
        Ok(())
    }
}

/// The fast path's sink: a premapped piece gets its host IDAW at once, any other is
/// recorded for `Translator::pin_pending` with a placeholder IDAW.
struct Record<'a> {
    pre: Option<Premapped>,
    pins: &'a mut Vec<GuestRange>,
    pending: &'a mut Vec<Pending>,
    pin_req: &'a mut Vec<(GuestRange, DmaAccess)>,
    /// Index of the CCW the pieces belong to.
    ccw: usize,
}

impl Sink for Record<'_> {
    #[inline(always)]
    fn piece(&mut self, p: &Piece, idaws: &mut Vec<u64>) -> Result<(), TranslateError> {
        match self.pre.and_then(|pre| pre.device_addr(p.range)) {
            Some(dev) => idaws.push(p.host_idaw(dev)?),
            None => {
                self.pending.push(Pending {
                    at: idaws.len(),
                    ccw: self.ccw,
                    piece: *p,
                });
                self.pin_req.push((p.range, p.access));
                idaws.push(0);
            }
        }
        self.pins.push(p.range);
        Ok(())
    }
}

/// A fast-path piece outside the premapped span: pinned after the pass.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// Index of the piece in the program's pins and host IDAWs.
    at: usize,
    /// Index of its CCW.
    ccw: usize,
    piece: Piece,
}

impl Piece {
    /// The host IDAW for the piece pinned at device address `dev`: it must designate the
    /// same bytes, at the same offset inside its block.
    #[inline]
    fn host_idaw(&self, dev: u64) -> Result<u64, TranslateError> {
        let len = self.range.len;
        let idaw = if self.backward {
            dev.checked_add(len - 1)
        } else {
            dev.checked_add(len).map(|_| dev)
        };
        match idaw {
            Some(idaw) if idaw & self.mask == self.addr & self.mask => Ok(idaw),
            _ => Err(K::MapperContract(
                "pin returned a device address whose offset in the IDAW block differs from the guest's",
            )
            .into()),
        }
    }
}

/// Translates guest channel programs; keeps scratch buffers between translations so a warm
/// translator does not allocate.
///
/// One translator serves one subchannel (it is `Send`, not shared).
///
/// ```
/// # #[cfg(feature = "test-utils")] {
/// use ccw_translate::{Limits, Translator, testing::RecordingMapper};
/// use ccw_types::{Errno, ErrorKind};
/// use ccw_types::CommandOrb;
/// use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
///
/// let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap();
/// // Command code 0x00 is invalid: a real CSS program-checks, we refuse before starting.
/// mem.write_slice(&[0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x20, 0x00], GuestAddress(0x1000)).unwrap();
/// let mapper = std::sync::Arc::new(RecordingMapper::new());
/// let mut t = Translator::new(Limits::default());
/// let err = t.translate(&CommandOrb::new(1, 0x1000).emit(), &mem, mapper, 0x80).unwrap_err();
/// assert_eq!((err.ccw_index, err.guest_addr), (Some(0), Some(0x1000)));
/// assert_eq!(err.kind(), ErrorKind::InvalidProgram);
/// assert_eq!(err.errno(), Errno::Invalid);
/// assert!(err.program_check().is_some());
/// # }
/// ```
#[derive(Debug)]
pub struct Translator {
    limits: Limits,
    entries: Vec<Entry>,
    heads: Vec<Head>,
    idaws: Vec<u64>,
    image: Vec<u8>,
    /// Scratch for guest control bytes, reset at the start of every pass; `None` only while
    /// a translation holds it.
    snap: Option<Box<[Snapshot; 2]>>,
    /// The IDAL of the CCW being translated, copied out of the snapshot; only the bytes
    /// copied for that CCW are ever read (kept here so it is not zeroed per CCW).
    idal: [u8; MAX_IDAWS_PER_CCW * 8],
    pool: Pool,
    /// Fast-path data pieces outside the premapped span, pinned after the pass.
    pending: Vec<Pending>,
    /// The fast path's copies of the CCWs it did.
    raw: Vec<[u8; 8]>,
    /// The same pieces as `pin_many` takes them, and the device addresses it returns.
    pin_req: Vec<(GuestRange, DmaAccess)>,
    pin_dev: Vec<u64>,
    /// Whether the fast path is tried (always, but for tests that compare the two paths).
    fast: bool,
}

impl Translator {
    /// A translator bounded by `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            entries: Vec::new(),
            heads: Vec::new(),
            idaws: Vec::new(),
            image: Vec::new(),
            snap: Some(Snapshot::boxed_pair()),
            idal: [0; MAX_IDAWS_PER_CCW * 8],
            pool: Arc::new(Mutex::new(Vec::new())),
            pending: Vec::new(),
            raw: Vec::new(),
            pin_req: Vec::new(),
            pin_dev: Vec::new(),
            fast: true,
        }
    }

    /// This translator without the fast path: every program takes the general three
    /// passes. For tests that check the two paths agree (feature `test-utils`).
    #[cfg(any(test, feature = "test-utils"))]
    pub fn general_only(mut self) -> Self {
        self.fast = false;
        self
    }

    /// The limits this translator enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Translates the guest program `orb` designates in `mem` into a host program the
    /// backend behind `mapper` can run. `lpm_default` replaces an LPM of 0.
    ///
    /// The program keeps `mapper` and gives back what it pinned and allocated when it is
    /// dropped. On error nothing stays pinned or allocated.
    pub fn translate<M: GuestMemory + ?Sized>(
        &mut self,
        orb: &Orb,
        mem: &M,
        mapper: Arc<dyn Mapper>,
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
        self.heads.clear();
        self.idaws.clear();
        let mut snap = self.snap.take().unwrap_or_else(Snapshot::boxed_pair);
        // Asked once: the answer holds for the mapper's life (the `Mapper` contract).
        let pre = mapper.premapped();
        let result = self.build(&guest, mem, &*mapper, pre, &mut bufs, &mut snap);
        self.snap = Some(snap);
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
                    premapped: pre,
                    mapper,
                })
            }
            Err(e) => {
                unpin_all(&*mapper, pre, &bufs.pins, bufs.mapper_pins);
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
        pre: Option<Premapped>,
        bufs: &mut Buffers,
        snaps: &mut [Snapshot; 2],
    ) -> Result<ControlArea, TranslateError> {
        let [snap, data_snap] = snaps;
        snap.reset();
        let resume = if self.fast {
            match self.fast(guest, mem, mapper, pre, bufs, snap, data_snap)? {
                Fast::Done(area) => return Ok(area),
                Fast::Resume(r) => Some(r),
            }
        } else {
            None
        };
        self.discover(guest, mem, &mut bufs.segments, snap, resume.as_ref())?;
        self.check_tic_targets(&bufs.segments)?;
        snap.reset();
        self.data(guest, mem, mapper, pre, bufs, snap, resume)?;
        self.emit(mapper, &mut bufs.segments)
    }

    /// Pins the fast path's pieces outside the premapped span with one
    /// [`Mapper::pin_many`], in the general path's order, with its check of each device
    /// address; on failure `bufs.pins` ends after the last piece that holds a mapper pin
    /// (the caller unpins those). A device address that fails the check is reported at its
    /// piece once the batch is done (the general path stops pinning there; the mapper
    /// broke its contract either way, and nothing stays pinned).
    fn pin_pending(
        &mut self,
        mapper: &dyn Mapper,
        bufs: &mut Buffers,
        cpa: u64,
    ) -> Result<(), TranslateError> {
        let total = self.pending.len();
        if total == 0 {
            return Ok(());
        }
        self.pin_dev.clear();
        self.pin_dev.resize(total, 0);
        let failed = mapper.pin_many(&self.pin_req, &mut self.pin_dev).err();
        let pinned = failed.as_ref().map_or(total, |&(i, _)| i.min(total));
        bufs.mapper_pins += pinned;
        let at_ccw = |p: &Pending, e: TranslateError| e.at(p.ccw, cpa + 8 * p.ccw as u64);
        let mut contract = None;
        for (p, &dev) in self.pending[..pinned].iter().zip(&self.pin_dev) {
            match p.piece.host_idaw(dev) {
                Ok(idaw) => self.idaws[p.at] = idaw,
                Err(e) => {
                    contract = Some(at_ccw(p, e));
                    break;
                }
            }
        }
        if contract.is_some() || failed.is_some() {
            // Keep the pieces up to the last one pinned.
            let keep = match pinned {
                0 => self.pending[0].at,
                k => self.pending[k - 1].at + 1,
            };
            bufs.pins.truncate(keep);
        }
        if let Some(e) = contract {
            return Err(e);
        }
        if let Some((i, error)) = failed {
            let p = &self.pending[pinned.min(i).min(total - 1)];
            return Err(at_ccw(
                p,
                K::Map {
                    op: MapOp::Pin,
                    error,
                }
                .into(),
            ));
        }
        self.pending.clear();
        self.pin_req.clear();
        Ok(())
    }

    /// Pass 1: copy every CCW of every segment, once. With `resume`, the fast path has
    /// copied and parsed the first `resume.at` CCWs of the ORB's segment (in `entries`),
    /// and the CCW after them is still in `snap`.
    fn discover<M: GuestMemory + ?Sized>(
        &mut self,
        guest: &CommandOrb,
        mem: &M,
        segments: &mut Vec<Segment>,
        snap: &mut Snapshot,
        resume: Option<&Resume>,
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
        self.heads.push(Head {
            chained: None,
            spec: false,
        });
        let mut s = 0;
        while s < segments.len() {
            let head = segments[s].guest;
            let mut first = self.entries.len();
            let mut addr = head;
            let Head {
                chained: mut incoming,
                mut spec,
            } = self.heads[s];
            if let (0, Some(r)) = (s, resume) {
                debug_assert_eq!(first, r.at);
                first = 0;
                addr = head + 8 * r.at as u64;
                incoming = r.incoming;
            }
            // Never read past the segment window (the kernel's CCW 257).
            let window_end = head.saturating_add(8 * max_len as u64);
            loop {
                let index = self.entries.len();
                let n = index - first;
                if n >= max_len {
                    return Err(
                        TranslateError::from(K::SegmentTooLong { limit: max_len }).at(index, addr)
                    );
                }
                let mut raw = [0u8; 8];
                let parsed = if addr + 8 > max_addr + 1 {
                    Err(TranslateError::from(K::AddressRange {
                        what: Block::Ccw,
                        addr,
                        len: 8,
                        max: max_addr,
                    }))
                } else if snap.fetch(mem, addr, &mut raw, window_end) {
                    parse_ccw(raw, addr, guest, incoming)
                } else {
                    Err(TranslateError::from(K::GuestFault {
                        what: Block::Ccw,
                        addr,
                        len: 8,
                    }))
                };
                let mut entry = match parsed {
                    Ok(entry) => entry,
                    Err(e) if spec && e.program_check().is_some() => {
                        // Never executed unless a status modifier gets here: let the
                        // channel program-check if it does, and read no further.
                        self.entries.push(Entry::poison(addr));
                        break;
                    }
                    Err(e) => return Err(e.at(index, addr)),
                };
                entry.spec = spec;
                self.entries.push(entry);
                if let HostCda::Tic(target) = entry.host {
                    // vfio-ccw's is_tic_within_range: a TIC back into the CCWs counted so
                    // far (itself included) does not end the segment. The CCW before it may
                    // end with status modifier, and then the channel skips the TIC and
                    // fetches the CCW after it, which must be in the host program too.
                    let counted = (self.entries.len() - first) as u64;
                    if (head..head + 8 * counted).contains(&target) {
                        spec = true;
                        incoming = None;
                        addr += 8;
                        continue;
                    }
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
                        self.heads.push(Head {
                            chained: entry.passes(),
                            spec,
                        });
                    }
                    break;
                }
                if !entry.flags.intersects(CcwFlags::CC | CcwFlags::CD) {
                    break;
                }
                incoming = entry.passes();
                addr += 8;
            }
            segments[s].len = self.entries.len() - first;
            s += 1;
        }
        Ok(())
    }

    /// Between the passes: the CCW a TIC lands on must execute the way its host copy was
    /// translated. A TIC carries the chaining of the CCW before it: the target is a new
    /// command (its own command code must be valid) or continues the data chain of that
    /// CCW's command. Its host copy was classified from its own predecessor (or from the TIC
    /// that found its segment); when the two need different host treatment, one copy cannot
    /// serve both. A speculative TIC (after an in-segment TIC) gets poisoned instead.
    fn check_tic_targets(&mut self, segments: &[Segment]) -> Result<(), TranslateError> {
        for index in 0..self.entries.len() {
            let tic = self.entries[index];
            let HostCda::Tic(target) = tic.host else {
                continue;
            };
            // The copy the host TIC will point at: the first segment holding the target
            // (as `host_of` chooses).
            let mut first = 0;
            let mut found = None;
            for seg in segments {
                if (seg.guest..seg.guest + 8 * seg.len as u64).contains(&target) {
                    found = Some(first + ((target - seg.guest) / 8) as usize);
                    break;
                }
                first += seg.len;
            }
            let Some(t) = found else {
                continue;
            };
            let dest = self.entries[t];
            if matches!(dest.host, HostCda::Tic(_) | HostCda::Poison) {
                // TIC to TIC: the executing channel program-checks. Poison: already does.
                continue;
            }
            let err = match tic.passes() {
                None if dest.own == CommandClass::Invalid => Some(
                    TranslateError::from(K::InvalidCommand { cmd: dest.cmd })
                        .at(t, dest.guest_addr),
                ),
                None if Exec::of(dest.cmd, dest.own) == dest.exec => None,
                Some(exec) if exec == dest.exec => None,
                _ => Some(
                    TranslateError::from(K::Unsupported(Unsupported::AmbiguousDataChain))
                        .at(t, dest.guest_addr),
                ),
            };
            match err {
                None => {}
                Some(_) if tic.spec => self.entries[index] = Entry::poison(tic.guest_addr),
                Some(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Pass 2: copy IDALs, pin data, collect host IDAWs.
    #[allow(clippy::too_many_arguments)]
    fn data<M: GuestMemory + ?Sized>(
        &mut self,
        guest: &CommandOrb,
        mem: &M,
        mapper: &dyn Mapper,
        pre: Option<Premapped>,
        bufs: &mut Buffers,
        snap: &mut Snapshot,
        resume: Option<Resume>,
    ) -> Result<(), TranslateError> {
        let mut start = 0;
        if let Some(r) = resume {
            // The fast path checked the data of the CCWs before `at` (and of CCW `at` up to
            // its error): pinned now, in the order this pass pins.
            self.pin_pending(mapper, bufs, guest.cpa as u64)?;
            if let Some(err) = r.data_err {
                let at = guest.cpa as u64 + 8 * r.at as u64;
                return Err(err.at(r.at, at));
            }
            start = r.at;
        }
        for index in start..self.entries.len() {
            let e = self.entries[index];
            if matches!(e.host, HostCda::Tic(_) | HostCda::Poison) {
                continue;
            }
            // Classified by the executing command: a data-chained CCW's own command code
            // is ignored by the channel.
            let skip = e.flags.contains(CcwFlags::SKIP) && e.exec.class.honours_skip();
            // SKIP moves no data, but with IDA the channel still fetches the IDAWs as the
            // count is consumed (and vfio-ccw reads the IDAL): the IDAL is read and checked,
            // nothing is pinned, and the host CCW skips with a direct address.
            let no_data = e.count == 0 || e.exec.nop || (skip && !e.flags.contains(CcwFlags::IDA));
            if no_data {
                continue;
            }
            let first = self.idaws.len();
            let (pinned, mapper_pins) = (bufs.pins.len(), bufs.mapper_pins);
            let sink = PinNow {
                mapper,
                pre,
                bufs: &mut *bufs,
            };
            let result = Self::ccw_data(
                self.limits.max_idaws,
                &mut self.idal,
                &e,
                guest,
                mem,
                snap,
                skip,
                &mut self.idaws,
                sink,
            );
            match result {
                Ok(()) if skip => {}
                Ok(()) => self.entries[index].host = HostCda::Idal(first),
                Err(err) if e.spec && err.program_check().is_some() => {
                    // A speculative CCW whose data a real CSS would refuse: undo its pins
                    // and let the channel program-check if it ever gets there.
                    let undo = bufs.mapper_pins - mapper_pins;
                    unpin_all(mapper, pre, &bufs.pins[pinned..], undo);
                    bufs.pins.truncate(pinned);
                    bufs.mapper_pins = mapper_pins;
                    self.idaws.truncate(first);
                    self.entries[index] = Entry::poison(e.guest_addr);
                }
                Err(err) => return Err(err.at(index, e.guest_addr)),
            }
        }
        Ok(())
    }

    /// Walks the data of one CCW: checks its IDAL (or fabricates one for a direct address),
    /// checks each block piece against the IDAW limit and guest memory, and hands it to
    /// `sink`, which pins it (or records it) and pushes its host IDAW. `skip`: SKIP with
    /// IDA, where the IDAL is read and checked as the channel fetches it, and no data is
    /// pinned. Shared by the general path and the fast path, so both check alike.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn ccw_data<M: GuestMemory + ?Sized, F: Sink>(
        max_idaws: usize,
        idal_buf: &mut [u8; MAX_IDAWS_PER_CCW * 8],
        e: &Entry,
        guest: &CommandOrb,
        mem: &M,
        snap: &mut Snapshot,
        skip: bool,
        idaws: &mut Vec<u64>,
        mut sink: F,
    ) -> Result<(), TranslateError> {
        let (ccw_fmt, idaw_fmt) = (guest.format, guest.idaw_format());
        let bs = idaw_fmt.block_size();
        // A power of two (2 or 4 KiB): offsets in a block by mask, never by a division.
        debug_assert!(bs.is_power_of_two());
        let mask = bs - 1;
        let (access, perm) = if e.exec.class.is_input() {
            (DmaAccess::Write, Permissions::Write)
        } else {
            (DmaAccess::Read, Permissions::Read)
        };
        // Read backward stores at descending addresses: the address designates the highest
        // byte, and each piece runs down to the start of its block.
        let backward = e.exec.class == CommandClass::ReadBackward;
        let piece = |addr: u64, left: u64| {
            if backward {
                left.min((addr & mask) + 1)
            } else {
                left.min(bs - (addr & mask))
            }
        };
        let count = e.count as u64;
        // Checks the piece of `len` bytes designated by `addr` and hands it to the sink.
        // Checks the piece of `len` bytes designated by `addr` and hands it to the sink (a
        // macro, not a closure: expanded at both call sites, so it is never a call).
        macro_rules! pin {
            ($addr:expr, $len:expr) => {{
                let (addr, len): (u64, u64) = ($addr, $len);
                if idaws.len() >= max_idaws {
                    return Err(K::TooManyIdaws { limit: max_idaws }.into());
                }
                let range = if backward {
                    GuestRange::new(addr - (len - 1), len)
                } else {
                    GuestRange::new(addr, len)
                };
                // The data must be guest memory: checked here, not left to the mapper (an
                // identity mapper over all of the host's IOVA space would accept anything).
                if !snap.verify(mem, range.gpa, len, perm) {
                    return Err(K::GuestFault {
                        what: Block::Data,
                        addr: range.gpa,
                        len: len as usize,
                    }
                    .into());
                }
                let piece = Piece {
                    addr,
                    range,
                    backward,
                    access,
                    mask,
                };
                sink.piece(&piece, idaws)?;
            }};
        }
        if !e.flags.contains(CcwFlags::IDA) {
            debug_assert!(!skip, "SKIP on a direct address reads nothing");
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
                pin!(addr, len);
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
        let buf = idal_buf;
        let fault = |addr: u64, len: usize| K::GuestFault {
            what: Block::Idal,
            addr,
            len,
        };
        let sz = size as usize;
        // Constant lengths, so the copy out of the snapshot is inline.
        let first = if sz == 8 {
            snap.fetch_n::<_, 8>(mem, idal, u64::MAX)
        } else {
            snap.fetch_n::<_, 4>(mem, idal, u64::MAX).map(|b| {
                let mut w = [0; 8];
                w[..4].copy_from_slice(&b);
                w
            })
        };
        let Some(first) = first else {
            return Err(fault(idal, sz).into());
        };
        let a0 = decode_idaw(&first[..sz], idaw_fmt)?;
        let first_len = piece(a0, count);
        let n = 1 + ((count - first_len + mask) >> bs.trailing_zeros()) as usize;
        if n > 1 {
            let rest = idal + size;
            if !snap.fetch(mem, rest, &mut buf[sz..n * sz], u64::MAX) {
                return Err(fault(rest, (n - 1) * sz).into());
            }
        }
        let mut left = count;
        for k in 0..n {
            let addr = if k == 0 {
                a0
            } else {
                let a = decode_idaw(&buf[k * sz..(k + 1) * sz], idaw_fmt)?;
                // Later IDAWs designate the first (backward: last) byte of a block.
                let aligned = if backward {
                    a & mask == mask
                } else {
                    a & mask == 0
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
            left -= len;
            if skip {
                continue;
            }
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
            pin!(addr, len);
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
        let area = alloc_area(mapper, total)?;
        let base = area.addr;
        // Appended in layout order (segments by `host_off`, each followed by its zero
        // doubleword, then the IDAL): every byte written once, none zeroed first.
        self.image.clear();
        self.image.reserve(total);
        let mut i = 0;
        for seg in segments.iter() {
            debug_assert_eq!(self.image.len(), seg.host_off);
            for e in &self.entries[i..i + seg.len] {
                let (flags, cda) = match e.host {
                    HostCda::None => (e.flags.difference(CcwFlags::IDA), 0),
                    HostCda::Poison => (CcwFlags::NONE, 0),
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
                self.image.extend_from_slice(&ccw.into_bytes());
            }
            i += seg.len;
            self.image.extend_from_slice(&[0; 8]);
        }
        debug_assert_eq!(self.image.len(), idal_off);
        for idaw in &self.idaws {
            self.image.extend_from_slice(&idaw.to_be_bytes());
        }
        debug_assert_eq!(self.image.len(), total);
        write_area(mapper, area, &self.image)
    }
}

/// Allocates `total` bytes of control memory and checks what the mapper returned.
fn alloc_area(mapper: &dyn Mapper, total: usize) -> Result<ControlArea, TranslateError> {
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
    Ok(area)
}

/// Writes the host program into `area` with one call; frees the area when that fails.
fn write_area(
    mapper: &dyn Mapper,
    area: ControlArea,
    image: &[u8],
) -> Result<ControlArea, TranslateError> {
    if let Err(error) = mapper.write_control(&area, 0, image) {
        mapper.free_control(area);
        return Err(K::Map {
            op: MapOp::WriteControl,
            error,
        }
        .into());
    }
    Ok(area)
}

/// The host address of guest CCW address `t` (the first segment holding it).
fn host_of(segments: &[Segment], base: u64, t: u64) -> Option<u64> {
    segments.iter().find_map(|s| {
        (s.guest..s.guest + 8 * s.len as u64)
            .contains(&t)
            .then(|| base + s.host_off as u64 + (t - s.guest))
    })
}

#[inline]
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
///
/// `chained` is the command whose data chain reaches this CCW, `None` for a new command.
/// A data-chained CCW's own command code is ignored by the channel unless it is a TIC, so
/// it is neither validated nor used to classify the CCW.
#[inline]
fn parse_ccw(
    raw: [u8; 8],
    addr: u64,
    orb: &CommandOrb,
    chained: Option<Exec>,
) -> Result<Entry, TranslateError> {
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
    let own = CommandClass::of(cmd, fmt);
    let host = match own {
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
        CommandClass::Invalid if chained.is_none() => {
            return Err(K::InvalidCommand { cmd }.into());
        }
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
        own,
        exec: chained.unwrap_or(Exec::of(cmd, own)),
        chained: chained.is_some(),
        spec: false,
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
            None,
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
            None,
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
            None,
        )
        .unwrap();
        assert_eq!(
            (e.cmd, e.flags, e.count, e.cda),
            (0x02, CcwFlags::SLI | CcwFlags::IDA, 7, 0x12340)
        );
        assert_eq!(e.exec.class, CommandClass::Read);
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
    fn verify_answers_from_guest_memory_window_or_exact_range() {
        use vm_memory::GuestMemoryMmap;
        let r = Permissions::Read;
        // 64 KiB: no 1 MiB window is backed, so each miss checks exactly the range.
        let small = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1_0000)]).unwrap();
        let mut snap = Snapshot::new();
        assert!(snap.verify(&small, 0x1000, 0x1000, r));
        assert_eq!(snap.ok_read, (0x1000, 0x2000));
        assert!(!snap.verify(&small, 0xF000, 0x1001, r), "crosses the end");
        assert!(!snap.verify(&small, 0x1_0000, 1, r));
        assert!(!snap.verify(&small, u64::MAX, 2, r), "wraps");
        // 2 MiB: the first miss verifies the window, later pieces in it hit.
        let big = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x20_0000)]).unwrap();
        snap.reset();
        assert_eq!((snap.ok_read, snap.ok_write), ((0, 0), (0, 0)));
        assert!(snap.verify(&big, 0x1000, 0x100, r));
        assert_eq!(snap.ok_read, (0, 0x10_0000));
        assert!(snap.verify(&big, 0xF_FF00, 0x100, r));
        assert!(!snap.verify(&big, 0x1F_FF00, 0x200, r), "crosses the end");
        assert!(snap.verify(&big, 0x1F_FF00, 0x100, r));
        // Write is tracked apart from read.
        assert_eq!(snap.ok_write, (0, 0));
        assert!(snap.verify(&big, 0x10_0000, 8, Permissions::Write));
        assert_eq!(snap.ok_write, (0x10_0000, 0x20_0000));
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
