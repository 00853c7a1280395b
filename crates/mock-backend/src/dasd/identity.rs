// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The identification blocks the simulated 3390 behind a 3990 answers with. The byte layouts
//! of SENSE ID, Read Device Characteristics and Read Configuration Data follow the 3990
//! storage-control reference as Linux's `dasd_eckd` reads them.

use super::model::Model3390;
use ccw_types::eckd::{CMD_RCD, DEVICE_TYPE, HEADS, RCD_LEN, RDC_LEN, ascii_to_ebcdic};

/// Control-unit type the model presents (3990 storage control).
pub const CU_TYPE: u16 = 0x3990;
/// Control-unit model byte (3990 model 6, enhanced mode).
pub const CU_MODEL: u8 = 0xE9;

/// The 3390's identification data: SENSE ID, Read Device Characteristics, Read
/// Configuration Data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// The model presented.
    pub model: Model3390,
    /// Cylinders actually present in the image.
    pub cylinders: u32,
    /// Device number (used as the unit address in the configuration data).
    pub devno: u16,
}

impl Identity {
    /// SENSE ID data: `FF`, CU type/model, device type/model, `00`, then one CIW announcing
    /// Read Configuration Data (`0x40FA0100`). 12 bytes.
    pub fn sense_id(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0] = 0xFF;
        b[1..3].copy_from_slice(&CU_TYPE.to_be_bytes());
        b[3] = CU_MODEL;
        b[4..6].copy_from_slice(&DEVICE_TYPE.to_be_bytes());
        b[6] = self.model.model_byte();
        // CIW: ET=01, CT=0 (RCD), command 0xFA, count 256.
        b[8..12].copy_from_slice(&[0x40, CMD_RCD, 0x01, 0x00]);
        b
    }

    /// The 64 bytes of Read Device Characteristics (the layout Linux's
    /// `dasd_eckd_characteristics` reads).
    pub fn rdc(&self) -> [u8; RDC_LEN] {
        let mut d = [0u8; RDC_LEN];
        d[0..2].copy_from_slice(&CU_TYPE.to_be_bytes());
        d[2] = CU_MODEL;
        d[3..5].copy_from_slice(&DEVICE_TYPE.to_be_bytes());
        d[5] = self.model.model_byte();
        // Facilities: locate record read supported (byte 6 bit 3); record and track cache.
        d[6] = 0x10;
        d[9] = 0x30;
        d[10] = 0x20; // device class: DASD
        d[11] = self.model.type_code();
        // Primary cylinders; volumes above 65520 cylinders report 0xFFFE and the long count.
        let short = if self.cylinders > 0xFFF0 {
            0xFFFE
        } else {
            self.cylinders as u16
        };
        d[12..14].copy_from_slice(&short.to_be_bytes());
        d[14..16].copy_from_slice(&HEADS.to_be_bytes());
        d[16] = 224; // sectors per track
        d[17..20].copy_from_slice(&58786u32.to_be_bytes()[1..]); // track capacity
        d[20..22].copy_from_slice(&1428u16.to_be_bytes()); // HA + R0 bytes
        d[22] = 0x02; // track capacity formula 2 and its factors
        d[23..28].copy_from_slice(&[34, 19, 9, 6, 116]);
        d[40] = self.model.type_code(); // MDR record id
        d[41] = self.model.type_code(); // OBR record id
        d[42] = 0x15; // CU type code
        d[43] = 0x02; // parameter length
        d[44..46].copy_from_slice(&57326u16.to_be_bytes()); // maximum record zero
        d[47] = 0x01; // track set
        d[48] = 6; // factor 6
        d[49..51].copy_from_slice(&0x7708u16.to_be_bytes()); // RPS factors
        d[57] = 0xFF; // real device type: array (no alternate tracks to manage)
        d[60..64].copy_from_slice(&self.cylinders.to_be_bytes());
        d
    }

    /// The 256 bytes of Read Configuration Data: node-element descriptors for the device,
    /// the string, the storage director and the subsystem, then a general node-element
    /// qualifier with the unit address.
    pub fn rcd(&self) -> [u8; RCD_LEN] {
        let mut b = [0u8; RCD_LEN];
        let ned = |b: &mut [u8], flags: [u8; 4], text: &str| {
            b[0..4].copy_from_slice(&flags);
            for (dst, c) in b[4..30].iter_mut().zip(text.bytes()) {
                *dst = ascii_to_ebcdic(c);
            }
            b[30..32].copy_from_slice(&[0x03, 0x00]);
        };
        let dev = format!(
            "  {:04X}0{:02X}CCWRS000000000001",
            DEVICE_TYPE,
            self.model.model_byte()
        );
        let cu = format!("  {:04X}0{:02X}CCWRS000000000001", CU_TYPE, CU_MODEL);
        let ss = format!("  {:04X}   CCWRS000000000001", CU_TYPE);
        ned(&mut b[0..32], [0xC4, 0x01, 0x01, 0x00], &dev);
        ned(&mut b[32..64], [0xC4, 0x00, 0x00, 0x00], &dev);
        ned(&mut b[64..96], [0xD4, 0x02, 0x00, 0x00], &cu);
        ned(&mut b[96..128], [0xF0, 0x00, 0x00, 0x01], &ss);
        // General NEQ.
        b[224] = 0x80;
        b[230] = 0x1E; // primary missing-interrupt interval
        b[232..234].copy_from_slice(&0x0001u16.to_be_bytes()); // subsystem id
        b[234] = 0x80;
        let ua = (self.devno & 0xFF) as u8;
        b[235] = ua; // unit address
        b[236] = ua;
        b[237] = ua;
        b[241] = 0x80;
        b[242] = 0x80;
        b[243] = ua;
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rdc_fields_sit_where_linux_reads_them() {
        let id = Identity {
            model: Model3390::M3,
            cylinders: 3339,
            devno: 0x0123,
        };
        let d = id.rdc();
        assert_eq!(&d[0..2], &[0x39, 0x90]);
        assert_eq!(&d[3..5], &[0x33, 0x90]);
        assert_eq!(d[5], 0x0A);
        assert_eq!(u16::from_be_bytes([d[12], d[13]]), 3339);
        assert_eq!(u16::from_be_bytes([d[14], d[15]]), 15);
        assert_eq!(u32::from_be_bytes([d[60], d[61], d[62], d[63]]), 3339);
        let big = Identity {
            cylinders: 65521,
            ..id
        };
        assert_eq!(u16::from_be_bytes([big.rdc()[12], big.rdc()[13]]), 0xFFFE);
    }

    #[test]
    fn sense_id_announces_rcd() {
        let id = Identity {
            model: Model3390::M9,
            cylinders: 10017,
            devno: 1,
        };
        let s = id.sense_id();
        assert_eq!(s[..8], [0xFF, 0x39, 0x90, 0xE9, 0x33, 0x90, 0x0C, 0x00]);
        assert_eq!(s[8..], [0x40, 0xFA, 0x01, 0x00]);
        let r = id.rcd();
        assert_eq!(r[0], 0xC4);
        assert_eq!(r[235], 1);
    }
}
