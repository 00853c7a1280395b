// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The [`Subsystem`] over css-core: any [`Backend`] driven through `Css`/`Subchannel`, with
//! ccw-translate's [`Translator`] (css-core's default).

use std::sync::Arc;
use std::time::Duration;

use ccw_translate::Translator;
use ccw_types::{Orb, Schib, SubchannelId};
use css_core::{
    Backend, BackendError, BackendErrorKind, ConditionCode, Css, CssError, CssErrorKind,
    SubchannelEvent,
};
use tokio::sync::mpsc;
use vm_memory::GuestMemoryMmap;

use crate::target::{Completion, Subsystem, TargetError, TargetErrorKind, WatchEvent};

fn target_error(e: &CssError) -> TargetError {
    let kind = match e.kind() {
        _ if matches!(e, CssError::Translate { .. }) => TargetErrorKind::Rejected,
        CssErrorKind::NoDevice => TargetErrorKind::NoDevice,
        CssErrorKind::Busy | CssErrorKind::Again | CssErrorKind::AlreadyOpen => {
            TargetErrorKind::Busy
        }
        CssErrorKind::Unsupported => TargetErrorKind::Unavailable,
        CssErrorKind::Closed => TargetErrorKind::Gone,
        CssErrorKind::Timeout => TargetErrorKind::Timeout,
        CssErrorKind::PermissionDenied => TargetErrorKind::PermissionDenied,
        _ => TargetErrorKind::Other,
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

/// A channel subsystem served by `B` through css-core.
pub struct CssTarget<B: Backend> {
    name: &'static str,
    mem: Arc<GuestMemoryMmap>,
    css: Css<B, Translator>,
    /// What `watch` can make happen (the simulator's hooks), if the backend has any.
    hooks: Option<Hooks<B>>,
}

/// How a backend makes things happen that `watch` shows.
pub struct Hooks<B> {
    /// Varies the paths `mask` of a subchannel off (`false`) or on (`true`).
    pub vary_paths: fn(&B, SubchannelId, u8, bool) -> Result<(), BackendError>,
    /// The device presents unsolicited attention status.
    pub attention: fn(&B, SubchannelId) -> Result<ConditionCode, BackendError>,
}

impl<B: Backend> CssTarget<B> {
    /// Wraps `backend`, which already knows the guest memory `mem`; `name` is what the
    /// output calls it.
    pub fn new(
        name: &'static str,
        backend: Arc<B>,
        mem: Arc<GuestMemoryMmap>,
        hooks: Option<Hooks<B>>,
    ) -> Result<Self, TargetError> {
        let css = Css::new(backend).map_err(|e| target_error(&e))?;
        Ok(Self {
            name,
            mem,
            css,
            hooks,
        })
    }

    /// The css-core channel subsystem.
    pub fn css(&self) -> &Css<B, Translator> {
        &self.css
    }
}

impl<B: Backend> CssTarget<B> {
    fn hooks(&self, what: &str) -> Result<&Hooks<B>, TargetError> {
        self.hooks.as_ref().ok_or_else(|| {
            TargetError::new(
                TargetErrorKind::Unavailable,
                format!("the {} backend cannot inject {what}", self.name),
            )
        })
    }
}

impl<B: Backend> Subsystem for CssTarget<B> {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn probe(&self) -> Result<Vec<(SubchannelId, Schib)>, TargetError> {
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

    fn memory(&self) -> &Arc<GuestMemoryMmap> {
        &self.mem
    }

    async fn run(
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

    async fn watch(&self) -> Result<mpsc::UnboundedReceiver<WatchEvent>, TargetError> {
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

    async fn inject_path_event(&self, chpid: u8) -> Result<(), TargetError> {
        let hooks = self.hooks("path events")?;
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
                (hooks.vary_paths)(self.css.backend(), sch, mask, online)
                    .map_err(|e| backend_error(&e))?;
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

    async fn inject_attention(&self, sch: SubchannelId) -> Result<(), TargetError> {
        let hooks = self.hooks("attention")?;
        match (hooks.attention)(self.css.backend(), sch).map_err(|e| backend_error(&e))? {
            ConditionCode::Cc0 => Ok(()),
            cc => Err(TargetError::new(
                TargetErrorKind::Busy,
                format!("{sch}: attention not presented (cc {})", cc.value()),
            )),
        }
    }
}

fn backend_error(e: &BackendError) -> TargetError {
    let kind = match e.kind {
        BackendErrorKind::NoDevice => TargetErrorKind::NoDevice,
        BackendErrorKind::PermissionDenied => TargetErrorKind::PermissionDenied,
        BackendErrorKind::Unsupported => TargetErrorKind::Unavailable,
        BackendErrorKind::Again => TargetErrorKind::Busy,
        _ => TargetErrorKind::Other,
    };
    TargetError::new(kind, e.to_string())
}

/// Opens the vfio-ccw mediated device `mdev` (sysfs path or UUID) and maps `mem` for its
/// channel programs (IOVA = guest address).
pub fn open_vfio(
    mdev: &str,
    mem: Arc<GuestMemoryMmap>,
) -> Result<CssTarget<vfio_backend::VfioBackend>, TargetError> {
    let backend = vfio_backend::VfioBackend::open(mdev).map_err(|e| backend_error(&e))?;
    backend
        .attach_memory(mem.clone())
        .map_err(|e| backend_error(&e))?;
    CssTarget::new("vfio", Arc::new(backend), mem, None)
}

/// The built-in simulated channel subsystem (mock-backend's default: virtio-blk-ccw devno
/// 0005 on 0.0.0000, the test device devno 0006 on 0.0.0001), with `mem` attached.
pub fn simulated(
    mem: Arc<GuestMemoryMmap>,
) -> Result<CssTarget<mock_backend::MockBackend>, TargetError> {
    let backend =
        mock_backend::MockBackend::default_subsystem(&*mem).map_err(|e| backend_error(&e))?;
    let hooks = Hooks {
        vary_paths: |b: &mock_backend::MockBackend, sch, mask, on| b.vary_paths(sch, mask, on),
        attention: |b: &mock_backend::MockBackend, sch| {
            b.unsolicited(sch, ccw_types::DeviceStatus::ATTENTION)
        },
    };
    CssTarget::new("simulated", Arc::new(backend), mem, Some(hooks))
}
