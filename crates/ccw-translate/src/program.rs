// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The translated channel program: host ORB, where the host chain lives, what was pinned.

use std::sync::{Arc, Mutex};

use ccw_types::{CommandOrb, Orb, Scsw};
use zerocopy::big_endian::U32;

use crate::mapper::{ControlArea, GuestRange, Mapper, Premapped};
use crate::sync::lock;

/// One chain segment: a run of CCWs at consecutive guest addresses, entered at its head
/// from the ORB or a TIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Guest address of the first CCW.
    pub(crate) guest: u64,
    /// Number of CCWs.
    pub(crate) len: usize,
    /// Byte offset of the host copy inside the control area.
    pub(crate) host_off: usize,
}

/// The heap buffers a program owns; they return to the translator's pool on release so a
/// warm translator allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct Buffers {
    pub(crate) segments: Vec<Segment>,
    /// Every data range, premapped or pinned through the mapper.
    pub(crate) pins: Vec<GuestRange>,
    /// How many of `pins` went through [`Mapper::pin`] (those outside the premapped span).
    pub(crate) mapper_pins: usize,
}

impl Buffers {
    pub(crate) fn clear(&mut self) {
        self.segments.clear();
        self.pins.clear();
        self.mapper_pins = 0;
    }
}

/// Unpins through `mapper` the ranges of `ranges` that it pinned (those outside `pre`):
/// `mapper_pins` of them, so nothing is looked at when that is 0.
pub(crate) fn unpin_all(
    mapper: &dyn Mapper,
    pre: Option<Premapped>,
    ranges: &[GuestRange],
    mapper_pins: usize,
) {
    if mapper_pins == 0 {
        return;
    }
    if mapper_pins == ranges.len() {
        // Nothing premapped among them: one call.
        mapper.unpin_many(ranges);
        return;
    }
    for &range in ranges {
        if pre.and_then(|p| p.device_addr(range)).is_none() {
            mapper.unpin(range);
        }
    }
}

/// Buffers waiting for the next translation.
pub(crate) type Pool = Arc<Mutex<Vec<Buffers>>>;

/// At most this many idle buffer sets are kept per translator.
pub(crate) const POOL_MAX: usize = 8;

pub(crate) fn pool_put(pool: &Pool, mut bufs: Buffers) {
    bufs.clear();
    let mut p = lock(pool);
    if p.len() < POOL_MAX {
        p.push(bufs);
    }
}

pub(crate) fn pool_take(pool: &Pool) -> Buffers {
    lock(pool).pop().unwrap_or_default()
}

/// A guest channel program translated for a backend: host CCWs and format-2 IDALs in the
/// backend's control memory, the guest's data pages pinned, and the ORB to start it with.
///
/// It owns what it holds: it keeps the [`Mapper`] it was translated through, and dropping it
/// (once the I/O is over: final status, or the start failed) unpins every pinned range and
/// frees the control memory, exactly once, and gives its buffers back to the translator that
/// built it. The [`Mapper`] contract has no failing unpin or free, so there is nothing a
/// release could report and no explicit release.
///
/// ```
/// # #[cfg(feature = "test-utils")] {
/// use std::sync::Arc;
/// use ccw_translate::{GuestRange, Limits, Translator, testing::RecordingMapper};
/// use ccw_types::{CommandOrb, Scsw};
/// use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
///
/// let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap();
/// // SENSE ID, SLI, 256 bytes at 0x2000 (reference §13.1).
/// mem.write_slice(&[0xE4, 0x20, 0x01, 0x00, 0x00, 0x00, 0x20, 0x00], GuestAddress(0x1000)).unwrap();
/// let mapper = Arc::new(RecordingMapper::new());
/// let mut translator = Translator::new(Limits::default());
/// let orb = CommandOrb::new(0xcafe, 0x1000).emit();
/// let program = translator.translate(&orb, &mem, mapper.clone(), 0x80)?;
/// assert!(program.is_pinned(GuestRange::new(0x2000, 1)));
/// assert!(!program.is_pinned(GuestRange::new(0x2100, 1)));
///
/// // The device ran the host program: final status names the host CCW address + 8.
/// let mut scsw = Scsw::default();
/// scsw.cpa.set(program.host_orb().cpa.get() + 8);
/// program.update_scsw(&mut scsw);
/// assert_eq!(scsw.cpa.get(), 0x1008);
///
/// assert_eq!((mapper.live_pins().len(), mapper.live_areas()), (1, 1));
/// drop(program); // unpins and frees
/// assert_eq!((mapper.live_pins().len(), mapper.live_areas()), (0, 0));
/// # }
/// # Ok::<(), ccw_translate::TranslateError>(())
/// ```
pub struct ChannelProgram {
    pub(crate) guest_orb: CommandOrb,
    pub(crate) host_orb: Orb,
    pub(crate) area: Option<ControlArea>,
    pub(crate) bufs: Buffers,
    pub(crate) pool: Pool,
    /// The mapper's premapped span at translation: ranges inside it were not pinned.
    pub(crate) premapped: Option<Premapped>,
    /// Where the pins and the control area go back to.
    pub(crate) mapper: Arc<dyn Mapper>,
}

impl core::fmt::Debug for ChannelProgram {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChannelProgram")
            .field("guest_orb", &self.guest_orb)
            .field("host_orb", &self.host_orb)
            .field("area", &self.area)
            .field("segments", &self.bufs.segments)
            .field("pins", &self.bufs.pins.len())
            .finish_non_exhaustive()
    }
}

impl ChannelProgram {
    /// The ORB to start the host program with: format-1 CCWs, format-2 IDAWs (H = 1), T = 1
    /// when the host IDAWs designate 2 KiB blocks (the guest's IDAW blocks were 2 KiB), LPM 0
    /// replaced by the subchannel's default, cpa = the host copy of the first CCW. Key,
    /// intparm and the other controls are the guest's.
    pub fn host_orb(&self) -> Orb {
        self.host_orb
    }

    /// The guest's ORB, as validated.
    pub fn guest_orb(&self) -> &CommandOrb {
        &self.guest_orb
    }

    /// Rewrites the SCSW's CCW address from the host program to the guest program.
    ///
    /// The address may point anywhere inside a host segment or one CCW past its end (the
    /// usual "last CCW executed + 8"). An address that is not inside the host program is left
    /// unchanged. Call it for solicited status only (the CCW address of unsolicited status
    /// is meaningless).
    pub fn update_scsw(&self, scsw: &mut Scsw) {
        if let Some(guest) = self.guest_cpa(scsw.cpa.get() as u64) {
            // Guest CCW addresses are 31-bit (format 1) or 24-bit (format 0): they fit.
            scsw.cpa = U32::new(guest as u32);
        }
    }

    /// The guest CCW address for a host CCW address (inside a segment or one past its end).
    pub fn guest_cpa(&self, host: u64) -> Option<u64> {
        let base = self.area.as_ref()?.addr;
        self.bufs.segments.iter().find_map(|s| {
            let start = base + s.host_off as u64;
            let end = start + 8 * s.len as u64;
            (start..=end)
                .contains(&host)
                .then(|| s.guest + (host - start))
        })
    }

    /// The host CCW address for a guest CCW address (inside a segment or one past its end):
    /// the inverse of [`Self::guest_cpa`]. When segments overlap in guest memory the first
    /// one wins.
    pub fn host_cpa(&self, guest: u64) -> Option<u64> {
        let base = self.area.as_ref()?.addr;
        self.bufs.segments.iter().find_map(|s| {
            let end = s.guest + 8 * s.len as u64;
            (s.guest..=end)
                .contains(&guest)
                .then(|| base + s.host_off as u64 + (guest - s.guest))
        })
    }

    /// Whether any pinned guest range shares a byte with `range`: the question a DMA-unmap
    /// notification asks (vfio-ccw resets the device when the answer is yes).
    pub fn is_pinned(&self, range: GuestRange) -> bool {
        self.bufs.pins.iter().any(|p| p.overlaps(&range))
    }

    /// Every pinned guest range, in pin order (one per host IDAW; never crossing 4 KiB),
    /// including those inside the mapper's [`Mapper::premapped`] span, which the mapper was
    /// not asked to pin.
    pub fn pins(&self) -> &[GuestRange] {
        &self.bufs.pins
    }

    /// The control memory holding the host CCWs (first) and IDAWs (after them).
    pub fn control_area(&self) -> Option<&ControlArea> {
        self.area.as_ref()
    }

    /// The chain segments: `(guest address of the head, host address of the head, CCWs)`.
    pub fn segments(&self) -> impl Iterator<Item = (u64, u64, usize)> + '_ {
        let base = self.area.as_ref().map_or(0, |a| a.addr);
        self.bufs
            .segments
            .iter()
            .map(move |s| (s.guest, base + s.host_off as u64, s.len))
    }
}

/// The release: every pinned range unpinned and the control memory freed, exactly once (drop
/// runs once); the program's buffers go back to the translator that built it.
impl Drop for ChannelProgram {
    fn drop(&mut self) {
        unpin_all(
            &*self.mapper,
            self.premapped,
            &self.bufs.pins,
            self.bufs.mapper_pins,
        );
        if let Some(area) = self.area.take() {
            self.mapper.free_control(area);
        }
        pool_put(&self.pool, core::mem::take(&mut self.bufs));
    }
}
