// SPDX-License-Identifier: Apache-2.0 OR MIT

//! [`MockBackend`]: the simulated channel subsystem behind [`css_core::Backend`].
//!
//! Instructions apply the pure transitions of [`crate::instr`] under the subchannel's lock and
//! hand the asynchronous part (start, resume, halt, clear functions) to the subchannel's worker
//! task (spawned by its first function, idle between functions). The worker executes the channel program command by command, so a halt or clear
//! issued while a program runs is acted on between two commands. Whenever a subchannel becomes
//! status pending (and is enabled), the backend does what the kernel's interruption handler
//! does: TEST SUBCHANNEL, and the IRB goes out once on the event stream.

//!
//! Split by concern: `builder` puts a subsystem together, `worker` runs the asynchronous
//! functions, `delivery` is the interruption handler and the channel reports, `faults` the
//! faults injected where a start begins, `inspect` the test and tool hooks.

mod builder;
mod delivery;
mod faults;
mod inspect;
mod worker;

pub use builder::MockBuilder;
use worker::Worker;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ccw_translate::Mapper;
use ccw_types::{Orb, OrbRepr, Schib, SubchannelId};
use css_core::{
    Backend, BackendError, BackendErrorKind, ConditionCode, EventReceiver, EventSender,
    SubchannelTable,
};
use tracing::debug;

use crate::ChannelDevice;
use crate::fault::FaultPolicy;
use crate::instr::{self, OperandException, SchState};
use crate::storage::HostStorage;

pub(crate) use ccw_translate::sync::lock;

/// The simulated channel subsystem. Cheap to clone (shared state).
///
/// ```
/// use mock_backend::MockBackend;
/// use vm_memory::{GuestAddress, GuestMemoryMmap};
/// let guest = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
/// let backend = MockBackend::default_subsystem(&guest)?;
/// let ids: Vec<String> = backend.subchannel_ids().iter().map(|s| s.to_string()).collect();
/// assert_eq!(ids, ["0.0.0000", "0.0.0001"]);
/// # Ok::<(), css_core::BackendError>(())
/// ```
#[derive(Clone)]
pub struct MockBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MockBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockBackend")
            .field("subchannels", &self.inner.subchannels.len())
            .field("latency", &self.inner.latency)
            .finish_non_exhaustive()
    }
}

struct Inner {
    storage: Arc<HostStorage>,
    subchannels: SubchannelTable<Arc<Sch>>,
    latency: Duration,
    faults: Mutex<FaultPolicy>,
    /// Whether the policy can inject anything (else no decision takes its lock).
    faults_on: bool,
    events: EventSender,
    receiver: Mutex<Option<EventReceiver>>,
    crw_overflow: AtomicBool,
}

struct Sch {
    id: SubchannelId,
    state: Mutex<SchInner>,
}

struct SchInner {
    st: SchState,
    /// The device model with the channel program it runs.
    channel: ChannelDevice,
    /// This subchannel's worker task, and whether it is running functions.
    worker: Worker,
    /// The idle worker's waker.
    waker: Option<std::task::Waker>,
    /// The worker already waited the latency for the pending start/resume.
    waited: bool,
    /// A delayed delivery is scheduled: status stays pending until it runs.
    delayed_delivery: bool,
}

impl Inner {
    pub(super) fn sch(
        &self,
        id: SubchannelId,
        op: &'static str,
    ) -> Result<&Arc<Sch>, BackendError> {
        self.subchannels.get(id).ok_or_else(|| {
            BackendError::new(BackendErrorKind::NoDevice, op)
                .on(id)
                .with_detail("no such subchannel in the simulated channel subsystem")
        })
    }
}

impl Drop for Inner {
    /// Ends the idle worker tasks: they hold the backend only weakly and find it gone.
    fn drop(&mut self) {
        for s in self.subchannels.values() {
            if let Some(w) = lock(&s.state).waker.take() {
                w.wake();
            }
        }
    }
}

fn operand(op: &'static str, sch: SubchannelId, e: OperandException) -> BackendError {
    BackendError::new(BackendErrorKind::InvalidArgument, op)
        .on(sch)
        .with_detail(e.to_string())
}

impl MockBackend {
    /// The subchannels, in ascending order.
    pub fn subchannel_ids(&self) -> Vec<SubchannelId> {
        self.inner.subchannels.ids().collect()
    }

    /// MODIFY SUBCHANNEL with the program-modifiable fields of `schib`.
    pub async fn modify(
        &self,
        sch: SubchannelId,
        schib: &Schib,
    ) -> Result<ConditionCode, BackendError> {
        let s = self.inner.sch(sch, "modify")?;
        let mut g = lock(&s.state);
        let was_enabled = g.st.schib.pmcw.flags.enabled();
        let cc = instr::msch(&mut g.st, schib).map_err(|e| operand("modify", sch, e))?;
        if cc == ConditionCode::Cc0 {
            if !was_enabled && g.st.schib.pmcw.flags.enabled() {
                g.channel.model_mut().enabled();
            }
            self.inner.deliver(s, &mut g);
        }
        Ok(cc)
    }

    /// Applies instruction `f` under the subchannel's lock; on cc 0 `then` hands the
    /// asynchronous part to the channel subsystem.
    fn instruction(
        &self,
        sch: SubchannelId,
        op: &'static str,
        f: fn(&mut SchState) -> ConditionCode,
        then: fn(&Arc<Inner>, &Arc<Sch>, &mut SchInner),
    ) -> Result<ConditionCode, BackendError> {
        let s = self.inner.sch(sch, op)?;
        let mut g = lock(&s.state);
        let cc = f(&mut g.st);
        debug!(%sch, op, cc = cc.value(), "instruction");
        if cc == ConditionCode::Cc0 {
            then(&self.inner, s, &mut g);
        }
        Ok(cc)
    }
}

#[async_trait]
impl Backend for MockBackend {
    async fn probe(&self) -> Result<Vec<(SubchannelId, Schib)>, BackendError> {
        Ok(self
            .inner
            .subchannels
            .iter()
            .map(|(id, s)| (id, instr::stsch(&lock(&s.state).st)))
            .collect())
    }

    async fn enable(&self, sch: SubchannelId, intparm: u32) -> Result<ConditionCode, BackendError> {
        let s = self.inner.sch(sch, "enable")?;
        let mut schib = instr::stsch(&lock(&s.state).st);
        schib.pmcw.flags.set_enabled(true);
        schib.pmcw.intparm = zerocopy::big_endian::U32::new(intparm);
        self.modify(sch, &schib).await
    }

    async fn disable(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError> {
        let s = self.inner.sch(sch, "disable")?;
        let mut schib = instr::stsch(&lock(&s.state).st);
        schib.pmcw.flags.set_enabled(false);
        self.modify(sch, &schib).await
    }

    async fn start(&self, sch: SubchannelId, orb: &Orb) -> Result<ConditionCode, BackendError> {
        let s = self.inner.sch(sch, "start")?;
        let mut g = lock(&s.state);
        if let Some(cc) = self.inner.start_fault(s, &mut g) {
            return Ok(cc);
        }
        // Parsed once, for the instruction and the channel.
        let cmd = match OrbRepr::from_orb(orb) {
            Ok(OrbRepr::Command(cmd)) => cmd,
            Ok(_) => {
                return Err(operand(
                    "start",
                    sch,
                    OperandException::NotInstalled(
                        "the fibre-channel extensions facility (transport mode)",
                    ),
                ));
            }
            Err(e) => return Err(operand("start", sch, OperandException::Operand(e))),
        };
        let cc = instr::ssch_command(&mut g.st, orb, &cmd);
        debug!(%sch, cc = cc.value(), "start subchannel");
        if cc == ConditionCode::Cc0 {
            g.channel.begin(&cmd);
            g.waited = false;
            self.inner.ensure_worker(s, &mut g);
        } else if self.inner.faults_on {
            lock(&self.inner.faults).disarm(sch);
        }
        Ok(cc)
    }

    async fn halt(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError> {
        self.instruction(sch, "halt", instr::hsch, |inner, s, g| {
            inner.ensure_worker(s, g)
        })
    }

    async fn clear(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError> {
        self.instruction(sch, "clear", instr::csch, |inner, s, g| {
            inner.ensure_worker(s, g)
        })
    }

    async fn cancel(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError> {
        // No interruption follows a successful cancel: only the program is dropped.
        self.instruction(sch, "cancel", instr::xsch, |_, _, g| {
            g.channel.take_program();
            g.waited = false;
        })
    }

    async fn resume(&self, sch: SubchannelId) -> Result<ConditionCode, BackendError> {
        self.instruction(sch, "resume", instr::rsch, |inner, s, g| {
            g.waited = false;
            inner.ensure_worker(s, g);
        })
    }

    async fn store_schib(&self, sch: SubchannelId) -> Result<Schib, BackendError> {
        let s = self.inner.sch(sch, "store_schib")?;
        Ok(instr::stsch(&lock(&s.state).st))
    }

    fn mapper(&self, sch: SubchannelId) -> Result<Arc<dyn Mapper>, BackendError> {
        self.inner.sch(sch, "mapper")?;
        Ok(self.inner.storage.clone())
    }

    fn take_events(&self) -> Result<EventReceiver, BackendError> {
        lock(&self.inner.receiver).take().ok_or_else(|| {
            BackendError::new(BackendErrorKind::Closed, "take_events")
                .with_detail("the event stream was already taken")
        })
    }
}
