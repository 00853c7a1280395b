// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The control plane of a virtio-blk-ccw device.

use ccw_types::CommandClass;

use crate::device::{
    ChainContext, Command, DataStream, DeviceModel, DeviceOutcome, SenseData, SenseIdData,
};

/// virtio-ccw command codes (reference §9.3, QEMU).
pub(crate) mod vcmd {
    pub(crate) const WRITE_FEAT: u8 = 0x11;
    pub(crate) const READ_FEAT: u8 = 0x12;
    pub(crate) const SET_VQ: u8 = 0x13;
    pub(crate) const WRITE_CONF: u8 = 0x21;
    pub(crate) const READ_CONF: u8 = 0x22;
    pub(crate) const WRITE_STATUS: u8 = 0x31;
    pub(crate) const READ_VQ_CONF: u8 = 0x32;
    pub(crate) const VDEV_RESET: u8 = 0x33;
    pub(crate) const SET_IND: u8 = 0x43;
    pub(crate) const SET_CONF_IND: u8 = 0x53;
    pub(crate) const READ_STATUS: u8 = 0x72;
    pub(crate) const SET_IND_ADAPTER: u8 = 0x73;
    pub(crate) const SET_VIRTIO_REV: u8 = 0x83;
}

/// virtio-ccw control-unit type.
const CU_TYPE: u16 = 0x3832;
/// virtio device id of a block device (the CU model).
const VIRTIO_ID_BLOCK: u8 = 2;
/// Highest virtio-ccw revision the device accepts (QEMU: 2).
const MAX_REVISION: u16 = 2;
/// Queue size QEMU's virtio-blk offers.
const QUEUE_SIZE: u16 = 256;

/// Feature bits offered in word 0 (virtio-blk + transport bits).
const FEATURES_LO: u32 = (1 << 2) // SEG_MAX
    | (1 << 4) // GEOMETRY
    | (1 << 6) // BLK_SIZE
    | (1 << 9) // FLUSH
    | (1 << 10) // TOPOLOGY
    | (1 << 11) // CONFIG_WCE
    | (1 << 24) // NOTIFY_ON_EMPTY
    | (1 << 27) // ANY_LAYOUT
    | (1 << 28) // RING_INDIRECT_DESC
    | (1 << 29); // RING_EVENT_IDX
/// Feature bit 32: VIRTIO_F_VERSION_1 (bit 0 of word 1).
const VERSION_1: u32 = 1;

/// The control plane of a virtio-blk-ccw device, as QEMU's answered (s390x-guest.md).
///
/// | command | code | behaviour |
/// |---|---|---|
/// | SENSE ID | 0xE4 | `ff 38 32 02 00 00 00 00`, zero padded to 256 bytes |
/// | SET_VIRTIO_REV | 0x83 | revision (u16 BE), length (u16 BE); only as the first virtio command after reset, revision ≤ 2, length 0 — else command reject |
/// | READ_FEAT | 0x12 | reads the index byte at offset 4 of the buffer, stores the feature word (u32 LE); word 1 is VERSION_1 only in revision ≥ 1 |
/// | WRITE_FEAT | 0x11 | features (u32 LE) + index; VERSION_1 accepted in revision ≥ 1 |
/// | READ_CONF | 0x22 | configuration space (capacity, size_max, seg_max, geometry, blk_size): big-endian until VERSION_1 is negotiated, then little-endian; at most the CCW count |
/// | WRITE_CONF | 0x21 | accepted, ignored (read-only fields) |
/// | WRITE_STATUS / READ_STATUS | 0x31 / 0x72 | the device status byte |
/// | READ_VQ_CONF | 0x32 | index (u16 BE) in, queue size (u16 BE) out; one queue |
/// | SET_VQ, SET_IND, SET_CONF_IND, SET_IND_ADAPTER | 0x13, 0x43, 0x53, 0x73 | data accepted and recorded; the addresses are guest-physical and the mock runs no virtqueues |
/// | VDEV_RESET | 0x33 | no features, status 0; the revision stays (virtio 1.x 4.3.2.1.1: unset only from subchannel enable) |
/// | anything else | | unit check, sense byte 0 = 0x80 (command reject) |
///
/// ```
/// use mock_backend::{DeviceModel, devices::VirtioBlkCcw};
/// let dev = VirtioBlkCcw::new(131_072); // 64 MiB
/// assert_eq!(&dev.sense_id().unwrap().as_bytes()[..4], &[0xff, 0x38, 0x32, 0x02]);
/// ```
#[derive(Debug, Clone)]
pub struct VirtioBlkCcw {
    capacity: u64,
    revision: Option<u16>,
    guest_features: [u32; 2],
    status: u8,
    sense: SenseData,
    /// Last data of SET_VQ / SET_IND / SET_CONF_IND / SET_IND_ADAPTER, per command.
    recorded: Vec<(u8, Vec<u8>)>,
}

impl VirtioBlkCcw {
    /// A device whose disk has `capacity` 512-byte sectors.
    pub fn new(capacity: u64) -> Self {
        Self {
            capacity,
            revision: None,
            guest_features: [0; 2],
            status: 0,
            sense: SenseData::default(),
            recorded: Vec::new(),
        }
    }

    /// The negotiated revision (`None` before SET_VIRTIO_REV or another virtio command).
    pub fn revision(&self) -> Option<u16> {
        self.revision
    }

    /// Whether the configuration space is little-endian (VERSION_1 negotiated).
    pub fn is_little_endian(&self) -> bool {
        self.guest_features[1] & VERSION_1 != 0
    }

    /// The last data the driver gave with `cmd` (SET_VQ, SET_IND, ...).
    pub fn recorded(&self, cmd: u8) -> Option<&[u8]> {
        self.recorded
            .iter()
            .rev()
            .find(|(c, _)| *c == cmd)
            .map(|(_, d)| d.as_slice())
    }

    fn reject(&mut self) -> DeviceOutcome {
        self.sense = SenseData::command_reject();
        DeviceOutcome::unit_check()
    }

    fn config(&self) -> [u8; 24] {
        let le = self.is_little_endian();
        let mut c = [0u8; 24];
        let u64b = |v: u64| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let u32b = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let u16b = |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        c[0..8].copy_from_slice(&u64b(self.capacity));
        c[8..12].copy_from_slice(&u32b(0)); // size_max
        c[12..16].copy_from_slice(&u32b(u32::from(QUEUE_SIZE) - 2)); // seg_max
        let cylinders = (self.capacity / (16 * 63)).min(u64::from(u16::MAX)) as u16;
        c[16..18].copy_from_slice(&u16b(cylinders));
        c[18] = 16; // heads
        c[19] = 63; // sectors
        c[20..24].copy_from_slice(&u32b(512)); // blk_size
        c
    }

    fn read_all(data: &mut dyn DataStream, max: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; max];
        let n = data.read(&mut buf).ok()?;
        buf.truncate(n);
        Some(buf)
    }
}

impl DeviceModel for VirtioBlkCcw {
    fn sense_id(&self) -> Option<SenseIdData> {
        Some(SenseIdData::basic(CU_TYPE, VIRTIO_ID_BLOCK, 0, 0).padded_to(256))
    }

    fn execute(
        &mut self,
        cmd: &Command,
        data: &mut dyn DataStream,
        _ctx: &mut ChainContext,
    ) -> DeviceOutcome {
        use vcmd::*;
        if cmd.code == SET_VIRTIO_REV {
            if self.revision.is_some() {
                return self.reject();
            }
            let mut b = [0u8; 4];
            match data.read(&mut b) {
                Ok(4) => {}
                Ok(_) => return self.reject(),
                Err(_) => return DeviceOutcome::done(),
            }
            let rev = u16::from_be_bytes([b[0], b[1]]);
            let len = u16::from_be_bytes([b[2], b[3]]);
            if rev > MAX_REVISION || (rev >= 1 && len != 0) {
                return self.reject();
            }
            self.revision = Some(rev);
            return DeviceOutcome::done();
        }
        let known = matches!(
            cmd.code,
            WRITE_FEAT
                | READ_FEAT
                | SET_VQ
                | WRITE_CONF
                | READ_CONF
                | WRITE_STATUS
                | READ_VQ_CONF
                | VDEV_RESET
                | SET_IND
                | SET_CONF_IND
                | READ_STATUS
                | SET_IND_ADAPTER
        );
        if !known {
            return self.reject();
        }
        // Any virtio command other than SET_VIRTIO_REV fixes the revision at 0 (legacy).
        if self.revision.is_none() && cmd.code != VDEV_RESET {
            self.revision = Some(0);
        }
        let rev = self.revision.unwrap_or(0);
        match cmd.code {
            VDEV_RESET => {
                // The revision stays: it is unset only from the time the subchannel is
                // enabled (virtio 1.x, 4.3.2.1.1; QEMU unsets it when the subchannel is
                // disabled), see `enabled`.
                self.guest_features = [0; 2];
                self.status = 0;
                self.recorded.clear();
            }
            READ_FEAT => {
                let mut idx = [0u8; 1];
                let index = match data.peek(4, &mut idx) {
                    Ok(1) => idx[0],
                    _ => 0,
                };
                let word = match index {
                    0 => FEATURES_LO,
                    1 if rev >= 1 => VERSION_1,
                    _ => 0,
                };
                let _ = data.write(&word.to_le_bytes());
                // The index byte stays as the driver wrote it.
                let _ = data.write(&[index]);
            }
            WRITE_FEAT => {
                let mut b = [0u8; 5];
                match data.read(&mut b) {
                    Ok(5) => {
                        let word = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                        match b[4] {
                            0 => self.guest_features[0] = word & FEATURES_LO,
                            1 if rev >= 1 => self.guest_features[1] = word & VERSION_1,
                            _ => {}
                        }
                    }
                    Ok(_) => return self.reject(),
                    // The channel already recorded its check; no sense of the device's own.
                    Err(_) => return DeviceOutcome::done(),
                }
            }
            READ_CONF => {
                let conf = self.config();
                // Like QEMU: transfer at most the count (a shorter read is not an error).
                let n = conf.len().min(data.remaining().max(1));
                let _ = data.write(&conf[..n]);
            }
            WRITE_CONF => {
                let _ = Self::read_all(data, self.config().len());
            }
            WRITE_STATUS => {
                let mut b = [0u8; 1];
                match data.read(&mut b) {
                    Ok(1) => self.status = b[0],
                    Ok(_) => return self.reject(),
                    Err(_) => return DeviceOutcome::done(),
                }
            }
            READ_STATUS => {
                let _ = data.write(&[self.status]);
            }
            READ_VQ_CONF => {
                let mut idx = [0u8; 2];
                if data.peek(0, &mut idx) != Ok(2) || u16::from_be_bytes(idx) != 0 {
                    return self.reject();
                }
                let _ = data.write(&idx);
                let _ = data.write(&QUEUE_SIZE.to_be_bytes());
            }
            _ => {
                // SET_VQ, SET_IND, SET_CONF_IND, SET_IND_ADAPTER: record the driver's data.
                let max = if cmd.code == SET_VQ { 32 } else { 16 };
                if cmd.class == CommandClass::Read {
                    return self.reject();
                }
                match Self::read_all(data, max) {
                    Some(d) => self.recorded.push((cmd.code, d)),
                    None => return DeviceOutcome::done(),
                }
                if self.recorded.len() > 16 {
                    self.recorded.remove(0);
                }
            }
        }
        DeviceOutcome::done()
    }

    fn sense(&mut self) -> SenseData {
        std::mem::take(&mut self.sense)
    }

    /// The clear signal ends the unit-check condition; the virtio state (revision, features)
    /// stays, as in QEMU where only VDEV_RESET or a subsystem reset resets it.
    fn reset(&mut self) {
        self.sense = SenseData::default();
    }

    /// Virtio 1.x, 4.3.2.1.1: the device treats the revision as unset from the time its
    /// subchannel is enabled until the driver sets one; revisions do not persist across
    /// disabling and enabling. VDEV_RESET does not unset it.
    fn enabled(&mut self) {
        self.revision = None;
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }

    fn name(&self) -> &'static str {
        "virtio-blk-ccw"
    }
}
