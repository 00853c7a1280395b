// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The simulator from a machine file: a [`MockBuilder`] whose subchannels are the devices of a
//! [`vcss::machine::Machine`] (its format: `docs/machine-format.md`).
//!
//! ```
//! use mock_backend::machine;
//! use vcss::machine::Machine;
//! let m = Machine::parse(
//!     "chpid 00 type=32\n0005 virtio-blk-ccw chpids=00\n0006 test chpids=00\n",
//!     "default.machine".as_ref(),
//! )?;
//! let backend = machine::builder(&m)?.build().unwrap();
//! let ids: Vec<String> = backend.subchannel_ids().iter().map(|s| s.to_string()).collect();
//! assert_eq!(ids, ["0.0.0000", "0.0.0001"]);
//! # Ok::<(), vcss::machine::MachineError>(())
//! ```

use ccw_types::SubchannelId;
use vcss::machine::{DeviceKind, Machine, MachineError, MachineErrorKind};

use crate::backend::{MockBackend, MockBuilder};
use crate::dasd::{CkdImage, Eckd};
use crate::device::DeviceModel;
use crate::devices::{TestDevice, VirtioBlkCcw};

/// A builder holding the devices of `machine` (subchannel numbers, device numbers, CHPIDs as
/// the file gives them); latency, faults, guest memory and the rest are the builder's
/// defaults, to be set by the caller. A 3390's image that cannot be opened (not a CKD image,
/// unreadable) is an error naming the device's line.
pub fn builder(machine: &Machine) -> Result<MockBuilder, MachineError> {
    let mut b = MockBackend::builder();
    for d in &machine.devices {
        let device: Box<dyn DeviceModel> = match &d.kind {
            DeviceKind::VirtioBlk { sectors } => Box::new(VirtioBlkCcw::new(*sectors)),
            DeviceKind::Test { bytes } => Box::new(TestDevice::new(*bytes)),
            DeviceKind::Dasd3390 { image, read_only } => {
                let img = CkdImage::open(image, *read_only).map_err(|e| MachineError {
                    file: machine.source.clone(),
                    line: d.line,
                    kind: MachineErrorKind::MissingImage {
                        path: image.clone(),
                        reason: e.to_string(),
                    },
                })?;
                Box::new(Eckd::new(img, d.devno))
            }
        };
        let sch = SubchannelId::new(0, 0, d.sch_no);
        b = b
            .subchannel_at(sch, d.devno, device)
            .subchannel_chpids(sch, &d.chpids);
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use css_core::Backend;

    #[test]
    fn a_file_that_is_no_ckd_image_is_an_error_on_the_device_line() {
        let dir = std::env::temp_dir().join(format!("mock-machine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("junk.img"), b"not a CKD image").unwrap();
        let m = Machine::parse(
            "chpid 40 type=1b\n\n0190 3390 chpids=40 image=junk.img\n",
            &dir.join("m.machine"),
        )
        .unwrap();
        let e = builder(&m).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            matches!(e.kind, MachineErrorKind::MissingImage { .. }),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn devices_get_the_numbers_and_paths_of_the_file() {
        let m = Machine::parse(
            "chpid 00 type=32\nchpid 40 type=1b\nchpid 41 type=1b\n\
             0005 virtio-blk-ccw chpids=00\n0100 test chpids=41,40 bytes=512\n",
            "m.machine".as_ref(),
        )
        .unwrap();
        let backend = builder(&m).unwrap().build().unwrap();
        let all = backend.probe().await.unwrap();
        assert_eq!(all.len(), 2);
        let (sch, schib) = &all[1];
        assert_eq!(sch.sch_no, 1);
        assert_eq!(schib.pmcw.flags.devno(), 0x0100);
        assert_eq!(schib.pmcw.pim, 0xC0);
        assert_eq!(&schib.pmcw.chpid[..2], &[0x41, 0x40]);
        assert_eq!(all[0].1.pmcw.chpid[0], 0x00);
    }
}
