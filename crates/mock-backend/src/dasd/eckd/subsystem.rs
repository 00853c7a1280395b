// SPDX-License-Identifier: Apache-2.0 OR MIT

//! What a Linux guest's DASD drivers issue when they bring a 3390 online, beyond reading
//! records: path grouping (Sense / Set Path Group ID, cio's path verification), the subsystem
//! functions `dasd_eckd` uses (Perform Subsystem Function with Read Subsystem Data), and
//! Read IPL.
//!
//! Decisions where the sources differ (facts from Hercules' `ckddasd.c` and Linux's
//! `drivers/s390/cio/device_pgid.c`, `drivers/s390/block/dasd_eckd.c`):
//! - **Sense Path Group ID state.** Hercules always answers "reset, single path" with the
//!   stored ID. Linux's path verification counts a path as grouped only when SNID reports
//!   state 1 = grouped and state 3 = the path mode it asked for, so the model reports what the
//!   last Set Path Group ID established: `0xC0` (grouped), `| 0x08` for multipath mode.
//! - **One path group per subchannel.** The model serves one subchannel; its path-group state
//!   is that subchannel's, whichever of its paths the command came on. It survives the clear
//!   function and selective reset (as on the real control unit; only a power-on or a disband
//!   ends it).
//! - **Command position.** Sense and Set Path Group ID must be the first command of their
//!   chain (Hercules, and the 3990 reference it cites); elsewhere: command reject, invalid
//!   command sequence.
//! - **Subsystem data.** Perform Subsystem Function prepares data only for the orders Linux
//!   issues at bring-up: Prepare for Read Subsystem Data (0x18) with suborder 0x41 (feature
//!   codes: 256 bytes, all zero, no optional feature) and 0x0E (unit address configuration:
//!   512 bytes, this device's unit address a base device, no aliases), and Set Subsystem
//!   Characteristics (0x1D, accepted, nothing to read). Any other order or suborder is a
//!   command reject with "invalid parameter", which `dasd_eckd` tolerates (volume storage and
//!   extent pool queries are for thin-provisioned volumes).

use super::*;

/// Command codes handled here.
pub(super) mod code {
    pub(in super::super) const READ_IPL: u8 = 0x02;
    pub(in super::super) const PSF: u8 = 0x27;
    pub(in super::super) const SNID: u8 = 0x34;
    pub(in super::super) const RSSD: u8 = 0x3E;
    pub(in super::super) const SPID: u8 = 0xAF;
}

/// Path-group state byte of Sense Path Group ID (byte 0).
pub mod pg {
    /// State 1 (bits 0-1): reset, not grouped.
    pub const RESET: u8 = 0x00;
    /// State 1: grouped.
    pub const GROUPED: u8 = 0xC0;
    /// State 3 (bit 4): multipath mode.
    pub const MULTIPATH: u8 = 0x08;
    /// Set Path Group ID function byte: multipath mode (bit 0).
    pub const SET_MULTIPATH: u8 = 0x80;
    /// Set Path Group ID function byte: the function (bits 1-2).
    pub const SET_FUNCTION: u8 = 0x60;
    /// ... establish the group.
    pub const ESTABLISH: u8 = 0x00;
    /// ... disband the group.
    pub const DISBAND: u8 = 0x20;
    /// ... resign from the group.
    pub const RESIGN: u8 = 0x40;
}

/// Perform Subsystem Function orders.
const PSF_PRSSD: u8 = 0x18;
const PSF_SSC: u8 = 0x1D;
/// Prepare for Read Subsystem Data suborders.
const SUB_UAC: u8 = 0x0E;
const SUB_FEATURES: u8 = 0x41;
/// Unit address type "base device" in the unit address configuration.
const UA_BASE_DEVICE: u8 = 0x01;

/// A path group: the state byte and the 11-byte ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct PathGroup {
    pub(super) state: u8,
    pub(super) id: [u8; 11],
}

impl Eckd {
    /// The path group of the subchannel: state byte and ID, as Sense Path Group ID presents
    /// them.
    pub fn path_group(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0] = self.pgroup.state;
        b[1..].copy_from_slice(&self.pgroup.id);
        b
    }

    fn first_in_chain(&self) -> Result<(), Check> {
        if self.chain.commands > 0 {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        Ok(())
    }

    /// Sense Path Group ID (0x34): 12 bytes, the state byte and the path group ID.
    pub(super) fn sense_pgid(&mut self, data: &mut dyn DataStream) -> CmdResult {
        self.first_in_chain()?;
        send(data, &self.path_group())
    }

    /// Set Path Group ID (0xAF): 12 bytes, the function byte and the ID.
    pub(super) fn set_pgid(&mut self, data: &mut dyn DataStream) -> CmdResult {
        self.first_in_chain()?;
        let b = recv::<12>(data)?;
        let (f, id) = (b[0], &b[1..]);
        let mut new_id = [0u8; 11];
        new_id.copy_from_slice(id);
        let grouped = self.pgroup.state & pg::GROUPED == pg::GROUPED;
        let bad = f & pg::SET_FUNCTION == pg::SET_FUNCTION
            || f & 0x1F != 0
            || new_id == [0; 11]
            || (grouped && self.pgroup.id != new_id);
        if bad {
            return Err(Check::reject(sense::MSG_INVALID_PARAMETER));
        }
        self.pgroup = match f & pg::SET_FUNCTION {
            pg::ESTABLISH => PathGroup {
                state: pg::GROUPED
                    | if f & pg::SET_MULTIPATH != 0 {
                        pg::MULTIPATH
                    } else {
                        0
                    },
                id: new_id,
            },
            // Disband and resign both leave this subchannel's only group.
            _ => PathGroup::default(),
        };
        Ok(OK)
    }

    /// Perform Subsystem Function (0x27).
    pub(super) fn psf(&mut self, data: &mut dyn DataStream) -> CmdResult {
        if !self.domain_complete() {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        self.chain.subsystem_data = None;
        let mut order = [0u8; 1];
        if data.peek(0, &mut order)? < 1 {
            return Err(Check::reject(sense::MSG_COUNT_TOO_SMALL));
        }
        match order[0] {
            PSF_PRSSD => {
                let p = recv::<12>(data)?;
                let suborder = p[6];
                if p[1] != 0 || p[2..6] != [0; 4] || p[7..] != [0; 5] {
                    return Err(Check::reject(sense::MSG_INVALID_PARAMETER));
                }
                let prepared = match suborder {
                    SUB_FEATURES => vec![0u8; 256],
                    SUB_UAC => {
                        let mut uac = vec![0u8; 512];
                        let ua = usize::from(self.identity.devno & 0xFF);
                        uac[2 * ua] = UA_BASE_DEVICE;
                        uac[2 * ua + 1] = ua as u8;
                        uac
                    }
                    _ => return Err(Check::reject(sense::MSG_INVALID_PARAMETER)),
                };
                self.chain.subsystem_data = Some(prepared);
                Ok(OK)
            }
            PSF_SSC => {
                recv::<66>(data)?;
                Ok(OK)
            }
            _ => Err(Check::reject(sense::MSG_INVALID_PARAMETER)),
        }
    }

    /// Read Subsystem Data (0x3E): what the preceding Perform Subsystem Function of this
    /// chain prepared (command reject, invalid sequence, without one).
    pub(super) fn rssd(&mut self, data: &mut dyn DataStream) -> CmdResult {
        if !self.domain_complete() {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        let prepared = self
            .chain
            .subsystem_data
            .take()
            .ok_or(Check::reject(sense::MSG_INVALID_SEQUENCE))?;
        send(data, &prepared)
    }

    /// Read IPL (0x02): orients to cylinder 0 head 0 and reads the data area of the first
    /// record after R0 (IPL1); a following Read Data reads IPL2. Rejected after Define Extent
    /// or Set File Mask, and neither may follow it in the chain (Hercules; the 3990
    /// reference).
    pub(super) fn read_ipl(&mut self, data: &mut dyn DataStream) -> CmdResult {
        if self.chain.extent.is_some() || self.chain.mask_set || self.chain.domain.is_some() {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        self.chain.mask_set = true;
        self.move_to(TrackAddr::new(0, 0))?;
        let i = self.data_record(false)?;
        let r = &self.track()?.records[i];
        let empty = r.data.is_empty();
        let bytes = r.data.clone();
        self.chain.cursor = Some(Cursor::AfterRecord(i));
        data.write(&bytes)?;
        Ok(if empty {
            OK | DeviceStatus::UNIT_EXCEPTION
        } else {
            OK
        })
    }
}
