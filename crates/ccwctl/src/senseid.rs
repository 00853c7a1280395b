// SPDX-License-Identifier: Apache-2.0 OR MIT

//! SENSE ID data with its command-information words, and basic sense data (reference §9.1,
//! §9.2, §4.5).
//!
//! ```
//! use ccwctl::senseid::SenseId;
//! // A 3990 control unit with a 3390 model 0x0c and one RCD CIW.
//! let id = SenseId::parse(&[0xFF, 0x39, 0x90, 0xE9, 0x33, 0x90, 0x0C, 0x00,
//!                           0x40, 0xFA, 0x01, 0x00])?;
//! assert_eq!((id.cu_type, id.dev_type), (0x3990, 0x3390));
//! assert_eq!(id.ciws[0].command, 0xFA);
//! assert_eq!(id.to_string(), "SenseID cu=3990/e9 dev=3390/0c ciws=[rcd:0xfa/256]");
//! # Ok::<(), ccw_types::DecodeError>(())
//! ```

use std::fmt;

use ccw_types::{DecodeError, DecodeReason};
use serde::Serialize;

/// One command-information word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ciw {
    /// Command type (CT): 0 RCD, 1 SII, 2 RNI, ...
    pub ct: u8,
    /// A name for the command type, when it has one.
    pub kind: Option<&'static str>,
    /// The command code to use.
    pub command: u8,
    /// The byte count to use.
    pub count: u16,
}

/// Decoded SENSE ID data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SenseId {
    /// Control-unit type.
    pub cu_type: u16,
    /// Control-unit model.
    pub cu_model: u8,
    /// Device type (0 when fewer than 6 bytes were stored).
    pub dev_type: u16,
    /// Device model (0 when fewer than 7 bytes were stored).
    pub dev_model: u8,
    /// Command-information words (extended SENSE ID).
    pub ciws: Vec<Ciw>,
    /// How many bytes the data had.
    pub len: usize,
}

fn ciw_kind(ct: u8) -> Option<&'static str> {
    Some(match ct {
        0 => "rcd",
        1 => "sii",
        2 => "rni",
        _ => return None,
    })
}

impl SenseId {
    /// Parses SENSE ID data: at least 4 bytes, byte 0 must be 0xFF; CIWs from byte 8 on until
    /// an entry whose ET is not `01` (or the data ends).
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() < 4 {
            return Err(DecodeError::too_short("SenseID", 4, bytes.len()));
        }
        if bytes[0] != 0xFF {
            return Err(DecodeError::new(
                "SenseID",
                "byte 0",
                DecodeReason::Invalid {
                    value: bytes[0].into(),
                },
            ));
        }
        let get = |i: usize| bytes.get(i).copied().unwrap_or(0);
        let mut ciws = Vec::new();
        for w in bytes.get(8..).unwrap_or(&[]).chunks_exact(4) {
            if w[0] & 0xC0 != 0x40 {
                break;
            }
            let ct = w[0] & 0x0F;
            ciws.push(Ciw {
                ct,
                kind: ciw_kind(ct),
                command: w[1],
                count: u16::from_be_bytes([w[2], w[3]]),
            });
        }
        Ok(Self {
            cu_type: u16::from_be_bytes([get(1), get(2)]),
            cu_model: get(3),
            dev_type: u16::from_be_bytes([get(4), get(5)]),
            dev_model: get(6),
            ciws,
            len: bytes.len(),
        })
    }
}

impl fmt::Display for SenseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SenseID cu={:04x}/{:02x} dev={:04x}/{:02x}",
            self.cu_type, self.cu_model, self.dev_type, self.dev_model
        )?;
        if !self.ciws.is_empty() {
            f.write_str(" ciws=[")?;
            for (i, c) in self.ciws.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                match c.kind {
                    Some(k) => write!(f, "{k}")?,
                    None => write!(f, "ct{}", c.ct)?,
                }
                write!(f, ":{:#04x}/{}", c.command, c.count)?;
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}

/// Decoded basic sense data: the device-independent bits of byte 0 and the raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SenseData {
    /// Names of the byte-0 bits that are set.
    pub byte0: Vec<&'static str>,
    /// All bytes, hex.
    pub bytes: String,
}

const SENSE0: &[(u8, &str)] = &[
    (0x80, "command-reject"),
    (0x40, "intervention-required"),
    (0x20, "bus-out-check"),
    (0x10, "equipment-check"),
    (0x08, "data-check"),
    (0x04, "overrun"),
    (0x02, "bit6"),
    (0x01, "bit7"),
];

impl SenseData {
    /// Parses 1 to 32 bytes of basic sense data.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let Some(&b0) = bytes.first() else {
            return Err(DecodeError::too_short("sense", 1, 0));
        };
        Ok(Self {
            byte0: SENSE0
                .iter()
                .filter(|(m, _)| b0 & m != 0)
                .map(|&(_, n)| n)
                .collect(),
            bytes: crate::decode::hex(bytes),
        })
    }
}

impl fmt::Display for SenseData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sense ")?;
        if self.byte0.is_empty() {
            f.write_str("-")?;
        } else {
            f.write_str(&self.byte0.join("|"))?;
        }
        write!(f, " bytes={}", self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_short_sense_id() {
        let id = SenseId::parse(&[0xFF, 0x38, 0x32, 0x01, 0x00, 0x02]).unwrap();
        assert_eq!(
            (id.cu_type, id.cu_model, id.dev_type, id.dev_model),
            (0x3832, 1, 2, 0)
        );
        assert!(id.ciws.is_empty());
        assert!(SenseId::parse(&[0xFF, 0]).is_err());
        assert!(SenseId::parse(&[0x00, 0, 0, 0]).is_err());
    }

    #[test]
    fn ciws_stop_at_the_first_non_ciw() {
        let id = SenseId::parse(&[
            0xFF, 0x39, 0x90, 0xE9, 0x33, 0x90, 0x0C, 0x00, 0x40, 0xFA, 0x01, 0x00, 0x41, 0x27,
            0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x42, 0x3E, 0x00, 0x40,
        ])
        .unwrap();
        assert_eq!(id.ciws.len(), 2);
        assert_eq!(id.ciws[1].kind, Some("sii"));
    }

    #[test]
    fn sense_byte0() {
        let s = SenseData::parse(&[0x80, 0x00]).unwrap();
        assert_eq!(s.byte0, vec!["command-reject"]);
        assert_eq!(s.to_string(), "sense command-reject bytes=8000");
        assert!(SenseData::parse(&[]).is_err());
    }
}
