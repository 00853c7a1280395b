// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The virtual channel subsystem: subchannels with their devices, the interruption and CRW
//! queues, and the I/O instruction handlers a VMM calls when KVM exits on one.

use std::collections::{BTreeMap, VecDeque};

use ccw_types::{Crw, DeviceStatus, IoInterruptionCode, Irb, Orb, OrbRepr, Schib, SubchannelId};
use css_core::ConditionCode;

use crate::device::{Device, Ending, GuestIo, Outcome, VirtioNotify};
use crate::irq::{CrwQueue, IrqQueues, Notification, Notifier};
use crate::sch::{self, OperandException, SchState};
use crate::{InstrError, ProgramInterruption, Unsupported};

/// DIAGNOSE 0x500 subcode (GR1) of a virtio-ccw queue notification (`KVM_S390_VIRTIO_CCW_NOTIFY`).
pub const VIRTIO_CCW_NOTIFY: u64 = 3;
/// What [`Vcss::virtio_notify`] answers in GR2 for a notification nobody takes (`-EINVAL`).
pub const EINVAL: i64 = -22;

/// One virtual subchannel: its state and the device behind it.
pub struct VirtualSubchannel {
    /// SCHIB, ESW, ECW and the current ORB's control word.
    pub state: SchState,
    pub(crate) device: Box<dyn Device>,
}

impl std::fmt::Debug for VirtualSubchannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualSubchannel")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The channel paths of a subchannel (PMCW bytes 10-23): what a passed-through subchannel
/// takes from its host SCHIB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paths {
    /// Path-installed mask.
    pub pim: u8,
    /// Path-available mask.
    pub pam: u8,
    /// Path-operational mask.
    pub pom: u8,
    /// The CHPID of each installed path, slot 0 first.
    pub chpids: [u8; 8],
}

impl Paths {
    /// The paths of `schib`'s PMCW.
    pub fn of(schib: &Schib) -> Self {
        let p = &schib.pmcw;
        Self {
            pim: p.pim,
            pam: p.pam,
            pom: p.pom,
            chpids: p.chpid,
        }
    }
}

/// A channel-subsystem event for CHSC store-event-information, notification type 0
/// (vcss-reference §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeiEvent {
    /// Validity flags (byte 9).
    pub vf: u8,
    /// Reporting source (byte 10): 4 = channel path.
    pub rs: u8,
    /// Content code (byte 11): 2 = I/O resource accessibility.
    pub cc: u8,
    /// Full link address (bytes 12-13).
    pub fla: u16,
    /// Reporting-source id (bytes 14-15): the CHPID for rs 4.
    pub rsid: u16,
}

/// The guest's channel subsystem: one CSS image (CSSID 0, the guest's default), subchannel set
/// 0 (multiple-subchannel-set and MCSS-E enablement through CHSC SDA are not implemented, so
/// every other id is "not provided", cc 3).
pub struct Vcss {
    pub(crate) subchannels: BTreeMap<u16, VirtualSubchannel>,
    /// Channel paths: CHPID -> channel-path type (descriptor byte 2, 0x32 for virtual), or
    /// `None` for a path the host could not describe ([`Vcss::add_chpid_undescribed`]).
    pub(crate) chpids: BTreeMap<u8, Option<u8>>,
    irqs: IrqQueues,
    crws: CrwQueue,
    pub(crate) events: VecDeque<SeiEvent>,
    notifier: Option<Notifier>,
}

impl std::fmt::Debug for Vcss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vcss")
            .field("subchannels", &self.subchannels)
            .field("chpids", &self.chpids)
            .field("irqs", &self.irqs)
            .field("crws", &self.crws)
            .finish_non_exhaustive()
    }
}

impl Default for Vcss {
    fn default() -> Self {
        Self::new()
    }
}

fn align(addr: u64, to: u64, what: &'static str) -> Result<(), InstrError> {
    if addr % to != 0 {
        return Err(ProgramInterruption::Specification(what).into());
    }
    Ok(())
}

/// Checks that a store of `len` bytes at `addr` can happen: an addressing exception for storage
/// the guest does not have, a protection exception for storage it may only read.
fn probe(mem: &dyn GuestIo, addr: u64, len: usize) -> Result<(), InstrError> {
    if mem.accessible(addr, len, true) {
        return Ok(());
    }
    if mem.accessible(addr, len, false) {
        return Err(ProgramInterruption::Protection(addr).into());
    }
    Err(ProgramInterruption::Addressing(addr).into())
}

pub(crate) fn store(mem: &dyn GuestIo, addr: u64, data: &[u8]) -> Result<(), InstrError> {
    mem.write_at(addr, data)
        .map_err(|a| ProgramInterruption::Addressing(a).into())
}

pub(crate) fn fetch(mem: &dyn GuestIo, addr: u64, buf: &mut [u8]) -> Result<(), InstrError> {
    mem.read_at(addr, buf)
        .map_err(|a| ProgramInterruption::Addressing(a).into())
}

/// The subchannel-identification word of GR1 (bits 32-63): an operand exception when invalid
/// (s390-io-reference §7.1); `None` when valid but not visible (another CSS image or subchannel
/// set: cc 3).
fn sid(gr1: u64) -> Result<Option<u16>, InstrError> {
    let id = SubchannelId::from_word(gr1 as u32)
        .map_err(|e| ProgramInterruption::Operand(OperandException::Operand(e)))?;
    Ok((id.cssid == 0 && id.ssid == 0).then_some(id.sch_no))
}

impl From<OperandException> for InstrError {
    fn from(e: OperandException) -> Self {
        ProgramInterruption::Operand(e).into()
    }
}

impl Vcss {
    /// An empty channel subsystem with a CRW queue of 256 reports.
    pub fn new() -> Self {
        Self {
            subchannels: BTreeMap::new(),
            chpids: BTreeMap::new(),
            irqs: IrqQueues::default(),
            crws: CrwQueue::default(),
            events: VecDeque::new(),
            notifier: None,
        }
    }

    /// Installs the VMM's hook for interruptions and channel reports.
    pub fn set_notifier(&mut self, notifier: Notifier) {
        self.notifier = Some(notifier);
    }

    /// Replaces the CRW queue (e.g. with another capacity).
    pub fn set_crw_queue(&mut self, q: CrwQueue) {
        self.crws = q;
    }

    /// Declares channel path `chpid` of type `ty` (0x32 for a virtual path, the host's type for
    /// a passed-through one).
    pub fn add_chpid(&mut self, chpid: u8, ty: u8) {
        self.chpids.insert(chpid, Some(ty));
    }

    /// Declares channel path `chpid` of a passed-through subchannel whose description the host
    /// cannot give: the host's own store-channel-path-description failed, so its kernel has no
    /// `/sys/devices/css0/chp0.xx` (Hercules 3.13 implements no CHSC 0x0002). The guest's
    /// subchannels may use it; CHSC store channel-path description answers its descriptor not
    /// valid (flags 0, CHPID filled), which is what the host knows, rather than a made-up type.
    /// QEMU refuses such a device instead (it reads the type from host sysfs at realize).
    pub fn add_chpid_undescribed(&mut self, chpid: u8) {
        self.chpids.insert(chpid, None);
    }

    /// Adds subchannel 0.0.`sch_no` for device number `devno` on `chpid` (path slot 0; PIM =
    /// PAM = LPM = 0x80), disabled, ISC 0, as after a subsystem reset (vcss-reference §3.3).
    /// Returns the device back if the number is taken or the CHPID was not declared.
    pub fn add_subchannel(
        &mut self,
        sch_no: u16,
        devno: u16,
        chpid: u8,
        device: Box<dyn Device>,
    ) -> Result<(), Box<dyn Device>> {
        if self.subchannels.contains_key(&sch_no) || !self.chpids.contains_key(&chpid) {
            return Err(device);
        }
        let mut state = SchState::new(devno);
        state.schib.pmcw.chars.set_concurrent_sense(false);
        state.schib.pmcw.chpid[0] = chpid;
        self.subchannels
            .insert(sch_no, VirtualSubchannel { state, device });
        Ok(())
    }

    /// Adds subchannel 0.0.`sch_no` for device number `devno` with the paths `paths` (a
    /// passed-through subchannel: the host's PIM, PAM, POM and CHPIDs), disabled, ISC 0, LPM =
    /// PIM. Returns the device back if the number is taken or a CHPID of an installed path was
    /// not declared with [`Vcss::add_chpid`].
    pub fn add_subchannel_paths(
        &mut self,
        sch_no: u16,
        devno: u16,
        paths: &Paths,
        device: Box<dyn Device>,
    ) -> Result<(), Box<dyn Device>> {
        let undeclared = (0..8)
            .filter(|i| paths.pim & (0x80 >> i) != 0)
            .any(|i| !self.chpids.contains_key(&paths.chpids[i]));
        if self.subchannels.contains_key(&sch_no) || undeclared {
            return Err(device);
        }
        let mut state = SchState::new(devno);
        let p = &mut state.schib.pmcw;
        p.chars.set_concurrent_sense(false);
        p.pim = paths.pim;
        p.pam = paths.pam & paths.pim;
        p.pom = paths.pom;
        p.lpm = paths.pim;
        p.chpid = paths.chpids;
        self.subchannels
            .insert(sch_no, VirtualSubchannel { state, device });
        Ok(())
    }

    /// The subchannel's state, if installed.
    pub fn subchannel(&self, sch_no: u16) -> Option<&SchState> {
        self.subchannels.get(&sch_no).map(|s| &s.state)
    }

    /// Mutable access to a subchannel's state (tests and VMM-level path management).
    pub fn subchannel_mut(&mut self, sch_no: u16) -> Option<&mut SchState> {
        self.subchannels.get_mut(&sch_no).map(|s| &mut s.state)
    }

    fn notify(&mut self, n: Notification) {
        if let Some(f) = self.notifier.as_mut() {
            f(n);
        }
    }

    /// Keeps the interruption queue in step with the subchannel: one queued entry while it is
    /// status pending and enabled, none otherwise.
    fn raise(&mut self, sch_no: u16) {
        let id = SubchannelId::new(0, 0, sch_no);
        self.irqs.withdraw(id);
        let Some(s) = self.subchannels.get(&sch_no) else {
            return;
        };
        let p = &s.state.schib.pmcw;
        if s.state.status_pending() && p.flags.enabled() {
            let code = IoInterruptionCode::subchannel(id, p.intparm.get(), p.flags.isc());
            self.irqs.push(code);
            self.notify(Notification::IoInterruption(code));
        }
    }

    /// Withdraws the queued interruption of subchannel `sch_no`, if any.
    pub(crate) fn withdraw(&mut self, sch_no: u16) {
        self.irqs.withdraw(SubchannelId::new(0, 0, sch_no));
    }

    /// Applies what the device made of a start or resume function.
    pub(crate) fn apply(&mut self, sch_no: u16, outcome: Outcome) {
        let Some(s) = self.subchannels.get_mut(&sch_no) else {
            return;
        };
        match outcome {
            Outcome::Ended(e) => sch::end_start(&mut s.state, &e),
            Outcome::Suspended { cpa } => sch::suspend(&mut s.state, cpa, false),
            Outcome::NoPath { pnom } => sch::deferred_cc(&mut s.state, 3, pnom),
            Outcome::InProgress => return,
        }
        self.raise(sch_no);
    }

    /// The VMM reports the ending of a start function a device ran asynchronously
    /// ([`Outcome::InProgress`]). Ignored unless that subchannel is active.
    pub fn complete(&mut self, sch_no: u16, ending: Ending) {
        self.apply_if_active(sch_no, Outcome::Ended(ending));
    }

    /// Applies the outcome of an asynchronous start function, unless the subchannel is no
    /// longer active (a halt or clear ended the function first: the late ending is stale).
    pub(crate) fn apply_if_active(&mut self, sch_no: u16, outcome: Outcome) {
        let active = self.subchannels.get(&sch_no).is_some_and(|s| {
            s.state
                .schib
                .scsw
                .ctrl
                .ac()
                .contains(ccw_types::ActivityControl::SUBCHANNEL_ACTIVE)
        });
        if active {
            self.apply(sch_no, outcome);
        }
    }

    /// Unsolicited device status (e.g. attention) on an idle, enabled subchannel that is not
    /// status pending; dropped otherwise (QEMU `css_conditional_io_interrupt`).
    pub fn unsolicited(&mut self, sch_no: u16, dstat: DeviceStatus) -> bool {
        let Some(s) = self.subchannels.get_mut(&sch_no) else {
            return false;
        };
        let st = &s.state;
        if !st.schib.pmcw.flags.enabled()
            || st.status_pending()
            || !st.schib.scsw.ctrl.fc().is_empty()
        {
            return false;
        }
        sch::unsolicited(&mut s.state, dstat);
        self.raise(sch_no);
        true
    }

    /// DIAGNOSE 0x500, the KVM hypercall (`diag r1,r3,0x500` with the subcode in GR1): what a
    /// VMM calls when KVM hands it the instruction (no in-kernel ioeventfd took it). Subcode 3
    /// (`KVM_S390_VIRTIO_CCW_NOTIFY`) is [`Vcss::virtio_notify`] with GR2 and GR3; its result
    /// goes into GR2. Any other subcode is a specification exception, as QEMU answers.
    pub fn diag500<M: GuestIo>(
        &mut self,
        mem: &M,
        gr1: u64,
        gr2: u64,
        gr3: u64,
    ) -> Result<i64, InstrError> {
        if gr1 != VIRTIO_CCW_NOTIFY {
            return Err(ProgramInterruption::Specification("DIAGNOSE 0x500 subcode").into());
        }
        Ok(self.virtio_notify(mem, gr2, gr3))
    }

    /// A virtio-ccw queue notification (DIAGNOSE 0x500 subcode 3): GR2 holds the
    /// subchannel-identification word (bits 32-63, as GR1 of the I/O instructions), GR3 the
    /// virtqueue index (bits 48-63; with VIRTIO_F_NOTIFICATION_DATA the upper bits carry the
    /// driver's avail index, which vcss does not use). Returns the value for GR2: 0 when the
    /// device took the notification, `-EINVAL` (-22) when the word is invalid, the subchannel
    /// is not there, its device is not a virtio device, or the queue is not set up (QEMU's
    /// `virtio_ccw_hcall_notify`; Linux keeps a non-negative answer as the next cookie in GR4
    /// and treats a negative one as a failed notification).
    ///
    /// When the device set an indicator (classic indicators, CCW_CMD_SET_IND), the subchannel
    /// becomes status pending with alert status and its interruption is queued with its
    /// intparm — if it is enabled, idle and not already status pending; otherwise nothing
    /// (QEMU's `css_conditional_io_interrupt`: a guest with status pending looks at its
    /// indicators when it takes that interruption).
    pub fn virtio_notify<M: GuestIo>(&mut self, mem: &M, gr2: u64, gr3: u64) -> i64 {
        let Ok(Some(sch_no)) = sid(gr2 & 0xFFFF_FFFF) else {
            return EINVAL;
        };
        let Some(s) = self.subchannels.get_mut(&sch_no) else {
            return EINVAL;
        };
        match s.device.virtio_notify(mem, gr3 as u16) {
            VirtioNotify::NotVirtio | VirtioNotify::NoQueue => EINVAL,
            VirtioNotify::Processed { interrupt } => {
                if interrupt {
                    self.unsolicited(sch_no, DeviceStatus::NONE);
                }
                0
            }
        }
    }

    /// Queues a channel report; notifies [`Notification::ChannelReportPending`] for the first
    /// of a batch. A report that does not fit is lost and the next one carries R.
    pub fn queue_crw(&mut self, crw: Crw) {
        if self.crws.push(crw) {
            self.notify(Notification::ChannelReportPending);
        }
    }

    /// Queues an event for CHSC store-event-information and the RSC 0xB / ERC 0 channel report
    /// that tells the guest to fetch it (only when no event was already waiting, as QEMU does).
    pub fn queue_event(&mut self, ev: SeiEvent) {
        let first = self.events.is_empty();
        self.events.push_back(ev);
        if first {
            self.queue_crw(Crw::new().with_rsc(ccw_types::crw::rsc::CSS));
        }
    }

    /// Takes the highest-priority I/O interruption enabled by `cr6`, for the VMM to present to a
    /// vCPU (lowcore 0xB8-0xC3). The subchannel stays status pending until TSCH.
    pub fn take_interruption(&mut self, cr6: u64) -> Option<IoInterruptionCode> {
        self.irqs.take(cr6)
    }

    /// Whether an I/O interruption is pending for an ISC enabled by `cr6`.
    pub fn interruption_pending(&self, cr6: u64) -> bool {
        self.irqs.pending(cr6)
    }

    /// STORE SUBCHANNEL (B234): the 52-byte SCHIB at `addr`. cc 0 with an all-zero SCHIB for a
    /// number below the highest installed one (QEMU), cc 3 above it (end of the set).
    pub fn stsch<M: GuestIo>(
        &self,
        mem: &M,
        gr1: u64,
        addr: u64,
    ) -> Result<ConditionCode, InstrError> {
        align(addr, 4, "STSCH operand not on a word boundary")?;
        probe(mem, addr, Schib::LEN)?;
        let Some(no) = sid(gr1)? else {
            return Ok(ConditionCode::Cc3);
        };
        let schib = match self.subchannels.get(&no) {
            Some(s) => sch::stsch(&s.state),
            None if self
                .subchannels
                .keys()
                .next_back()
                .is_some_and(|&hi| no < hi) =>
            {
                Schib::default()
            }
            None => return Ok(ConditionCode::Cc3),
        };
        store(mem, addr, &schib.into_bytes())?;
        Ok(ConditionCode::Cc0)
    }

    /// MODIFY SUBCHANNEL (B232): fetches the SCHIB at `addr`, validates it (reserved PMCW
    /// word-1 bits 0, 1, 6, 7; bit 5 ignored) and applies the program-modifiable fields.
    pub fn msch<M: GuestIo>(
        &mut self,
        mem: &M,
        gr1: u64,
        addr: u64,
    ) -> Result<ConditionCode, InstrError> {
        align(addr, 4, "MSCH operand not on a word boundary")?;
        let mut buf = [0u8; Schib::LEN];
        fetch(mem, addr, &mut buf)?;
        let Some(no) = sid(gr1)? else {
            return Ok(ConditionCode::Cc3);
        };
        let new = Schib::from_bytes(buf);
        // Validate before the cc 3 test: the operand's meaning does not depend on the target.
        sch::validate_modify(&new).map_err(OperandException::Operand)?;
        let Some(s) = self.subchannels.get_mut(&no) else {
            return Ok(ConditionCode::Cc3);
        };
        let was_enabled = s.state.schib.pmcw.flags.enabled();
        let cc = sch::msch(&mut s.state, &new)?;
        if cc == ConditionCode::Cc0 && !was_enabled && s.state.schib.pmcw.flags.enabled() {
            s.device.enabled();
        }
        Ok(cc)
    }

    /// START SUBCHANNEL (B233): fetches the ORB at `addr` (12 bytes, 32 with X = 1); on cc 0
    /// the device runs the program on the first usable path.
    pub fn ssch<M: GuestIo>(
        &mut self,
        mem: &M,
        gr1: u64,
        addr: u64,
    ) -> Result<ConditionCode, InstrError> {
        align(addr, 4, "SSCH operand not on a word boundary")?;
        let mut buf = [0u8; Orb::LEN];
        fetch(mem, addr, &mut buf[..Orb::SHORT_LEN])?;
        if Orb::from_bytes(buf).ctrl.extension() {
            fetch(mem, addr, &mut buf)?;
        }
        let orb = Orb::read_from(&buf).map_err(OperandException::Operand)?;
        let Some(no) = sid(gr1)? else {
            return Ok(ConditionCode::Cc3);
        };
        // The validated level, checked before the state (an ORB of all 0xFF is an operand
        // exception even on a subchannel that is not operational).
        let OrbRepr::Command(command) =
            OrbRepr::from_orb(&orb).map_err(OperandException::Operand)?
        else {
            return Err(OperandException::NotInstalled(
                "the fibre-channel extensions facility (transport mode)",
            )
            .into());
        };
        let Some(s) = self.subchannels.get_mut(&no) else {
            return Ok(ConditionCode::Cc3);
        };
        let cc = sch::ssch_command(&mut s.state, &orb, &command);
        if cc != ConditionCode::Cc0 {
            return Ok(cc);
        }
        let usable = s.state.usable_paths();
        let outcome = if usable == 0 {
            Outcome::NoPath {
                pnom: command.lpm & s.state.schib.pmcw.pam,
            }
        } else {
            let path = 0x80u8 >> usable.leading_zeros();
            sch::begin_start(&mut s.state, path);
            s.device.start(mem, &command, path)
        };
        self.apply(no, outcome);
        Ok(ConditionCode::Cc0)
    }

    /// TEST SUBCHANNEL (B235): stores the 64-byte IRB (no EMW: the extended-measurement-word
    /// facility is not installed); cc 0 clears the status and withdraws the interruption.
    pub fn tsch<M: GuestIo>(
        &mut self,
        mem: &M,
        gr1: u64,
        addr: u64,
    ) -> Result<ConditionCode, InstrError> {
        align(addr, 4, "TSCH operand not on a word boundary")?;
        let no = sid(gr1)?;
        probe(mem, addr, Irb::SHORT_LEN)?;
        let Some(s) = no.and_then(|no| self.subchannels.get_mut(&no)) else {
            return Ok(ConditionCode::Cc3);
        };
        let before = s.state;
        let (cc, irb) = sch::tsch(&mut s.state);
        if cc == ConditionCode::Cc3 {
            return Ok(cc);
        }
        if let Err(e) = store(mem, addr, &irb.into_bytes()[..Irb::SHORT_LEN]) {
            s.state = before;
            return Err(e);
        }
        if cc == ConditionCode::Cc0 {
            if let Some(no) = no {
                self.raise(no);
            }
        }
        Ok(cc)
    }

    /// HALT SUBCHANNEL (B231): on cc 0 the device gets the halt signal and the halt function
    /// completes at once (status pending, interruption).
    pub fn hsch(&mut self, gr1: u64) -> Result<ConditionCode, InstrError> {
        let Some((no, s)) = self.lookup(gr1)? else {
            return Ok(ConditionCode::Cc3);
        };
        let cc = sch::hsch(&mut s.state);
        if cc == ConditionCode::Cc0 {
            let cpa = s.device.halt();
            sch::halt_complete(&mut s.state, cpa);
            self.raise(no);
        }
        Ok(cc)
    }

    /// CLEAR SUBCHANNEL (B230): on cc 0 the pending interruption is discarded, the device gets
    /// the clear signal and the clear function completes at once.
    pub fn csch(&mut self, gr1: u64) -> Result<ConditionCode, InstrError> {
        let Some((no, s)) = self.lookup(gr1)? else {
            return Ok(ConditionCode::Cc3);
        };
        let cc = sch::csch(&mut s.state);
        if cc == ConditionCode::Cc0 {
            s.device.clear();
            sch::clear_complete(&mut s.state);
            self.raise(no);
        }
        Ok(cc)
    }

    /// CANCEL SUBCHANNEL (B276): withdraws a start function not yet begun; no interruption.
    pub fn xsch(&mut self, gr1: u64) -> Result<ConditionCode, InstrError> {
        let Some((_, s)) = self.lookup(gr1)? else {
            return Ok(ConditionCode::Cc3);
        };
        Ok(sch::xsch(&mut s.state))
    }

    /// RESUME SUBCHANNEL (B238): on cc 0 the device re-fetches the suspending CCW.
    pub fn rsch<M: GuestIo>(&mut self, mem: &M, gr1: u64) -> Result<ConditionCode, InstrError> {
        let Some((no, s)) = self.lookup(gr1)? else {
            return Ok(ConditionCode::Cc3);
        };
        let cc = sch::rsch(&mut s.state);
        if cc != ConditionCode::Cc0 {
            return Ok(cc);
        }
        let usable = s.state.usable_paths();
        let outcome = if usable == 0 {
            Outcome::NoPath {
                pnom: s.state.schib.pmcw.lpm,
            }
        } else {
            let path = 0x80u8 >> usable.leading_zeros();
            sch::begin_start(&mut s.state, path);
            let cpa = s.state.schib.scsw.cpa.get();
            s.device.resume(mem, cpa)
        };
        self.apply(no, outcome);
        Ok(ConditionCode::Cc0)
    }

    fn lookup(&mut self, gr1: u64) -> Result<Option<(u16, &mut VirtualSubchannel)>, InstrError> {
        let Some(no) = sid(gr1)? else {
            return Ok(None);
        };
        Ok(self.subchannels.get_mut(&no).map(|s| (no, s)))
    }

    /// TEST PENDING INTERRUPTION (B236) with the vCPU's `cr6` and the absolute address of its
    /// lowcore (`prefix`): operand 0 stores the 12-byte code at lowcore 0xB8, otherwise 8 bytes
    /// (SID word, intparm) at `addr`. cc 1 when a code was stored; the interruption is cleared
    /// and the subchannel stays status pending.
    pub fn tpi<M: GuestIo>(
        &mut self,
        mem: &M,
        addr: u64,
        cr6: u64,
        prefix: u64,
    ) -> Result<ConditionCode, InstrError> {
        let (at, len) = if addr == 0 {
            let at = prefix
                .checked_add(0xB8)
                .ok_or(ProgramInterruption::Addressing(prefix))?;
            (at, IoInterruptionCode::LEN)
        } else {
            align(addr, 4, "TPI operand not on a word boundary")?;
            (addr, 8)
        };
        probe(mem, at, len)?;
        let Some(code) = self.irqs.take(cr6) else {
            return Ok(ConditionCode::Cc0);
        };
        store(mem, at, &code.into_bytes()[..len])?;
        Ok(ConditionCode::Cc1)
    }

    /// STORE CHANNEL REPORT WORD (B239): cc 0 stores and removes the oldest report; cc 1 stores
    /// a zero word (and re-arms the channel-report machine check).
    pub fn stcrw<M: GuestIo>(&mut self, mem: &M, addr: u64) -> Result<ConditionCode, InstrError> {
        align(addr, 4, "STCRW operand not on a word boundary")?;
        probe(mem, addr, Crw::LEN)?;
        match self.crws.pop() {
            Some(crw) => {
                if let Err(e) = store(mem, addr, &crw.into_bytes()) {
                    self.crws.unpop(crw);
                    return Err(e);
                }
                Ok(ConditionCode::Cc0)
            }
            None => {
                store(mem, addr, &[0; 4])?;
                Ok(ConditionCode::Cc1)
            }
        }
    }

    /// RESET CHANNEL PATH (B23B): not implemented.
    pub fn rchp(&mut self, _gr1: u64) -> Result<ConditionCode, InstrError> {
        Err(Unsupported::new(
            "RCHP",
            "channel-path reset and its solicited CRW are not modelled yet",
        )
        .into())
    }

    /// SET CHANNEL MONITOR (B23C): not implemented.
    pub fn schm(&mut self, _gr1: u64, _gr2: u64) -> Result<(), InstrError> {
        Err(Unsupported::new("SCHM", "channel measurement is not modelled").into())
    }

    /// SET ADDRESS LIMIT (B237): not implemented.
    pub fn sal(&mut self, _gr1: u64) -> Result<(), InstrError> {
        Err(Unsupported::new("SAL", "address-limit checking is not modelled").into())
    }

    /// STORE CHANNEL PATH STATUS (B23A): not implemented.
    pub fn stcps<M: GuestIo>(&mut self, _mem: &M, _addr: u64) -> Result<(), InstrError> {
        Err(Unsupported::new("STCPS", "channel-path status is not modelled").into())
    }
}
