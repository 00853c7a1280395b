// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The channel subsystem the commands drive: css-core's [`Css`] over any [`Backend`], the
//! guest memory the programs run from, and the optional [`Controls`] extension.
//!
//! There is no second seam: the commands (list, sense-id, run, watch) are generic over the
//! backend of a [`Target`], which is css-core's `Css`/`Subchannel` API plus the memory.
//! What only the simulator can do (vary paths, present attention) is the [`Controls`]
//! extension trait, whose defaults answer [`TargetErrorKind::Unavailable`]; mock-backend's
//! implementation exists with the `sim` feature (see `crate::backends`).

use std::sync::Arc;
use std::time::Duration;

use ccw_translate::Translator;
use ccw_types::{Crw, ErrorKind, Irb, Orb, Schib, SubchannelId};
use css_core::{Backend, Css, CssError, SubchannelEvent};
use tokio::sync::mpsc;
use vm_memory::GuestMemoryMmap;

/// What kind of failure a [`TargetError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TargetErrorKind {
    /// No such subchannel or device.
    NoDevice,
    /// The device went away.
    Gone,
    /// The caller lacks permission (vfio group/device files).
    PermissionDenied,
    /// The backend is not part of this build, or cannot do this.
    Unavailable,
    /// The subchannel is busy or has status pending.
    Busy,
    /// The channel program was refused before it started (translation).
    Rejected,
    /// No final status in time.
    Timeout,
    /// Anything else the backend reported.
    Other,
}

/// A failure of the channel subsystem behind a command: one line for a person, plus a kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TargetError {
    /// For branching.
    pub kind: TargetErrorKind,
    /// What happened, one line.
    pub message: String,
}

impl TargetError {
    /// An error of `kind`.
    pub fn new(kind: TargetErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The kind.
    pub fn kind(&self) -> TargetErrorKind {
        self.kind
    }
}

/// The outcome of one started channel program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The final IRB, guest addresses.
    pub irb: Irb,
    /// Intermediate status seen while the program ran (PCI, initial status), in order.
    pub intermediate: Vec<Irb>,
    /// Time from start to final status.
    pub elapsed: Duration,
}

/// Something `watch` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// An interruption (solicited or not) on a subchannel.
    Interrupt {
        /// The subchannel.
        sch: SubchannelId,
        /// What TEST SUBCHANNEL stored.
        irb: Irb,
    },
    /// A channel report.
    ChannelReport(Crw),
    /// Anything else the subsystem says (device gone, release request, ...).
    Notice {
        /// The subchannel, when there is one.
        sch: Option<SubchannelId>,
        /// What happened.
        what: String,
    },
}

/// What a backend can make happen beyond [`Backend`], for `watch`: the simulator's controls.
/// The defaults answer [`TargetErrorKind::Unavailable`] (a real device cannot be told to).
pub trait Controls: Backend {
    /// Varies the paths `mask` of `sch` off (`online == false`) or on.
    fn vary_paths(&self, sch: SubchannelId, mask: u8, online: bool) -> Result<(), TargetError> {
        let _ = (sch, mask, online);
        Err(TargetError::new(
            TargetErrorKind::Unavailable,
            "this backend cannot inject path events",
        ))
    }

    /// Makes the device on `sch` present unsolicited attention status.
    fn attention(&self, sch: SubchannelId) -> Result<(), TargetError> {
        let _ = sch;
        Err(TargetError::new(
            TargetErrorKind::Unavailable,
            "this backend cannot inject attention",
        ))
    }
}

/// The [`TargetErrorKind`] of a css-core or backend error's shared kind.
fn target_kind(kind: ErrorKind) -> TargetErrorKind {
    match kind {
        ErrorKind::NoDevice => TargetErrorKind::NoDevice,
        ErrorKind::Busy | ErrorKind::Again | ErrorKind::AlreadyOpen => TargetErrorKind::Busy,
        ErrorKind::Unsupported => TargetErrorKind::Unavailable,
        ErrorKind::Closed => TargetErrorKind::Gone,
        ErrorKind::Timeout => TargetErrorKind::Timeout,
        ErrorKind::PermissionDenied => TargetErrorKind::PermissionDenied,
        _ => TargetErrorKind::Other,
    }
}

pub(crate) fn target_error(e: &CssError) -> TargetError {
    let kind = match e {
        CssError::Translate { .. } => TargetErrorKind::Rejected,
        e => target_kind(e.kind()),
    };
    let mut message = e.to_string();
    if let Some(pc) = e.program_check() {
        message.push_str(&format!(
            " (errno {}; a channel subsystem would end this program with {pc})",
            e.errno()
        ));
    }
    TargetError::new(kind, message)
}

#[cfg(any(feature = "sim", feature = "vfio"))]
pub(crate) fn backend_error(e: &css_core::BackendError) -> TargetError {
    TargetError::new(target_kind(e.kind), e.to_string())
}

/// A channel subsystem served by `B` through css-core, with the guest memory its programs
/// run from.
pub struct Target<B: Backend> {
    name: &'static str,
    mem: Arc<GuestMemoryMmap>,
    css: Css<B, Translator>,
}

impl<B: Backend> Target<B> {
    /// Wraps `backend`, which already knows the guest memory `mem`; `name` is what the
    /// output calls it.
    pub fn new(
        name: &'static str,
        backend: Arc<B>,
        mem: Arc<GuestMemoryMmap>,
    ) -> Result<Self, TargetError> {
        let css = Css::new(backend).map_err(|e| target_error(&e))?;
        Ok(Self { name, mem, css })
    }

    /// The css-core channel subsystem.
    pub fn css(&self) -> &Css<B, Translator> {
        &self.css
    }

    /// A short name for the output (`"simulated"`, `"vfio"`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The guest memory programs run from (the backend maps it once, as a VMM maps guest RAM).
    pub fn memory(&self) -> &Arc<GuestMemoryMmap> {
        &self.mem
    }

    /// Every subchannel with its current SCHIB.
    pub async fn probe(&self) -> Result<Vec<(SubchannelId, Schib)>, TargetError> {
        let ids = self.css.probe().await.map_err(|e| target_error(&e))?;
        let mut out = Vec::with_capacity(ids.len());
        for sch in ids {
            let schib = match self.css.backend().store_schib(sch).await {
                Ok(s) => s,
                Err(_) => self.css.cached_schib(sch).map_err(|e| target_error(&e))?,
            };
            out.push((sch, schib));
        }
        Ok(out)
    }

    /// Starts the guest program `orb` (found in [`Self::memory`]) on `sch` and waits for
    /// its final status, at most `timeout`.
    pub async fn run(
        &self,
        sch: SubchannelId,
        orb: &Orb,
        timeout: Duration,
    ) -> Result<Completion, TargetError> {
        let mem: &GuestMemoryMmap = &self.mem;
        let sub = self.css.open(sch).await.map_err(|e| target_error(&e))?;
        let mut events = sub.events();
        let start = tokio::time::Instant::now();
        let result = tokio::time::timeout(timeout, sub.submit(orb, mem)).await;
        let elapsed = start.elapsed();
        let mut intermediate = Vec::new();
        while let Ok(ev) = events.try_recv() {
            if let SubchannelEvent::Status(irb) = ev {
                intermediate.push(irb);
            }
        }
        let outcome = match result {
            Ok(Ok(done)) => Ok(Completion {
                irb: done.irb,
                intermediate,
                elapsed,
            }),
            Ok(Err(e)) => Err(target_error(&e)),
            Err(_) => {
                // Stop the program before giving up on it; the close below quiesces too.
                let _ = sub.clear().await;
                Err(TargetError::new(
                    TargetErrorKind::Timeout,
                    format!("{sch}: no final status within {} ms", timeout.as_millis()),
                ))
            }
        };
        if let Err(e) = sub.close().await {
            tracing::warn!(%sch, error = %e, "close after run failed");
        }
        outcome
    }

    /// Starts delivering interruptions and channel reports of every subchannel to the
    /// returned receiver.
    pub async fn watch(&self) -> Result<mpsc::UnboundedReceiver<WatchEvent>, TargetError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut reports = self.css.subscribe_reports();
        let tx_reports = tx.clone();
        tokio::spawn(async move {
            while let Some(crw) = reports.recv().await {
                if tx_reports.send(WatchEvent::ChannelReport(crw)).is_err() {
                    break;
                }
            }
        });
        // Open every subchannel so its unsolicited status reaches us.
        for sch in self.css.probe().await.map_err(|e| target_error(&e))? {
            let sub = match self.css.open(sch).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(WatchEvent::Notice {
                        sch: Some(sch),
                        what: format!("not watched: {e}"),
                    });
                    continue;
                }
            };
            let mut events = sub.events();
            let tx = tx.clone();
            tokio::spawn(async move {
                // `sub` lives as long as the task: the subchannel stays open while watched.
                let _open = sub;
                while let Some(ev) = events.recv().await {
                    let out = match ev {
                        SubchannelEvent::Status(irb) => WatchEvent::Interrupt { sch, irb },
                        // Channel reports also arrive through `subscribe_reports`.
                        SubchannelEvent::ChannelReport(_) => continue,
                        SubchannelEvent::SchibRefreshed(s) => WatchEvent::Notice {
                            sch: Some(sch),
                            what: format!(
                                "SCHIB refreshed: pim={:02x} pam={:02x} pom={:02x} lpm={:02x}",
                                s.pmcw.pim, s.pmcw.pam, s.pmcw.pom, s.pmcw.lpm
                            ),
                        },
                        SubchannelEvent::NotOperational => WatchEvent::Notice {
                            sch: Some(sch),
                            what: "device not operational".into(),
                        },
                        SubchannelEvent::ReleaseRequested => WatchEvent::Notice {
                            sch: Some(sch),
                            what: "release requested".into(),
                        },
                        SubchannelEvent::Removed => WatchEvent::Notice {
                            sch: Some(sch),
                            what: "subchannel removed".into(),
                        },
                        other => WatchEvent::Notice {
                            sch: Some(sch),
                            what: format!("{other:?}"),
                        },
                    };
                    if tx.send(out).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(rx)
    }

    /// Varies off and on again every path that uses `chpid` (the simulator, [`Controls`]).
    pub async fn inject_path_event(&self, chpid: u8) -> Result<(), TargetError>
    where
        B: Controls,
    {
        let mut affected = Vec::new();
        for (sch, schib) in self.probe().await? {
            let p = &schib.pmcw;
            let mask = (0..8)
                .filter(|&i| p.pim & (0x80 >> i) != 0 && p.chpid[i] == chpid)
                .fold(0u8, |m, i| m | (0x80 >> i));
            if mask != 0 {
                affected.push((sch, mask));
            }
        }
        let hit = !affected.is_empty();
        for online in [false, true] {
            if online {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            for &(sch, mask) in &affected {
                self.css.backend().vary_paths(sch, mask, online)?;
            }
        }
        if !hit {
            return Err(TargetError::new(
                TargetErrorKind::NoDevice,
                format!("no subchannel uses CHPID {chpid:02x}"),
            ));
        }
        Ok(())
    }

    /// Makes the device on `sch` present unsolicited attention status (the simulator,
    /// [`Controls`]).
    pub async fn inject_attention(&self, sch: SubchannelId) -> Result<(), TargetError>
    where
        B: Controls,
    {
        self.css.backend().attention(sch)
    }
}
