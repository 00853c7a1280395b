// SPDX-License-Identifier: Apache-2.0 OR MIT

//! A generic test device with an internal buffer.

use crate::device::{
    ChainContext, Command, DataStream, DeviceModel, DeviceOutcome, SenseData, SenseIdData,
};

/// A generic device for channel edge cases. It holds a buffer of `capacity` bytes and `len`
/// bytes of "record".
///
/// | command | code | behaviour |
/// |---|---|---|
/// | WRITE | 0x01 | stores the data as the record (up to capacity; more data is incorrect length) |
/// | READ | 0x02 | presents the record |
/// | READ BACKWARD | 0x0C | presents the record last byte first |
/// | SEARCH EQUAL | 0x31 | compares the data with the start of the record: equal → status modifier |
/// | UNIT CHECK | 0x27 | unit check with equipment-check sense (0x10), after channel end + device end |
/// | UNIT EXCEPTION | 0x37 | channel end + device end + unit exception |
/// | NOP, SENSE, SENSE ID | 0x03, 0x04, 0xE4 | answered by the channel; SENSE ID: `ff 30 88 01 00 00 00 00` |
/// | anything else | | unit check, command reject |
///
/// ```
/// use mock_backend::devices::TestDevice;
/// let mut dev = TestDevice::new(64);
/// dev.set_record(b"abc");
/// assert_eq!(dev.record(), b"abc");
/// ```
#[derive(Debug, Clone)]
pub struct TestDevice {
    buf: Vec<u8>,
    len: usize,
    sense: SenseData,
}

/// Command codes of the test device beyond the common ones.
pub(crate) mod tcmd {
    pub(crate) const SEARCH_EQUAL: u8 = 0x31;
    pub(crate) const UNIT_CHECK: u8 = 0x27;
    pub(crate) const UNIT_EXCEPTION: u8 = 0x37;
}

impl TestDevice {
    /// A device with an empty record and room for `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Self {
            buf: vec![0; capacity],
            len: 0,
            sense: SenseData::default(),
        }
    }

    /// The current record.
    pub fn record(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Replaces the record (truncated to the capacity).
    pub fn set_record(&mut self, data: &[u8]) {
        let n = data.len().min(self.buf.len());
        self.buf[..n].copy_from_slice(&data[..n]);
        self.len = n;
    }
}

impl DeviceModel for TestDevice {
    fn sense_id(&self) -> Option<SenseIdData> {
        Some(SenseIdData::basic(0x3088, 0x01, 0x0000, 0x00))
    }

    fn execute(
        &mut self,
        cmd: &Command,
        data: &mut dyn DataStream,
        _ctx: &mut ChainContext,
    ) -> DeviceOutcome {
        match cmd.code {
            ccw_types::ccw::cmd::WRITE => {
                // A count larger than the capacity leaves a residual: incorrect length.
                self.len = data.read(&mut self.buf).unwrap_or(0);
                DeviceOutcome::done()
            }
            ccw_types::ccw::cmd::READ => {
                let _ = data.write(&self.buf[..self.len]);
                DeviceOutcome::done()
            }
            ccw_types::ccw::cmd::READ_BACKWARD => {
                let rev: Vec<u8> = self.buf[..self.len].iter().rev().copied().collect();
                let _ = data.write(&rev);
                DeviceOutcome::done()
            }
            tcmd::SEARCH_EQUAL => {
                let mut key = vec![0u8; self.len.max(1)];
                let n = data.read(&mut key).unwrap_or(0);
                if n > 0 && n <= self.len && key[..n] == self.buf[..n] {
                    DeviceOutcome::status_modifier()
                } else {
                    DeviceOutcome::done()
                }
            }
            tcmd::UNIT_CHECK => {
                self.sense = SenseData::with_byte0(SenseData::EQUIPMENT_CHECK);
                DeviceOutcome::unit_check_after_transfer()
            }
            tcmd::UNIT_EXCEPTION => DeviceOutcome::unit_exception(),
            _ => {
                self.sense = SenseData::command_reject();
                DeviceOutcome::unit_check()
            }
        }
    }

    fn sense(&mut self) -> SenseData {
        std::mem::take(&mut self.sense)
    }

    fn reset(&mut self) {
        self.sense = SenseData::default();
    }

    fn name(&self) -> &'static str {
        "test-device"
    }
}
