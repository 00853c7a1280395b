// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Serializable views of SENSE ID data (with its command-information words) and basic sense
//! data; decoding itself is ccw-types' ([`ccw_types::SenseId`], [`ccw_types::BasicSense`]).
//!
//! ```
//! use ccwctl::senseid::SenseIdView;
//! // A 3990 control unit with a 3390 model 0x0c and one RCD CIW.
//! let id = SenseIdView::parse(&[0xFF, 0x39, 0x90, 0xE9, 0x33, 0x90, 0x0C, 0x00,
//!                               0x40, 0xFA, 0x01, 0x00])?;
//! assert_eq!((id.cu_type, id.dev_type), (0x3990, 0x3390));
//! assert_eq!(id.ciws[0].command, 0xFA);
//! assert_eq!(id.summary, "SENSE ID cu=3990/e9 dev=3390/0c ciws=RCD:0xfa/256");
//! # Ok::<(), ccw_types::DecodeError>(())
//! ```

use ccw_types::{BasicSense, DecodeError, EckdSenseByte1, SenseByte0, SenseId};
use serde::Serialize;

/// One command-information word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CiwView {
    /// Command type (CT): 0 RCD, 1 SII, 2 RNI, ...
    pub ct: u8,
    /// The command type's name (`RCD`, `SII`, `RNI`, `CTn`).
    pub kind: String,
    /// The command code to use.
    pub command: u8,
    /// The byte count to use.
    pub count: u16,
}

/// Decoded SENSE ID data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SenseIdView {
    /// One line.
    pub summary: String,
    /// Control-unit type.
    pub cu_type: u16,
    /// Control-unit model.
    pub cu_model: u8,
    /// Device type.
    pub dev_type: u16,
    /// Device model.
    pub dev_model: u8,
    /// Command-information words (extended SENSE ID).
    pub ciws: Vec<CiwView>,
}

impl SenseIdView {
    /// Decodes the bytes a device transferred for SENSE ID.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(Self::from(&SenseId::parse(bytes)?))
    }
}

impl From<&SenseId> for SenseIdView {
    fn from(id: &SenseId) -> Self {
        Self {
            summary: id.to_string(),
            cu_type: id.cu_type,
            cu_model: id.cu_model,
            dev_type: id.dev_type,
            dev_model: id.dev_model,
            ciws: id
                .ciws()
                .iter()
                .map(|c| CiwView {
                    ct: c.ct(),
                    kind: c.ciw_type().to_string(),
                    command: c.cmd(),
                    count: c.count(),
                })
                .collect(),
        }
    }
}

/// Decoded basic sense data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SenseView {
    /// One line.
    pub summary: String,
    /// The device-independent bits of byte 0 that are set.
    pub byte0: String,
    /// Byte 1 read as ECKD DASD sense (meaningful for DASD only).
    pub eckd_byte1: String,
    /// All bytes, hex.
    pub bytes: String,
}

impl SenseView {
    /// Decodes 1 to 32 bytes of basic sense data.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let s = BasicSense::parse(bytes)?;
        let b0: SenseByte0 = s.byte0();
        let b1: EckdSenseByte1 = s.eckd_byte1();
        Ok(Self {
            summary: format!("sense {s}"),
            byte0: b0.to_string(),
            eckd_byte1: b1.to_string(),
            bytes: crate::hex::hex(s.as_bytes()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_sense_id_is_refused() {
        assert!(SenseIdView::parse(&[0xFF, 0]).is_err());
        assert!(SenseIdView::parse(&[0x00, 0, 0, 0, 0, 0, 0]).is_err());
        let id = SenseIdView::parse(&[0xFF, 0x38, 0x32, 0x01, 0x00, 0x02, 0x00]).unwrap();
        assert_eq!((id.cu_type, id.cu_model, id.dev_type), (0x3832, 1, 2));
        assert!(id.ciws.is_empty());
    }

    #[test]
    fn sense_byte0() {
        let s = SenseView::parse(&[0x80, 0x00]).unwrap();
        assert_eq!(s.byte0, "CMD_REJ");
        assert_eq!(s.bytes, "8000");
        assert!(SenseView::parse(&[]).is_err());
    }
}
