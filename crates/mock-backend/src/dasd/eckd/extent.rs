// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The extent and the locate-record domain: Define Extent, Locate Record (Extended), Set File
//! Mask, and the checks every data command passes (in the extent, in the domain, writes the
//! file mask allows).

use super::*;

impl Eckd {
    pub(super) fn in_extent(&self, t: TrackAddr) -> bool {
        self.chain
            .extent
            .is_none_or(|e| (e.beg..=e.end).contains(&t.index()))
    }

    /// Checks a data-transfer command against the locate-record domain and uses up one
    /// record of it.
    pub(super) fn take_domain(&mut self, allowed: &[u8]) -> Result<(), Check> {
        match &mut self.chain.domain {
            None => Ok(()),
            Some(d) if d.remaining > 0 && allowed.contains(&d.op) => {
                d.remaining -= 1;
                Ok(())
            }
            Some(_) => Err(Check::reject(sense::MSG_INVALID_SEQUENCE)),
        }
    }

    pub(super) fn domain_complete(&self) -> bool {
        self.chain.domain.is_none_or(|d| d.remaining == 0)
    }

    pub(super) fn check_write(&self, format: bool, r0: bool) -> Result<(), Check> {
        if self.image.is_read_only() {
            return Err(Check {
                byte0: sense::CMD_REJECT,
                byte1: sense::WRITE_INHIBITED,
                msg: 0,
                transfer: None,
            });
        }
        let mask = self.chain.mask & MASK_WRITE;
        let permitted = match mask {
            MASK_INHIBIT_ALL => false,
            MASK_UPDATE_ONLY => !format,
            MASK_INHIBIT_HA_R0 => !r0,
            _ => true,
        };
        if permitted {
            Ok(())
        } else {
            Err(Check {
                byte0: sense::CMD_REJECT,
                byte1: sense::FILE_PROTECTED,
                msg: sense::MSG_INVALID_PARAMETER,
                transfer: None,
            })
        }
    }

    pub(super) fn set_file_mask(&mut self, data: &mut dyn DataStream) -> CmdResult {
        if self.chain.extent.is_some() || self.chain.mask_set {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        let [mask] = recv::<1>(data)?;
        self.chain.mask = mask;
        self.chain.mask_set = true;
        Ok(OK)
    }

    pub(super) fn define_extent(&mut self, data: &mut dyn DataStream) -> CmdResult {
        if self.chain.extent.is_some() || self.chain.mask_set || self.chain.track.is_some() {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        // 16 bytes of parameters; Linux sends 32 (extended parameters: time stamp) when it
        // time-stamps writes. Ask for the extension only if the program supplies it, so that
        // a 16-byte Define Extent is not an incorrect length.
        let mut p = [0u8; 32];
        if data.read(&mut p[..16])? < 16 {
            return Err(Check::reject(sense::MSG_COUNT_TOO_SMALL));
        }
        if data.remaining() > 0 || data.chains_data() {
            data.read(&mut p[16..])?;
        }
        let mask = p[0];
        if mask & 0x20 != 0 {
            return Err(Check::reject(sense::MSG_INVALID_PARAMETER));
        }
        let beg = TrackAddr::from_cchh([p[8], p[9], p[10], p[11]]);
        let end = TrackAddr::from_cchh([p[12], p[13], p[14], p[15]]);
        let cyls = self.image.cylinders();
        if beg > end || end.cyl >= cyls || beg.head >= HEADS || end.head >= HEADS {
            return Err(Check::reject(sense::MSG_INVALID_PARAMETER));
        }
        self.chain.extent = Some(Extent {
            beg: beg.index(),
            end: end.index(),
        });
        self.chain.mask = mask;
        Ok(OK)
    }

    pub(super) fn locate(&mut self, data: &mut dyn DataStream, extended: bool) -> CmdResult {
        if self.chain.extent.is_none() || !self.domain_complete() {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        let want = if extended { 20 } else { 16 };
        let mut p = [0u8; 20];
        if data.read(&mut p[..want])? < want {
            return Err(Check::reject(sense::MSG_COUNT_TOO_SMALL));
        }
        if extended && (p[0] & 0x3F == 0x3F || p[1] & 0x20 != 0) {
            // Extended operations and imbedded CCWs are not modelled.
            return Err(Check::reject(sense::MSG_INVALID_PARAMETER));
        }
        let orient = p[0] >> 6;
        let operation = p[0] & 0x3F;
        let count = u32::from(p[3]);
        let seek = TrackAddr::from_cchh([p[4], p[5], p[6], p[7]]);
        let search = [p[8], p[9], p[10], p[11], p[12]];
        match operation {
            op::ORIENT if count != 0 => return Err(Check::reject(sense::MSG_INVALID_PARAMETER)),
            op::WRITE_DATA | op::FORMAT_WRITE | op::READ_DATA | op::READ_ANY if count == 0 => {
                return Err(Check::reject(sense::MSG_INVALID_PARAMETER));
            }
            op::ORIENT | op::READ_DATA | op::READ_ANY => {}
            op::WRITE_DATA => self.check_write(false, false)?,
            op::FORMAT_WRITE => self.check_write(true, orient != 0)?,
            _ => return Err(Check::reject(sense::MSG_INVALID_PARAMETER)),
        }
        self.move_to(seek)?;
        let cursor = match (orient, operation) {
            (3, op::READ_ANY | op::ORIENT) => Cursor::Index,
            (1, op::FORMAT_WRITE | op::ORIENT) => Cursor::AfterHa,
            (0 | 2, op::READ_ANY) => {
                // Read any: start at the record the sector argument points at (search R).
                let t = self.track()?;
                match t.records.iter().position(|r| r.count.record == search[4]) {
                    Some(i) if i > 0 => Cursor::AfterRecord(i - 1),
                    _ => Cursor::AfterRecord(0),
                }
            }
            (0 | 2, _) => {
                let t = self.track()?;
                match t.find(search) {
                    Some(i) => Cursor::AfterCount(i),
                    None => return Err(Check::byte1(sense::NO_RECORD_FOUND)),
                }
            }
            _ => return Err(Check::reject(sense::MSG_INVALID_PARAMETER)),
        };
        self.chain.cursor = Some(cursor);
        self.chain.domain = Some(Domain {
            op: operation,
            remaining: count,
        });
        Ok(OK)
    }
}
