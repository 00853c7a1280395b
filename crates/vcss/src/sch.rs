// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The subchannel's status transitions, as pure functions of its state.
//!
//! Each instruction takes the subchannel's state ([`SchState`]: SCHIB + ESW + ECW), applies the
//! architecture's condition-code rules and FC/AC/SC transitions (reference §10) and returns the
//! condition code; on any condition code other than 0 the state is unchanged. The asynchronous
//! functions the channel subsystem performs afterwards (starting the device, ending the start
//! function, halt, clear, suspension) are functions here too, so the whole state machine can be
//! driven and checked without a runtime.
//!
//! ```
//! use ccw_types::{CommandOrb, FunctionControl, ActivityControl};
//! use css_core::ConditionCode;
//! use vcss::sch::{self as instr, SchState};
//! let mut s = SchState::new(0x0005);
//! s.schib.pmcw.flags.set_enabled(true);
//! let orb = CommandOrb::new(0x1234, 0x1000).emit();
//! assert_eq!(instr::ssch(&mut s, &orb), Ok(ConditionCode::Cc0));
//! assert_eq!(s.schib.scsw.ctrl.fc(), FunctionControl::START);
//! assert_eq!(s.schib.scsw.ctrl.ac(), ActivityControl::START_PENDING);
//! // A second start while the first is in progress: busy.
//! assert_eq!(instr::ssch(&mut s, &orb), Ok(ConditionCode::Cc2));
//! ```

use ccw_types::{
    ActivityControl as Ac, CommandOrb, DecodeError, DeviceStatus, Erw, Esw, FunctionControl as Fc,
    Irb, Orb, OrbControl, OrbRepr, Schib, Scsw, ScswControl, StatusControl as Sc, SubchannelStatus,
};
use css_core::ConditionCode;
use zerocopy::big_endian::{U16, U32};

use crate::device::Ending;
use ccw_types::DecodeReason;

/// A program exception the instruction would raise instead of setting a condition code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OperandException {
    /// A reserved or invalid field of the operand (ORB, SCHIB).
    #[error("operand exception: {0}")]
    Operand(DecodeError),
    /// A facility the simulated channel subsystem does not have.
    #[error("operand exception: {0} is not installed")]
    NotInstalled(&'static str),
}

/// The state of one subchannel that the instructions act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchState {
    /// The SCHIB: PMCW, current SCSW, measurement-block address.
    pub schib: Schib,
    /// The extended-status word the next TEST SUBCHANNEL stores.
    pub esw: Esw,
    /// The extended-control word (concurrent sense) the next TEST SUBCHANNEL stores.
    pub ecw: [u8; 32],
    /// Control word of the ORB of the current (or last) start function. The SCSW shows only its
    /// F bit, as QEMU's channel subsystem does; S, I and U act from here.
    pub orb: OrbControl,
}

impl Default for SchState {
    fn default() -> Self {
        Self {
            schib: Schib::default(),
            esw: Esw::default(),
            ecw: [0; 32],
            orb: OrbControl::new(),
        }
    }
}

impl SchState {
    /// A valid (V = 1), disabled I/O subchannel for `devno` with one path (slot 0, CHPID 0,
    /// PIM = PAM = LPM = 0x80, POM = 0xFF), ISC 0, concurrent sense enabled.
    pub fn new(devno: u16) -> Self {
        let mut s = Self::default();
        let p = &mut s.schib.pmcw;
        p.flags.set_dnv(true);
        p.flags.set_devno(devno);
        p.pim = 0x80;
        p.pam = 0x80;
        p.pom = 0xFF;
        p.lpm = 0x80;
        p.chars.set_concurrent_sense(true);
        s
    }

    fn operational(&self) -> bool {
        let f = self.schib.pmcw.flags;
        f.dnv() && f.enabled()
    }

    fn sc(&self) -> Sc {
        self.schib.scsw.ctrl.sc()
    }
    fn fc(&self) -> Fc {
        self.schib.scsw.ctrl.fc()
    }
    fn ac(&self) -> Ac {
        self.schib.scsw.ctrl.ac()
    }
    fn set_ac(&mut self, ac: Ac) {
        self.schib.scsw.ctrl.set_ac(ac);
    }
    fn set_sc(&mut self, sc: Sc) {
        self.schib.scsw.ctrl.set_sc(sc);
    }

    /// Whether status is pending.
    pub fn status_pending(&self) -> bool {
        self.sc().contains(Sc::PENDING)
    }

    /// The paths a start may use: `LPM & PAM & POM`.
    pub fn usable_paths(&self) -> u8 {
        let p = &self.schib.pmcw;
        p.lpm & p.pam & p.pom
    }
}

/// START SUBCHANNEL (reference §10.3). Immediate cc 3 when the ORB's LPM and the PAM share no
/// path (Hercules); when the only shared paths are not operational (POM) the start is accepted
/// and ends with deferred cc 3 ([`deferred_cc`]), as QEMU does.
pub fn ssch(s: &mut SchState, orb: &Orb) -> Result<ConditionCode, OperandException> {
    let repr = OrbRepr::from_orb(orb).map_err(OperandException::Operand)?;
    let OrbRepr::Command(o) = repr else {
        return Err(OperandException::NotInstalled(
            "the fibre-channel extensions facility (transport mode)",
        ));
    };
    Ok(ssch_command(s, orb, &o))
}

/// [`ssch`] of an ORB its caller already validated: `o` is `orb`'s command-mode form
/// ([`OrbRepr::from_orb`]), so a caller that needs the parsed ORB too parses it once.
pub fn ssch_command(s: &mut SchState, orb: &Orb, o: &CommandOrb) -> ConditionCode {
    if !s.operational() {
        return ConditionCode::Cc3;
    }
    if s.status_pending() {
        return ConditionCode::Cc1;
    }
    if !s.fc().is_empty() {
        return ConditionCode::Cc2;
    }
    if o.lpm & s.schib.pmcw.pam == 0 {
        return ConditionCode::Cc3;
    }
    // Only F is reflected, as QEMU does (s390x-guest.md: `00 80 40 07` for an ORB with F + P);
    // Hercules also copies key, S, P, I, A, U (reference §3.3).
    let ctrl = ScswControl::new()
        .with_format1(orb.ctrl.format1())
        .with_fc(Fc::START)
        .with_ac(Ac::START_PENDING);
    s.orb = orb.ctrl;
    s.schib.scsw = Scsw {
        ctrl,
        ..Scsw::default()
    };
    s.esw = Esw::default();
    s.ecw = [0; 32];
    let p = &mut s.schib.pmcw;
    p.intparm = U32::new(o.intparm);
    p.lpm = o.lpm;
    p.pnom = 0;
    ConditionCode::Cc0
}

/// HALT SUBCHANNEL (reference §10.7). The start function bit is kept (reference §14 #12).
pub fn hsch(s: &mut SchState) -> ConditionCode {
    if !s.operational() {
        return ConditionCode::Cc3;
    }
    let sc = s.sc();
    let intermediate_only = sc == Sc::INTERMEDIATE | Sc::PENDING;
    if sc.contains(Sc::PENDING) && !intermediate_only {
        return ConditionCode::Cc1;
    }
    if s.fc().intersects(Fc::HALT | Fc::CLEAR) {
        return ConditionCode::Cc2;
    }
    if intermediate_only && s.ac().contains(Ac::SUBCHANNEL_ACTIVE | Ac::DEVICE_ACTIVE) {
        // The intermediate status is withdrawn.
        s.set_sc(Sc::NONE);
        s.schib.scsw.cstat &= !SubchannelStatus::PCI.bits();
        s.schib.scsw.ctrl.set_zero_cc(false);
    }
    s.schib.scsw.ctrl.set_fc(s.fc() | Fc::HALT);
    s.set_ac(s.ac() | Ac::HALT_PENDING);
    ConditionCode::Cc0
}

/// CLEAR SUBCHANNEL (reference §10.8): never cc 1 or 2.
pub fn csch(s: &mut SchState) -> ConditionCode {
    if !s.operational() {
        return ConditionCode::Cc3;
    }
    s.schib.scsw.ctrl.set_fc(Fc::CLEAR);
    s.set_ac(Ac::CLEAR_PENDING);
    ConditionCode::Cc0
}

/// CANCEL SUBCHANNEL (reference §10.9): withdraws a start function that has not begun (or is
/// suspended); no interruption follows.
pub fn xsch(s: &mut SchState) -> ConditionCode {
    if !s.operational() {
        return ConditionCode::Cc3;
    }
    if s.status_pending() {
        return ConditionCode::Cc1;
    }
    let ac = s.ac();
    if s.fc() != Fc::START
        || !ac.intersects(Ac::START_PENDING | Ac::RESUME_PENDING | Ac::SUSPENDED)
        || ac.contains(Ac::SUBCHANNEL_ACTIVE)
    {
        return ConditionCode::Cc2;
    }
    s.schib.scsw.ctrl.set_fc(Fc::NONE);
    s.set_ac(ac - (Ac::START_PENDING | Ac::RESUME_PENDING | Ac::SUSPENDED));
    s.schib.scsw.dstat = 0;
    s.schib.scsw.cstat = 0;
    ConditionCode::Cc0
}

/// RESUME SUBCHANNEL (reference §10.10), with Hercules' superset of cc 2 conditions (§14 #15):
/// cc 0 only for a suspended start function of an ORB with S = 1 and nothing else pending.
pub fn rsch(s: &mut SchState) -> ConditionCode {
    if !s.operational() {
        return ConditionCode::Cc3;
    }
    if s.status_pending() {
        return ConditionCode::Cc1;
    }
    if s.fc() != Fc::START || s.ac() != Ac::SUSPENDED || !s.orb.suspend() {
        return ConditionCode::Cc2;
    }
    s.set_ac(Ac::SUSPENDED | Ac::RESUME_PENDING);
    s.schib.pmcw.pnom = 0;
    ConditionCode::Cc0
}

/// MODIFY SUBCHANNEL (reference §10.6): cc 1 for any status pending (QEMU, §14 #11), cc 2 while
/// a function is in progress; copies the program-modifiable fields.
pub fn msch(s: &mut SchState, new: &Schib) -> Result<ConditionCode, OperandException> {
    validate_modify(new).map_err(OperandException::Operand)?;
    let c = new.pmcw.chars;
    if c.xmwme() {
        return Err(OperandException::NotInstalled(
            "the extended-measurement-word facility",
        ));
    }
    if !s.schib.pmcw.flags.dnv() {
        return Ok(ConditionCode::Cc0);
    }
    if s.status_pending() {
        return Ok(ConditionCode::Cc1);
    }
    if !s.fc().is_empty() {
        return Ok(ConditionCode::Cc2);
    }
    let n = &new.pmcw;
    let p = &mut s.schib.pmcw;
    p.intparm = n.intparm;
    p.flags.set_isc(n.flags.isc());
    p.flags.set_enabled(n.flags.enabled());
    p.flags.set_limit_mode(n.flags.limit_mode());
    p.flags.set_mb_update(n.flags.mb_update());
    p.flags.set_dct_measurement(n.flags.dct_measurement());
    p.flags.set_multipath(n.flags.multipath());
    p.lpm = n.lpm;
    p.mbi = n.mbi;
    p.pom = n.pom;
    p.chars.set_mbfc(c.mbfc());
    p.chars.set_concurrent_sense(c.concurrent_sense());
    if c.mbfc() {
        s.schib.mba = new.mba;
    }
    Ok(ConditionCode::Cc0)
}

/// PMCW word-1 bits MODIFY SUBCHANNEL rejects: 0 (Q), 1 (W), 6 and 7 (reference §5.2, corrected;
/// bit 5 is ignored, neither rejected nor stored).
pub const MSCH_WORD1_RESERVED: u32 = 0xC300_0000;
/// PMCW word-6 bits MODIFY SUBCHANNEL rejects (reference §10.6, QEMU's mask).
pub const MSCH_WORD6_RESERVED: u32 = 0xFF1F_FFF8;

/// The validated level of a MODIFY SUBCHANNEL operand (reference §5.2 and §10.6): word-1 bits 0,
/// 1, 6, 7; limit mode 3; reserved word-6 bits; with MBFC an MBA not on a 64-byte boundary.
///
/// ccw-types' [`Schib::validate_for_modify`] predates the correction of §5.2 (it rejects bit 5
/// and accepts bit 1), so MSCH validates here.
pub fn validate_modify(new: &Schib) -> Result<(), DecodeError> {
    let w1 = new.pmcw.flags.into_bits().get();
    if w1 & MSCH_WORD1_RESERVED != 0 {
        return Err(DecodeError::new(
            "SCHIB",
            "PMCW word 1 reserved bits 0, 1, 6, 7",
            DecodeReason::Reserved {
                bits: u64::from(w1 & MSCH_WORD1_RESERVED),
            },
        ));
    }
    if new.pmcw.flags.limit_mode() == 3 {
        return Err(DecodeError::new(
            "SCHIB",
            "limit mode",
            DecodeReason::Invalid { value: 3 },
        ));
    }
    let w6 = new.pmcw.chars.into_bits().get();
    if w6 & MSCH_WORD6_RESERVED != 0 {
        return Err(DecodeError::new(
            "SCHIB",
            "PMCW word 6",
            DecodeReason::Reserved {
                bits: u64::from(w6 & MSCH_WORD6_RESERVED),
            },
        ));
    }
    if new.pmcw.chars.mbfc() && new.mba.get() % 64 != 0 {
        return Err(DecodeError::new(
            "SCHIB",
            "measurement-block address",
            DecodeReason::Invalid {
                value: new.mba.get(),
            },
        ));
    }
    Ok(())
}

/// STORE SUBCHANNEL: the SCHIB, no state change.
pub fn stsch(s: &SchState) -> Schib {
    s.schib
}

/// TEST SUBCHANNEL (reference §10.4): stores the IRB; when status was pending (cc 0) clears the
/// status as table 10.4 says and discards the ESW and concurrent sense; cc 1 changes nothing.
pub fn tsch(s: &mut SchState) -> (ConditionCode, Irb) {
    if !s.operational() {
        return (ConditionCode::Cc3, Irb::default());
    }
    let mut irb = Irb {
        scsw: s.schib.scsw,
        esw: s.esw,
        ecw: s.ecw,
        ..Irb::default()
    };
    // Format-1 style ESW word 0 (LPUM in byte 1), as QEMU stores it (reference §14 #10).
    irb.esw.word0 = U32::new(u32::from(s.schib.pmcw.lpum) << 16);
    let sc = s.sc();
    if !sc.contains(Sc::PENDING) {
        irb.esw.erw = Erw::new();
        irb.ecw = [0; 32];
        return (ConditionCode::Cc1, irb);
    }
    let fc = s.fc();
    let ac = s.ac();
    let pendings = Ac::RESUME_PENDING | Ac::START_PENDING | Ac::HALT_PENDING | Ac::CLEAR_PENDING;
    let ctrl = &mut s.schib.scsw.ctrl;
    if sc != Sc::INTERMEDIATE | Sc::PENDING {
        ctrl.set_fc(Fc::NONE);
        ctrl.set_ac(ac - (pendings | Ac::SUSPENDED));
        ctrl.set_path_not_operational(false);
    } else if fc.contains(Fc::START) && ac.contains(Ac::SUSPENDED) {
        ctrl.set_path_not_operational(false);
        if fc.contains(Fc::HALT) {
            ctrl.set_fc(Fc::NONE);
            ctrl.set_ac(ac - (pendings | Ac::SUSPENDED));
        } else {
            ctrl.set_ac(ac - Ac::RESUME_PENDING);
        }
    }
    ctrl.set_sc(Sc::NONE);
    ctrl.set_zero_cc(false);
    s.esw = Esw::default();
    s.ecw = [0; 32];
    (ConditionCode::Cc0, irb)
}

/// The channel subsystem begins a pending start (or resume) function on path `path_mask`:
/// start/resume pending and suspended are reset, subchannel and device become active.
pub fn begin_start(s: &mut SchState, path_mask: u8) {
    let ac = s.ac() - (Ac::START_PENDING | Ac::RESUME_PENDING | Ac::SUSPENDED);
    s.set_ac(ac | Ac::SUBCHANNEL_ACTIVE | Ac::DEVICE_ACTIVE);
    s.schib.pmcw.lpum = path_mask;
}

fn needs_alert(dstat: DeviceStatus, cstat: SubchannelStatus) -> bool {
    dstat.intersects(
        DeviceStatus::UNIT_CHECK
            | DeviceStatus::UNIT_EXCEPTION
            | DeviceStatus::ATTENTION
            | DeviceStatus::BUSY,
    ) || !(cstat - SubchannelStatus::PCI).is_empty()
}

/// The start function ends with primary and secondary status (channel end and device end
/// together): status pending, alert for exceptional status, concurrent sense in the ECW.
pub fn end_start(s: &mut SchState, e: &Ending) {
    let prev_sc = s.sc();
    let mut sc = Sc::PRIMARY | Sc::SECONDARY | Sc::PENDING;
    let mut cstat = e.cstat;
    if prev_sc.contains(Sc::INTERMEDIATE | Sc::PENDING) {
        // Intermediate status not yet cleared by TEST SUBCHANNEL merges into the final one.
        sc |= Sc::INTERMEDIATE;
        cstat |= SubchannelStatus::from_bits(s.schib.scsw.cstat) & SubchannelStatus::PCI;
    }
    if needs_alert(e.dstat, cstat) {
        sc |= Sc::ALERT;
    }
    s.set_ac(s.ac() - (Ac::SUBCHANNEL_ACTIVE | Ac::DEVICE_ACTIVE));
    s.set_sc(sc);
    let scsw = &mut s.schib.scsw;
    scsw.cpa = U32::new(e.cpa);
    scsw.dstat = e.dstat.bits();
    scsw.cstat = cstat.bits();
    scsw.count = U16::new(e.count);
    if let Some(sense) = e.sense {
        if s.schib.pmcw.chars.concurrent_sense() {
            // ERW S = 1 with SCNT in bits 10-15 (Linux and Hercules; reference §14 #8), and
            // SCSW L + E as QEMU presents concurrent sense.
            let n = sense.len.min(32);
            s.ecw = [0; 32];
            s.ecw[..usize::from(n)].copy_from_slice(&sense.bytes[..usize::from(n)]);
            s.esw.erw = Erw::new().with_concurrent_sense(true).with_scnt(n);
            scsw.ctrl.set_extended_control(true);
            scsw.ctrl.set_esw_format0(true);
        }
    }
}

/// Intermediate status while the program continues: PCI (`pci`) or initial status (Z).
pub fn intermediate(s: &mut SchState, cpa: u32, pci: bool, initial: bool) {
    s.set_sc(s.sc() | Sc::INTERMEDIATE | Sc::PENDING);
    let scsw = &mut s.schib.scsw;
    scsw.cpa = U32::new(cpa);
    if pci {
        scsw.cstat |= SubchannelStatus::PCI.bits();
    }
    if initial {
        scsw.ctrl.set_zero_cc(true);
    }
}

/// The program suspends at the CCW before `cpa` (CCW address + 8). Unless the ORB had U = 1 the
/// subchannel becomes status pending with intermediate status (no alert; reference §14 #16).
pub fn suspend(s: &mut SchState, cpa: u32, pci: bool) {
    s.set_ac((s.ac() - (Ac::SUBCHANNEL_ACTIVE | Ac::DEVICE_ACTIVE)) | Ac::SUSPENDED);
    s.schib.scsw.cpa = U32::new(cpa);
    s.schib.scsw.dstat = 0;
    if !s.orb.suppress_suspended() {
        s.set_sc(s.sc() | Sc::INTERMEDIATE | Sc::PENDING);
        if pci {
            s.schib.scsw.cstat |= SubchannelStatus::PCI.bits();
        }
    }
}

/// The start function is not performed, or ends, with a deferred condition code: `cc` 1
/// (status at initiation) or 3 (no operational path). `pnom` paths were found not operational.
pub fn deferred_cc(s: &mut SchState, cc: u8, pnom: u8) {
    s.set_ac(
        s.ac()
            - (Ac::START_PENDING
                | Ac::RESUME_PENDING
                | Ac::SUBCHANNEL_ACTIVE
                | Ac::DEVICE_ACTIVE
                | Ac::SUSPENDED),
    );
    s.set_sc(Sc::ALERT | Sc::PENDING);
    let ctrl = &mut s.schib.scsw.ctrl;
    ctrl.set_deferred_cc(cc & 3);
    if pnom != 0 {
        ctrl.set_path_not_operational(true);
        s.schib.pmcw.pnom |= pnom;
    }
}

/// The halt function completes (reference §10.7, QEMU's rules for device status and CPA):
/// device end when the device was active or no start was pending/suspended; CPA = `cpa` when the
/// program was active or suspended. Primary status when a started program was terminated,
/// secondary when the device presented device end, status pending alone otherwise.
pub fn halt_complete(s: &mut SchState, cpa: u32) {
    let ac = s.ac();
    let active = ac.intersects(Ac::SUBCHANNEL_ACTIVE | Ac::DEVICE_ACTIVE);
    let suspended = ac.contains(Ac::SUSPENDED);
    let start_pending = ac.contains(Ac::START_PENDING);
    let mut sc = (s.sc() & Sc::INTERMEDIATE) | Sc::PENDING;
    let scsw = &mut s.schib.scsw;
    scsw.cstat &= SubchannelStatus::PCI.bits();
    scsw.count = U16::new(0);
    if active || !(start_pending || suspended) {
        scsw.dstat = DeviceStatus::DEVICE_END.bits();
        sc |= Sc::SECONDARY;
    } else {
        scsw.dstat = 0;
    }
    if active || suspended {
        scsw.cpa = U32::new(cpa);
        sc |= Sc::PRIMARY;
    }
    s.set_ac(Ac::NONE);
    s.set_sc(sc);
}

/// The clear function completes (reference §10.8, Hercules' exact result, §14 #13).
pub fn clear_complete(s: &mut SchState) {
    let key_flags = ScswControl::new().with_fc(Fc::CLEAR).with_sc(Sc::PENDING);
    s.schib.scsw = Scsw {
        ctrl: key_flags,
        ..Scsw::default()
    };
    let p = &mut s.schib.pmcw;
    p.pnom = 0;
    p.lpum = 0;
    p.pom = 0xFF;
    s.esw = Esw::default();
    s.ecw = [0; 32];
}

/// Adds device status (a unit check found while ending the function) to the pending status,
/// with alert status where the architecture asks for it.
pub fn add_device_status(s: &mut SchState, dstat: DeviceStatus) {
    let all = DeviceStatus::from_bits(s.schib.scsw.dstat) | dstat;
    s.schib.scsw.dstat = all.bits();
    if needs_alert(all, SubchannelStatus::from_bits(s.schib.scsw.cstat)) {
        s.set_sc(s.sc() | Sc::ALERT);
    }
}

/// Unsolicited device status (e.g. attention) on an idle subchannel: SC alert + pending, FC 0;
/// the other SCSW fields are stored as zero (they are not meaningful without a function).
pub fn unsolicited(s: &mut SchState, dstat: DeviceStatus) {
    s.schib.scsw = Scsw {
        ctrl: ScswControl::new().with_sc(Sc::ALERT | Sc::PENDING),
        dstat: dstat.bits(),
        ..Scsw::default()
    };
}

#[cfg(test)]
#[path = "sch_tests.rs"]
mod tests;
