// SPDX-License-Identifier: Apache-2.0 OR MIT

//! [`MockBuilder`]: how a simulated channel subsystem is put together (subchannels and their
//! device models, latency, faults, guest memory, arena, paths).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ccw_types::SubchannelId;
use css_core::{BackendError, BackendErrorKind, SubchannelTable};
use vm_memory::GuestMemoryMmap;

use super::{Inner, MockBackend, Sch, SchInner, Worker};
use crate::ChannelDevice;
use crate::channel::DEFAULT_MAX_CCWS;
use crate::device::DeviceModel;
use crate::devices::{TestDevice, VirtioBlkCcw};
use crate::fault::FaultPolicy;
use crate::instr::SchState;
use crate::storage::{DEFAULT_ARENA_SIZE, HostStorage};

/// Builds a [`MockBackend`].
///
/// ```
/// use mock_backend::{MockBackend, devices::TestDevice};
/// use std::time::Duration;
/// let backend = MockBackend::builder()
///     .subchannel(0x0100, Box::new(TestDevice::new(4096)))
///     .latency(Duration::ZERO)
///     .build()?;
/// assert_eq!(backend.subchannel_ids().len(), 1);
/// # Ok::<(), css_core::BackendError>(())
/// ```
pub struct MockBuilder {
    /// Keyed by id, so adding is O(1) at the architecture's 262,144 subchannels (a later add
    /// of the same id replaces the earlier one).
    subchannels: HashMap<SubchannelId, (u16, Box<dyn DeviceModel>)>,
    /// The number [`MockBuilder::subchannel`] gives next: one past the highest added.
    next_sch_no: u16,
    latency: Duration,
    faults: FaultPolicy,
    guest: Option<GuestMemoryMmap>,
    arena_size: usize,
    require_pins: bool,
    max_ccws: u64,
    isc: u8,
    paths: u8,
    /// Per-subchannel CHPIDs (slot 0 first), overriding `paths` for that subchannel.
    chpids: HashMap<SubchannelId, Vec<u8>>,
    event_capacity: usize,
}

impl std::fmt::Debug for MockBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockBuilder")
            .field("subchannels", &self.subchannels.len())
            .field("latency", &self.latency)
            .field("faults", &self.faults)
            .field("arena_size", &self.arena_size)
            .finish_non_exhaustive()
    }
}

impl MockBuilder {
    /// Adds a subchannel with device number `devno` and `device`, numbered after the previous
    /// one (0.0.0000, 0.0.0001, ...).
    pub fn subchannel(self, devno: u16, device: Box<dyn DeviceModel>) -> Self {
        let next = self.next_sch_no;
        self.subchannel_at(SubchannelId::new(0, 0, next), devno, device)
    }

    /// Adds a subchannel with an explicit id.
    pub fn subchannel_at(
        mut self,
        sch: SubchannelId,
        devno: u16,
        device: Box<dyn DeviceModel>,
    ) -> Self {
        self.next_sch_no = self.next_sch_no.max(sch.sch_no.wrapping_add(1));
        self.subchannels.insert(sch, (devno, device));
        self
    }

    /// Time between START (or RESUME) SUBCHANNEL and the device starting; zero for benchmarks.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// The fault policy (default: none).
    pub fn faults(mut self, policy: FaultPolicy) -> Self {
        self.faults = policy;
        self
    }

    /// Attaches guest memory: the backend keeps a clone that shares the same mmap'd regions
    /// (zero-copy) and shows guest address `gpa` at device address [`crate::GUEST_BASE`]` + gpa`.
    /// Accepts `GuestMemoryMmap`, `&GuestMemoryMmap` or `Arc<GuestMemoryMmap>`.
    pub fn guest_memory(mut self, mem: impl Borrow<GuestMemoryMmap>) -> Self {
        self.guest = Some(mem.borrow().clone());
        self
    }

    /// Size of the control arena (default 8 MiB; at most [`crate::MAX_ARENA_SIZE`]).
    pub fn arena_size(mut self, bytes: usize) -> Self {
        self.arena_size = bytes;
        self
    }

    /// Whether the channel may touch only guest pages pinned through the mapper (default
    /// `true`: an access to an unpinned page is a channel-data check). Turn it off to run host
    /// programs whose data lives in guest memory without pinning it.
    pub fn require_pins(mut self, on: bool) -> Self {
        self.require_pins = on;
        self
    }

    /// Upper bound on the CCWs one program may execute before the channel ends it with a
    /// program check (default 2^20).
    pub fn max_ccws(mut self, n: u64) -> Self {
        self.max_ccws = n.max(1);
        self
    }

    /// Interruption subclass of every subchannel (default 3, as Linux's I/O subchannels).
    pub fn isc(mut self, isc: u8) -> Self {
        self.isc = isc & 7;
        self
    }

    /// Installed paths of every subchannel as a mask (default 0x80: one path, slot 0).
    pub fn paths(mut self, pim: u8) -> Self {
        self.paths = pim;
        self
    }

    /// The paths of subchannel `sch` (overrides [`MockBuilder::paths`] for it): one path per
    /// CHPID, slot 0 first (PIM = PAM = LPM with a bit per entry; at most 8 are used).
    ///
    /// ```
    /// use ccw_types::SubchannelId;
    /// use css_core::Backend;
    /// use mock_backend::{MockBackend, devices::TestDevice};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let sch = SubchannelId::new(0, 0, 0);
    /// let backend = MockBackend::builder()
    ///     .subchannel_at(sch, 0x0190, Box::new(TestDevice::new(64)))
    ///     .subchannel_chpids(sch, &[0x40, 0x41])
    ///     .build()?;
    /// let p = backend.store_schib(sch).await?.pmcw;
    /// assert_eq!((p.pim, p.pam, p.lpm), (0xC0, 0xC0, 0xC0));
    /// assert_eq!(p.chpid, [0x40, 0x41, 0, 0, 0, 0, 0, 0]);
    /// # Ok::<(), css_core::BackendError>(())
    /// # }).unwrap();
    /// ```
    pub fn subchannel_chpids(mut self, sch: SubchannelId, chpids: &[u8]) -> Self {
        self.chpids
            .insert(sch, chpids.iter().take(8).copied().collect());
        self
    }

    /// How many events the backend's queue holds (default
    /// [`css_core::backend::EVENT_QUEUE_CAPACITY`]). While it is full, a subchannel's status
    /// stays pending (START gets cc 1) and channel reports overflow (R bit); see
    /// [`css_core::event_channel`].
    pub fn event_capacity(mut self, events: usize) -> Self {
        self.event_capacity = events.max(1);
        self
    }

    /// Builds the backend.
    pub fn build(self) -> Result<MockBackend, BackendError> {
        let storage =
            HostStorage::new(self.arena_size, self.guest, self.require_pins).map_err(|e| {
                BackendError::new(BackendErrorKind::Io, "build")
                    .with_detail(format!("cannot map the control arena: {e}"))
            })?;
        let mut subchannels = SubchannelTable::new();
        // Made in ascending id order, so that neighbouring subchannels are neighbours in
        // memory too (a walk over them, as a probe or a report storm makes, stays sequential).
        let mut added: Vec<_> = self.subchannels.into_iter().collect();
        added.sort_unstable_by_key(|(id, _)| *id);
        for (id, (devno, device)) in added {
            let mut st = SchState::new(devno);
            let p = &mut st.schib.pmcw;
            p.flags.set_isc(self.isc);
            let (pim, chpids) = match self.chpids.get(&id) {
                Some(list) => {
                    let mut c = [0u8; 8];
                    c[..list.len()].copy_from_slice(list);
                    let pim = (0..list.len()).fold(0u8, |m, i| m | (0x80 >> i));
                    (pim, c)
                }
                None => (
                    self.paths,
                    std::array::from_fn(|slot| {
                        if self.paths & (0x80 >> slot) != 0 {
                            slot as u8
                        } else {
                            0
                        }
                    }),
                ),
            };
            p.pim = pim;
            p.pam = pim;
            p.lpm = pim;
            p.chpid = chpids;
            subchannels.insert(
                id,
                Arc::new(Sch {
                    id,
                    state: Mutex::new(SchInner {
                        st,
                        channel: ChannelDevice::new(device).with_max_ccws(self.max_ccws),
                        worker: Worker::None,
                        waker: None,
                        waited: false,
                        delayed_delivery: false,
                    }),
                }),
            );
        }
        let (tx, rx) = css_core::event_channel(self.event_capacity);
        Ok(MockBackend {
            inner: Arc::new(Inner {
                storage: Arc::new(storage),
                subchannels,
                latency: self.latency,
                faults_on: !self.faults.is_disabled(),
                faults: Mutex::new(self.faults),
                events: tx,
                receiver: Mutex::new(Some(rx)),
                crw_overflow: AtomicBool::new(false),
            }),
        })
    }
}

impl MockBackend {
    /// A builder with no subchannels, zero latency, no faults, an 8 MiB arena.
    pub fn builder() -> MockBuilder {
        MockBuilder {
            subchannels: HashMap::new(),
            next_sch_no: 0,
            latency: Duration::ZERO,
            faults: FaultPolicy::none(),
            guest: None,
            arena_size: DEFAULT_ARENA_SIZE,
            require_pins: true,
            max_ccws: DEFAULT_MAX_CCWS,
            isc: 3,
            paths: 0x80,
            chpids: HashMap::new(),
            event_capacity: css_core::backend::EVENT_QUEUE_CAPACITY,
        }
    }

    /// The default simulated subsystem, as the emulated s390x guest had it:
    ///
    /// | subchannel | devno | device |
    /// |---|---|---|
    /// | 0.0.0000 | 0x0005 | virtio-blk-ccw control device, 64 MiB disk ([`VirtioBlkCcw`]) |
    /// | 0.0.0001 | 0x0006 | generic test device, 64 KiB buffer ([`TestDevice`]) |
    ///
    /// Both have ISC 3, one path (PIM 0x80, CHPID 0x00), concurrent sense, and are disabled
    /// until [`css_core::Backend::enable`]. Zero latency, no faults, `guest` attached zero-copy.
    pub fn default_subsystem(guest: impl Borrow<GuestMemoryMmap>) -> Result<Self, BackendError> {
        Self::builder()
            .subchannel(0x0005, Box::new(VirtioBlkCcw::new(131_072)))
            .subchannel(0x0006, Box::new(TestDevice::new(64 * 1024)))
            .guest_memory(guest)
            .build()
    }
}
