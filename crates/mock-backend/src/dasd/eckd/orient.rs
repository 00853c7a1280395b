// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Orientation: where on the volume the device is (track, the record after the last count
//! passed, index passes), moving track to track, Seek and Search ID.

use super::*;

impl Eckd {
    pub(super) fn move_to(&mut self, t: TrackAddr) -> Result<(), Check> {
        self.flush()?;
        if t.cyl >= self.image.cylinders() || t.head >= HEADS {
            return Err(Check::reject(sense::MSG_INVALID_PARAMETER));
        }
        if !self.in_extent(t) {
            return Err(Check::byte1(sense::FILE_PROTECTED));
        }
        let track = self.image.read_track(t)?;
        self.chain.track = Some(track);
        self.chain.cursor = Some(Cursor::Index);
        self.chain.index_passes = 0;
        Ok(())
    }

    pub(super) fn track(&self) -> Result<&Track, Check> {
        self.chain
            .track
            .as_ref()
            .ok_or(Check::reject(sense::MSG_INVALID_SEQUENCE))
    }

    pub(super) fn cursor(&self) -> Cursor {
        self.chain.cursor.unwrap_or(Cursor::Index)
    }

    /// Moves on to the next track of a multitrack operation (within the extent).
    pub(super) fn next_track(&mut self) -> Result<(), Check> {
        let cur = self.track()?.addr;
        let next = TrackAddr::from_index(cur.index() + 1);
        if next.cyl >= self.image.cylinders() || !self.in_extent(next) {
            return Err(Check::byte1(sense::FILE_PROTECTED));
        }
        self.move_to(next)?;
        // Data operations continue with R1.
        self.chain.cursor = Some(Cursor::AfterRecord(0));
        Ok(())
    }

    /// Index of the next count area to pass, wrapping through the index point (two index
    /// passes without success end in "no record found").
    pub(super) fn next_count(&mut self) -> Result<usize, Check> {
        let n = self.track()?.records.len();
        let next = match self.cursor() {
            Cursor::Index | Cursor::AfterHa => 0,
            Cursor::AfterCount(i) | Cursor::AfterRecord(i) => i + 1,
        };
        if next < n {
            return Ok(next);
        }
        self.chain.index_passes += 1;
        if self.chain.index_passes >= 2 || n == 0 {
            return Err(Check::byte1(sense::NO_RECORD_FOUND));
        }
        Ok(0)
    }

    /// The record whose key/data a Read/Write (Key and) Data acts on: the one whose count was
    /// just passed, or else the next record (R0 is skipped coming from the index; `mt` and
    /// locate domains continue onto the next track).
    pub(super) fn data_record(&mut self, mt: bool) -> Result<usize, Check> {
        let n = self.track()?.records.len();
        let target = match self.cursor() {
            Cursor::AfterCount(i) => i,
            Cursor::Index | Cursor::AfterHa => 1,
            Cursor::AfterRecord(i) => i + 1,
        };
        if target < n {
            return Ok(target);
        }
        if mt || self.chain.domain.is_some() {
            self.next_track()?;
            if self.track()?.records.len() > 1 {
                return Ok(1);
            }
        }
        Err(Check::byte1(sense::NO_RECORD_FOUND))
    }

    pub(super) fn seek(&mut self, data: &mut dyn DataStream) -> CmdResult {
        if self.chain.domain.is_some() {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        let b = recv::<6>(data)?;
        if b[0] != 0 || b[1] != 0 {
            return Err(Check::reject(sense::MSG_INVALID_PARAMETER));
        }
        self.move_to(TrackAddr::from_cchh([b[2], b[3], b[4], b[5]]))?;
        Ok(OK)
    }

    pub(super) fn search_id(&mut self, data: &mut dyn DataStream) -> CmdResult {
        if self.chain.domain.is_some() {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        self.track()?;
        let arg = recv::<5>(data)?;
        let i = self.next_count()?;
        self.chain.cursor = Some(Cursor::AfterCount(i));
        let hit = self.track()?.records[i].count.id() == arg;
        let status = if hit {
            OK | DeviceStatus::STATUS_MODIFIER
        } else {
            OK
        };
        Ok(status)
    }
}
