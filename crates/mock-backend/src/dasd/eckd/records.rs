// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Record I/O: reads and writes of home address, record zero, counts, keys and data,
//! formatting writes, and marking the track changed for the write-back.

use super::*;

impl Eckd {
    /// Records that the current track was changed; [`Eckd::flush`] writes it.
    pub(super) fn commit(&mut self) -> Result<(), Check> {
        self.chain.dirty = true;
        Ok(())
    }

    pub(super) fn read_ha(&mut self, data: &mut dyn DataStream) -> CmdResult {
        let ha = self.track()?.home_address();
        self.chain.cursor = Some(Cursor::AfterHa);
        send(data, &ha)
    }

    pub(super) fn read_r0(&mut self, data: &mut dyn DataStream) -> CmdResult {
        self.take_domain(&[op::READ_ANY])?;
        let t = self.track()?;
        let r0 = t
            .records
            .first()
            .ok_or(Check::byte1(sense::NO_RECORD_FOUND))?;
        let bytes = ckd_bytes(r0);
        self.chain.cursor = Some(Cursor::AfterRecord(0));
        send(data, &bytes)
    }

    pub(super) fn read_count(&mut self, data: &mut dyn DataStream) -> CmdResult {
        self.take_domain(&[op::READ_DATA, op::READ_ANY])?;
        let i = match self.next_count() {
            Ok(i) => i,
            Err(_) if self.chain.domain.is_some() => {
                self.next_track()?;
                1
            }
            Err(e) => return Err(e),
        };
        // After a move to the next track, R1 may not exist (a track with only R0).
        let c = self
            .track()?
            .records
            .get(i)
            .ok_or(Check::byte1(sense::NO_RECORD_FOUND))?
            .count
            .to_bytes();
        self.chain.cursor = Some(Cursor::AfterCount(i));
        send(data, &c)
    }

    pub(super) fn read(&mut self, data: &mut dyn DataStream, key: bool, mt: bool) -> CmdResult {
        self.take_domain(&[op::READ_DATA, op::READ_ANY])?;
        let i = self.data_record(mt)?;
        let r = &self.track()?.records[i];
        let bytes = if key {
            let mut b = r.key.clone();
            b.extend_from_slice(&r.data);
            b
        } else {
            r.data.clone()
        };
        self.chain.cursor = Some(Cursor::AfterRecord(i));
        send(data, &bytes)
    }

    pub(super) fn read_ckd(&mut self, data: &mut dyn DataStream, mt: bool) -> CmdResult {
        self.take_domain(&[op::READ_DATA, op::READ_ANY])?;
        let n = self.track()?.records.len();
        let mut i = match self.cursor() {
            Cursor::Index | Cursor::AfterHa => 1,
            Cursor::AfterCount(i) | Cursor::AfterRecord(i) => i + 1,
        };
        if i >= n {
            if !(mt || self.chain.domain.is_some()) {
                return Err(Check::byte1(sense::NO_RECORD_FOUND));
            }
            self.next_track()?;
            i = 1;
            if self.track()?.records.len() <= 1 {
                return Err(Check::byte1(sense::NO_RECORD_FOUND));
            }
        }
        let bytes = ckd_bytes(&self.track()?.records[i]);
        self.chain.cursor = Some(Cursor::AfterRecord(i));
        send(data, &bytes)
    }

    pub(super) fn write(&mut self, data: &mut dyn DataStream, key: bool, mt: bool) -> CmdResult {
        self.check_write(false, false)?;
        self.take_domain(&[op::WRITE_DATA])?;
        let i = self.data_record(mt)?;
        let t = self
            .chain
            .track
            .as_mut()
            .ok_or(Check::reject(sense::MSG_INVALID_SEQUENCE))?;
        let r = &mut t.records[i];
        let mut buf = vec![0u8; if key { r.key.len() } else { 0 } + r.data.len()];
        // Short transfers are padded with zeros, as the control unit does; the channel
        // reports the incorrect length.
        data.read(&mut buf)?;
        if key {
            let kl = r.key.len();
            r.key.copy_from_slice(&buf[..kl]);
            r.data.copy_from_slice(&buf[kl..]);
        } else {
            r.data.copy_from_slice(&buf);
        }
        self.commit()?;
        self.chain.cursor = Some(Cursor::AfterRecord(i));
        Ok(OK)
    }

    /// Receives count, key and data of a record being formatted (short transfers are padded
    /// with zeros; the channel reports the incorrect length).
    pub(super) fn receive_record(data: &mut dyn DataStream) -> Result<Record, Check> {
        let cb = recv::<COUNT_LEN>(data)?;
        let count = Count::from_bytes(cb);
        let mut kd = vec![0u8; count.key_len as usize + count.data_len as usize];
        data.read(&mut kd)?;
        let data_part = kd.split_off(count.key_len as usize);
        Ok(Record {
            count,
            key: kd,
            data: data_part,
        })
    }

    pub(super) fn write_ckd(&mut self, data: &mut dyn DataStream) -> CmdResult {
        self.check_write(true, false)?;
        self.take_domain(&[op::FORMAT_WRITE])?;
        let after = match self.cursor() {
            Cursor::AfterCount(i) | Cursor::AfterRecord(i) => i,
            Cursor::Index | Cursor::AfterHa => {
                return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
            }
        };
        let rec = Self::receive_record(data)?;
        if rec.count.record == 0 {
            return Err(Check::reject(sense::MSG_INVALID_PARAMETER));
        }
        let t = self
            .chain
            .track
            .as_mut()
            .ok_or(Check::reject(sense::MSG_INVALID_SEQUENCE))?;
        let mut new = t.clone();
        new.records.truncate(after + 1);
        new.records.push(rec);
        if new.to_slot().is_err() {
            return Err(Check::reject(sense::MSG_TRACK_FULL));
        }
        *t = new;
        self.commit()?;
        self.chain.cursor = Some(Cursor::AfterRecord(after + 1));
        Ok(OK)
    }

    pub(super) fn write_r0(&mut self, data: &mut dyn DataStream) -> CmdResult {
        self.check_write(true, true)?;
        self.take_domain(&[op::FORMAT_WRITE])?;
        if !matches!(self.cursor(), Cursor::Index | Cursor::AfterHa) {
            return Err(Check::reject(sense::MSG_INVALID_SEQUENCE));
        }
        let rec = Self::receive_record(data)?;
        if rec.count.record != 0 {
            return Err(Check::reject(sense::MSG_INVALID_PARAMETER));
        }
        let t = self
            .chain
            .track
            .as_mut()
            .ok_or(Check::reject(sense::MSG_INVALID_SEQUENCE))?;
        t.records = vec![rec];
        self.commit()?;
        self.chain.cursor = Some(Cursor::AfterRecord(0));
        Ok(OK)
    }
}
