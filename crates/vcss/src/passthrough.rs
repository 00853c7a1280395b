// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Passed-through subchannels: a virtual subchannel whose device is a host subchannel, driven
//! through css-core's [`Subchannel`] over any [`Backend`] (vfio-ccw on s390x, mock-backend
//! anywhere), as QEMU's vfio-ccw device is (vcss-reference §6.2).
//!
//! - [`PassthroughHost`] owns the host channel subsystem (css-core [`Css`]), the guest memory
//!   and the channel of [`HostEvent`]s to the VMM. [`PassthroughHost::attach`] opens a host
//!   subchannel and returns the [`Passthrough`] device with the guest's device number
//!   ([`DevnoMapping`]: keep the host's or give another, `fe.0.xxxx`) and the host's paths.
//! - The device answers [`Outcome::InProgress`]: css-core translates the guest's channel
//!   program (as vfio-ccw does) and starts it on the host; when it ends, a
//!   [`HostEvent::Ended`] reaches the VMM, which applies it with [`Vcss::host_event`] (that
//!   calls [`Vcss::complete`]'s path and raises the guest's interruption).
//! - The guest's MSCH acts on the virtual PMCW only (ISC, intparm, enable, LPM, MP stay
//!   virtual; the host subchannel is enabled once, by the attach). The guest's ORB goes to the
//!   host as written, LPM included (Linux puts `lpm & sch->lpm` there).
//! - Host path changes are merged into the guest's PMCW ([`HostEvent::Paths`]: PAM within
//!   PIM, POM, PNOM, LPUM — the fields QEMU refreshes on every STSCH; PIM and CHPIDs stay as
//!   attached). With no path left, the guest's next start gets cc 3 (no path its ORB allows is
//!   available); a host start that finds none ends with deferred cc 3.
//! - Host channel reports are forwarded ([`HostEvent::Report`]): channel-path reports
//!   (RSC 4) verbatim when the guest has that CHPID (the guest sees the host CHPIDs, as under
//!   QEMU); subchannel reports (RSC 3) with the host subchannel number translated to the
//!   guest's — QEMU forwards the host number untranslated, which names the wrong subchannel
//!   in the guest, so vcss translates and drops reports of subchannels not passed through. A
//!   chained pair (host MSS) becomes one unchained CRW: the guest has no MSS. Other sources
//!   (0xB CSS events, monitoring) concern the host's CSS, not the guest's, and are dropped.
//! - A host device that goes away ([`HostEvent::Gone`]: not operational, removed, release
//!   requested) is unplugged as QEMU unplugs: DNV and E cleared, its interruption withdrawn,
//!   a subchannel report (RSC 3, ERC 4) queued; an I/O in flight is lost with it.
//!
//! Limits (each a typed answer, never a made-up status): HALT and CLEAR complete in vcss at
//! once, as for a device model, and are sent to the host after (the halted program's final
//! status from the host is dropped, and so is the status of the host's halt or clear itself
//! when the program had already ended there; the SCSW's CCW address is 0); RESUME is refused with
//! program check, because the start never suspends (ccw-translate rejects suspend flags, as
//! vfio-ccw does); intermediate status (PCI) of a running program is not presented.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ccw_types::{
    CommandOrb, Crw, DeviceStatus, FunctionControl, SubchannelId, SubchannelStatus, crw,
};
use css_core::{Backend, ConditionCode, Css, CssError, IoCompletion, Subchannel, SubchannelEvent};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vm_memory::GuestMemory;

use crate::Vcss;
use crate::css::Paths;
use crate::device::{Device, Ending, GuestIo, Outcome, SenseData};

/// The guest's device number for a passed-through device (vcss-reference §6.1, §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevnoMapping {
    /// Keep the host's device number.
    Host,
    /// Appear with this device number (QEMU's `devno=fe.0.xxxx`: the default CSS image, seen
    /// by a guest without MCSS-E as 0.0.xxxx).
    Virtual(u16),
}

impl std::fmt::Display for DevnoMapping {
    /// `host`, or QEMU's notation `fe.0.xxxx` (what [`DevnoMapping::from_str`] reads back).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Host => f.write_str("host"),
            Self::Virtual(d) => write!(f, "fe.0.{d:04x}"),
        }
    }
}

/// A device-number mapping that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad guest device number `{0}`: expected `host`, fe.0.xxxx or 0.0.xxxx (vcss models subchannel set 0 of the default image only)"
)]
pub struct BadDevno(pub String);

impl FromStr for DevnoMapping {
    type Err = BadDevno;
    /// `host`, `fe.0.xxxx` (QEMU's notation for the default image) or `0.0.xxxx`.
    fn from_str(s: &str) -> Result<Self, BadDevno> {
        if s.eq_ignore_ascii_case("host") {
            return Ok(Self::Host);
        }
        let lower = s.to_ascii_lowercase();
        let hex = lower
            .strip_prefix("fe.0.")
            .or_else(|| lower.strip_prefix("0.0."))
            .filter(|h| !h.is_empty() && h.len() <= 4 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| BadDevno(s.to_string()))?;
        u16::from_str_radix(hex, 16)
            .map(Self::Virtual)
            .map_err(|_| BadDevno(s.to_string()))
    }
}

/// What the host side tells the VMM; apply each with [`Vcss::host_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostEvent {
    /// The host ended the start function of guest subchannel `sch_no`.
    Ended {
        /// The guest subchannel.
        sch_no: u16,
        /// How it ended.
        outcome: Outcome,
    },
    /// The host subchannel's path masks changed.
    Paths {
        /// The guest subchannel.
        sch_no: u16,
        /// Host path-available mask.
        pam: u8,
        /// Host path-operational mask.
        pom: u8,
        /// Host path-not-operational mask.
        pnom: u8,
        /// Host last-path-used mask.
        lpum: u8,
    },
    /// A host channel report, already translated for the guest.
    Report(Crw),
    /// The host device presented status no program solicited (e.g. attention).
    Unsolicited {
        /// The guest subchannel.
        sch_no: u16,
        /// Its device status.
        dstat: DeviceStatus,
    },
    /// The host device is gone.
    Gone {
        /// The guest subchannel.
        sch_no: u16,
    },
}

/// Why a host subchannel could not be attached.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// css-core could not find or open it.
    #[error("host subchannel {sch}: {source}")]
    Host {
        /// The host subchannel.
        sch: SubchannelId,
        /// css-core's error.
        #[source]
        source: CssError,
    },
    /// The host subchannel has no valid device number.
    #[error("host subchannel {0} has no device (DNV = 0)")]
    NoDevice(SubchannelId),
    /// The guest subchannel number is already passed through.
    #[error("guest subchannel 0.0.{0:04x} is already attached")]
    GuestTaken(u16),
}

/// Host subchannel number -> guest subchannel number, and the CHPIDs the guest has.
#[derive(Debug, Default)]
struct Mapping {
    sch: HashMap<SubchannelId, u16>,
    chpids: BTreeSet<u8>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The host side of passthrough: css-core over `B`, the guest memory `M` the guest's channel
/// programs live in, and the runtime the host I/O runs on.
pub struct PassthroughHost<B: Backend, M> {
    css: Arc<Css<B>>,
    mem: Arc<M>,
    rt: Handle,
    tx: mpsc::UnboundedSender<HostEvent>,
    map: Arc<Mutex<Mapping>>,
    reports: JoinHandle<()>,
}

impl<B: Backend, M> std::fmt::Debug for PassthroughHost<B, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassthroughHost")
            .field("map", &*lock(&self.map))
            .finish_non_exhaustive()
    }
}

impl<B: Backend, M> Drop for PassthroughHost<B, M> {
    fn drop(&mut self) {
        self.reports.abort();
    }
}

impl<B, M> PassthroughHost<B, M>
where
    B: Backend + 'static,
    M: GuestMemory + Send + Sync + 'static,
{
    /// Takes the host channel subsystem `css`, the guest memory (the same the VMM gives vcss's
    /// handlers) and the runtime `rt` (the one `css` was made in). Returns the receiver of
    /// [`HostEvent`]s the VMM applies with [`Vcss::host_event`].
    pub fn new(css: Css<B>, mem: Arc<M>, rt: Handle) -> (Self, mpsc::UnboundedReceiver<HostEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let css = Arc::new(css);
        let map = Arc::new(Mutex::new(Mapping::default()));
        let mut crws = css.subscribe_reports();
        let (map2, tx2) = (map.clone(), tx.clone());
        let reports = rt.spawn(async move {
            let mut first: Option<Crw> = None;
            while let Some(c) = crws.recv().await {
                let report = match first.take() {
                    Some(f) => translate(&lock(&map2), f, Some(c)),
                    None if c.chained() => {
                        first = Some(c);
                        continue;
                    }
                    None => translate(&lock(&map2), c, None),
                };
                if let Some(r) = report {
                    if tx2.send(HostEvent::Report(r)).is_err() {
                        break;
                    }
                }
            }
        });
        (
            Self {
                css,
                mem,
                rt,
                tx,
                map,
                reports,
            },
            rx,
        )
    }

    /// The host channel subsystem.
    pub fn css(&self) -> &Css<B> {
        &self.css
    }

    /// Closes every attached host subchannel (css-core quiesces a busy one and releases its
    /// program): the VMM's shutdown. The devices in vcss answer later starts with deferred
    /// cc 3. Returns the first error after trying all.
    pub async fn close(&self) -> Result<(), CssError> {
        let hosts: Vec<SubchannelId> = lock(&self.map).sch.keys().copied().collect();
        let mut first = None;
        for h in hosts {
            if let Err(e) = self.css.close(h).await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Opens host subchannel `host` for guest subchannel 0.0.`guest_sch_no` with device number
    /// `devno`. Returns the device and what [`Vcss::add_subchannel_paths`] needs; the caller
    /// declares the host CHPIDs with their types ([`Vcss::add_chpid`]) first.
    pub async fn attach(
        &self,
        host: SubchannelId,
        guest_sch_no: u16,
        devno: DevnoMapping,
    ) -> Result<Attached<B, M>, AttachError> {
        let err = |source| AttachError::Host { sch: host, source };
        if lock(&self.map).sch.values().any(|&g| g == guest_sch_no) {
            return Err(AttachError::GuestTaken(guest_sch_no));
        }
        self.css.probe().await.map_err(err)?;
        let schib = self.css.cached_schib(host).map_err(err)?;
        if !schib.pmcw.flags.dnv() {
            return Err(AttachError::NoDevice(host));
        }
        let sub = Arc::new(self.css.open(host).await.map_err(err)?);
        let schib = sub.schib().await.map_err(err)?;
        let paths = Paths::of(&schib);
        {
            let mut m = lock(&self.map);
            m.sch.insert(host, guest_sch_no);
            for i in 0..8 {
                if paths.pim & (0x80 >> i) != 0 {
                    m.chpids.insert(paths.chpids[i]);
                }
            }
        }
        let events = self.rt.spawn(host_events(
            sub.clone(),
            sub.events(),
            guest_sch_no,
            self.tx.clone(),
        ));
        let devno = match devno {
            DevnoMapping::Host => schib.pmcw.flags.devno(),
            DevnoMapping::Virtual(d) => d,
        };
        Ok(Attached {
            devno,
            paths,
            device: Passthrough {
                sub,
                mem: self.mem.clone(),
                rt: self.rt.clone(),
                tx: self.tx.clone(),
                sch_no: guest_sch_no,
                generation: Arc::new(AtomicU64::new(0)),
                last: None,
                events,
            },
        })
    }
}

/// A host channel report as the guest is to see it (`None`: not the guest's concern).
fn translate(map: &Mapping, first: Crw, second: Option<Crw>) -> Option<Crw> {
    match first.rsc() {
        crw::rsc::CHANNEL_PATH => {
            let chpid = u8::try_from(first.rsid()).ok()?;
            map.chpids
                .contains(&chpid)
                .then_some(first.with_chained(false))
        }
        crw::rsc::SUBCHANNEL => {
            let (cssid, ssid) = second.map_or((0, 0), |s| (s.chained_cssid(), s.chained_ssid()));
            let host = SubchannelId::new(cssid, ssid, first.rsid());
            let guest = *map.sch.get(&host)?;
            Some(first.with_chained(false).with_rsid(guest))
        }
        _ => None,
    }
}

/// Watches one host subchannel's events for path changes, unsolicited status and removal.
async fn host_events<B: Backend + 'static>(
    sub: Arc<Subchannel<B>>,
    mut events: mpsc::UnboundedReceiver<SubchannelEvent>,
    sch_no: u16,
    tx: mpsc::UnboundedSender<HostEvent>,
) {
    while let Some(ev) = events.recv().await {
        let out = match ev {
            // The status of a halt or clear: only this device issues those on its host
            // subchannel, for a guest halt or clear that vcss ended at once, so it is never
            // the guest's. It comes as an event when the halt or clear found no program
            // running on the host (it had ended before the halt arrived there).
            SubchannelEvent::Status(irb)
                if irb
                    .scsw
                    .ctrl
                    .fc()
                    .intersects(FunctionControl::HALT | FunctionControl::CLEAR) =>
            {
                continue;
            }
            SubchannelEvent::Status(irb) => HostEvent::Unsolicited {
                sch_no,
                dstat: irb.scsw.device_status(),
            },
            SubchannelEvent::ChannelReport(_) | SubchannelEvent::SchibRefreshed(_) => {
                match sub.schib().await {
                    Ok(s) => HostEvent::Paths {
                        sch_no,
                        pam: s.pmcw.pam,
                        pom: s.pmcw.pom,
                        pnom: s.pmcw.pnom,
                        lpum: s.pmcw.lpum,
                    },
                    Err(_) => HostEvent::Gone { sch_no },
                }
            }
            SubchannelEvent::NotOperational
            | SubchannelEvent::Removed
            | SubchannelEvent::ReleaseRequested => HostEvent::Gone { sch_no },
            _ => continue,
        };
        let gone = matches!(out, HostEvent::Gone { .. });
        if tx.send(out).is_err() || gone {
            break;
        }
    }
}

/// An attached host subchannel, ready for [`Vcss::add_subchannel_paths`].
#[derive(Debug)]
pub struct Attached<B: Backend + 'static, M: GuestMemory + Send + Sync + 'static> {
    /// The guest's device number.
    pub devno: u16,
    /// The host's paths.
    pub paths: Paths,
    /// The device.
    pub device: Passthrough<B, M>,
}

/// A [`Device`] that is a host subchannel.
pub struct Passthrough<B: Backend + 'static, M> {
    sub: Arc<Subchannel<B>>,
    mem: Arc<M>,
    rt: Handle,
    tx: mpsc::UnboundedSender<HostEvent>,
    sch_no: u16,
    /// Bumped by each start, halt and clear: an ending that finds another value belongs to a
    /// function the guest already saw end, and is dropped.
    generation: Arc<AtomicU64>,
    /// The last start's task: the next start waits for it, so that one program at a time
    /// reaches the host.
    last: Option<JoinHandle<()>>,
    events: JoinHandle<()>,
}

impl<B: Backend + 'static, M> std::fmt::Debug for Passthrough<B, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passthrough")
            .field("host", &self.sub.id())
            .field("guest", &self.sch_no)
            .finish_non_exhaustive()
    }
}

impl<B: Backend + 'static, M> Drop for Passthrough<B, M> {
    fn drop(&mut self) {
        self.events.abort();
    }
}

/// What the guest sees of a host completion or failure.
fn outcome_of(r: Result<IoCompletion, CssError>, cpa: u32) -> Outcome {
    match r {
        Ok(done) => {
            let scsw = &done.irb.scsw;
            if scsw.ctrl.deferred_cc() == 3 {
                return Outcome::NoPath {
                    pnom: if scsw.ctrl.path_not_operational() {
                        0xFF
                    } else {
                        0
                    },
                };
            }
            let sense = done.irb.concurrent_sense().map(|s| {
                let mut bytes = [0u8; 32];
                bytes[..s.len()].copy_from_slice(s);
                SenseData {
                    bytes,
                    len: s.len() as u8,
                }
            });
            Outcome::Ended(Ending {
                dstat: scsw.device_status(),
                cstat: scsw.subchannel_status(),
                cpa: scsw.cpa.get(),
                count: scsw.count.get(),
                sense,
            })
        }
        Err(CssError::Translate {
            program_check: Some(status),
            ..
        }) => Outcome::Ended(Ending {
            cstat: status,
            cpa,
            ..Ending::default()
        }),
        Err(CssError::Condition {
            cc: ConditionCode::Cc3,
            ..
        })
        | Err(CssError::Gone(_)) => Outcome::NoPath { pnom: 0 },
        // vfio-ccw's "other errors" of a start: QEMU presents unit exception (§6.2).
        Err(_) => Outcome::Ended(Ending {
            dstat: DeviceStatus::CHANNEL_END
                | DeviceStatus::DEVICE_END
                | DeviceStatus::UNIT_EXCEPTION,
            cpa,
            ..Ending::default()
        }),
    }
}

impl<B, M> Device for Passthrough<B, M>
where
    B: Backend + 'static,
    M: GuestMemory + Send + Sync + 'static,
{
    /// Starts the guest's program on the host (css-core translates it from `self`'s guest
    /// memory, which is the memory vcss passes as `_mem`); the ending comes as
    /// [`HostEvent::Ended`].
    fn start(&mut self, _mem: &dyn GuestIo, orb: &CommandOrb, _path: u8) -> Outcome {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let orb_bytes = orb.emit();
        let cpa = orb.cpa;
        let (sub, mem, tx, gen_now, sch_no) = (
            self.sub.clone(),
            self.mem.clone(),
            self.tx.clone(),
            self.generation.clone(),
            self.sch_no,
        );
        let prev = self.last.take();
        self.last = Some(self.rt.spawn(async move {
            if let Some(p) = prev {
                let _ = p.await;
            }
            let r = sub.submit(&orb_bytes, &*mem).await;
            if gen_now.load(Ordering::SeqCst) == generation {
                let outcome = outcome_of(r, cpa.wrapping_add(8));
                let _ = tx.send(HostEvent::Ended { sch_no, outcome });
            }
        }));
        Outcome::InProgress
    }

    /// Never reached for a program the host accepted (no suspend); a program check.
    fn resume(&mut self, _mem: &dyn GuestIo, cpa: u32) -> Outcome {
        Outcome::Ended(Ending {
            cstat: SubchannelStatus::PROGRAM_CHECK,
            cpa,
            ..Ending::default()
        })
    }

    fn halt(&mut self) -> u32 {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let sub = self.sub.clone();
        self.rt.spawn(async move {
            let _ = sub.halt().await;
        });
        0
    }

    fn clear(&mut self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let sub = self.sub.clone();
        self.rt.spawn(async move {
            let _ = sub.clear().await;
        });
    }
}

impl Vcss {
    /// Applies what the host side of a passed-through subchannel reported (see
    /// [`HostEvent`]).
    pub fn host_event(&mut self, ev: HostEvent) {
        match ev {
            HostEvent::Ended { sch_no, outcome } => self.apply_if_active(sch_no, outcome),
            HostEvent::Paths {
                sch_no,
                pam,
                pom,
                pnom,
                lpum,
            } => {
                if let Some(s) = self.subchannels.get_mut(&sch_no) {
                    let p = &mut s.state.schib.pmcw;
                    p.pam = pam & p.pim;
                    p.pom = pom;
                    p.pnom = pnom;
                    p.lpum = lpum;
                }
            }
            HostEvent::Report(crw) => self.queue_crw(crw),
            HostEvent::Unsolicited { sch_no, dstat } => {
                self.unsolicited(sch_no, dstat);
            }
            HostEvent::Gone { sch_no } => {
                let Some(s) = self.subchannels.get_mut(&sch_no) else {
                    return;
                };
                let f = &mut s.state.schib.pmcw.flags;
                f.set_dnv(false);
                f.set_enabled(false);
                s.state.schib.pmcw.pam = 0;
                s.state.schib.pmcw.pom = 0;
                self.withdraw(sch_no);
                self.queue_crw(Crw::report(crw::rsc::SUBCHANNEL, crw::erc::IPI, sch_no));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devno_mappings_parse() {
        assert_eq!("host".parse(), Ok(DevnoMapping::Host));
        assert_eq!("fe.0.1234".parse(), Ok(DevnoMapping::Virtual(0x1234)));
        assert_eq!("FE.0.00aB".parse(), Ok(DevnoMapping::Virtual(0xAB)));
        assert_eq!("0.0.0005".parse(), Ok(DevnoMapping::Virtual(5)));
        for m in [DevnoMapping::Host, DevnoMapping::Virtual(0x1234)] {
            assert_eq!(m.to_string().parse(), Ok(m), "{m}");
        }
        assert_eq!(DevnoMapping::Virtual(5).to_string(), "fe.0.0005");
        for bad in [
            "fe.1.1234",
            "0.2.0005",
            "fe.0.",
            "fe.0.12345",
            "1234",
            "fe.0.xyz",
        ] {
            assert_eq!(
                bad.parse::<DevnoMapping>(),
                Err(BadDevno(bad.into())),
                "{bad}"
            );
        }
    }

    fn completion(f: impl FnOnce(&mut ccw_types::Irb)) -> Result<IoCompletion, CssError> {
        let mut irb = ccw_types::Irb::from_bytes([0; 96]);
        f(&mut irb);
        Ok(IoCompletion { intparm: 1, irb })
    }

    #[test]
    fn host_endings_become_the_guests() {
        let sch = SubchannelId::new(0, 0, 1);
        // A clean ending: status, CCW address and residual count as the host stored them.
        let r = completion(|irb| {
            irb.scsw.dstat = 0x0C;
            irb.scsw.cpa = 0x1008.into();
            irb.scsw.count = 3.into();
        });
        let Outcome::Ended(e) = outcome_of(r, 0) else {
            panic!()
        };
        assert_eq!(
            (e.dstat.bits(), e.cstat.bits(), e.cpa, e.count),
            (0x0C, 0, 0x1008, 3)
        );
        assert_eq!(e.sense, None);
        // Unit check with concurrent sense: the sense bytes go along.
        let r = completion(|irb| {
            irb.scsw.dstat = 0x0E;
            irb.esw.erw.set_concurrent_sense(true);
            irb.esw.erw.set_scnt(24);
            irb.ecw[0] = 0x80;
        });
        let Outcome::Ended(e) = outcome_of(r, 0) else {
            panic!()
        };
        let sense = e.sense.unwrap();
        assert_eq!((sense.len, sense.bytes[0]), (24, 0x80));
        // Deferred cc 3 on the host: no path for the guest either.
        let r = completion(|irb| {
            irb.scsw.ctrl.set_deferred_cc(3);
            irb.scsw.ctrl.set_path_not_operational(true);
        });
        assert_eq!(outcome_of(r, 0), Outcome::NoPath { pnom: 0xFF });
        // The host start found no path, or the device is gone.
        let cc3 = CssError::Condition {
            sch,
            op: "start",
            cc: ConditionCode::Cc3,
            errno: css_core::Errno::NoDevice,
        };
        assert_eq!(outcome_of(Err(cc3), 0x2008), Outcome::NoPath { pnom: 0 });
        assert_eq!(
            outcome_of(Err(CssError::Gone(sch)), 0x2008),
            Outcome::NoPath { pnom: 0 }
        );
        // Busy on the host (cc 2): unit exception, as QEMU presents vfio-ccw's other errors.
        let busy = CssError::Condition {
            sch,
            op: "start",
            cc: ConditionCode::Cc2,
            errno: css_core::Errno::Busy,
        };
        let Outcome::Ended(e) = outcome_of(Err(busy), 0x2008) else {
            panic!()
        };
        assert_eq!((e.dstat.bits(), e.cpa), (0x0D, 0x2008));
        // A program the translator refused: the program check a channel would present.
        let refused = CssError::Translate {
            sch,
            errno: css_core::Errno::Invalid,
            kind: css_core::CssErrorKind::InvalidProgram,
            program_check: Some(SubchannelStatus::PROGRAM_CHECK),
            source: "bad CCW".into(),
        };
        let Outcome::Ended(e) = outcome_of(Err(refused), 0x2008) else {
            panic!()
        };
        assert_eq!(
            (e.dstat.bits(), e.cstat, e.cpa),
            (0, SubchannelStatus::PROGRAM_CHECK, 0x2008)
        );
    }

    #[test]
    fn reports_are_translated_for_the_guest() {
        let mut m = Mapping::default();
        m.sch.insert(SubchannelId::new(0, 0, 0x0313), 7);
        m.chpids.insert(0x1A);
        // Channel path of the guest: verbatim (vcss-reference §7.7: 04 06 00 1A).
        let off = Crw::report(crw::rsc::CHANNEL_PATH, crw::erc::PERRN, 0x1A);
        assert_eq!(translate(&m, off, None), Some(off));
        // Another path: not the guest's.
        let other = Crw::report(crw::rsc::CHANNEL_PATH, crw::erc::PERRN, 0x1B);
        assert_eq!(translate(&m, other, None), None);
        // Host subchannel 0.0.0313 -> guest 0.0.0007, unchained.
        let sch = Crw::report(crw::rsc::SUBCHANNEL, crw::erc::PMOD, 0x0313);
        assert_eq!(
            translate(&m, sch, None).map(|c| c.into_bytes()),
            Some([0x03, 0x08, 0x00, 0x07])
        );
        let pair =
            ccw_types::CrwReport::subchannel(crw::erc::PMOD, SubchannelId::new(0, 0, 0x0313), true);
        assert_eq!(
            translate(&m, pair.first, pair.second).map(|c| c.into_bytes()),
            Some([0x03, 0x08, 0x00, 0x07])
        );
        // The same number in subchannel set 1 is another subchannel.
        let pair1 =
            ccw_types::CrwReport::subchannel(crw::erc::PMOD, SubchannelId::new(0, 1, 0x0313), true);
        assert_eq!(translate(&m, pair1.first, pair1.second), None);
        // A CSS event report of the host.
        assert_eq!(translate(&m, Crw::report(crw::rsc::CSS, 0, 0), None), None);
    }
}
