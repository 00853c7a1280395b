// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Basic sense data (command 0x04, up to 32 bytes): device-independent byte 0 and the ECKD
//! meanings of bytes 1 and 2 (reference §4.5).

use core::fmt;

use crate::error::{DecodeError, DecodeReason};
use crate::flags::flag_set;

flag_set! {
    /// Sense byte 0: the device-independent bits (bits 6-7 are device dependent).
    ///
    /// ```
    /// use ccw_types::SenseByte0;
    /// assert_eq!(SenseByte0::from_bits(0x80).to_string(), "CMD_REJ");
    /// assert!(SenseByte0::from_bits(0x50).contains(SenseByte0::EQUIPMENT_CHECK));
    /// ```
    pub struct SenseByte0: 8 bits {
        /// Command reject.
        const COMMAND_REJECT = 0x80, "CMD_REJ";
        /// Intervention required.
        const INTERVENTION_REQUIRED = 0x40, "INTV_REQ";
        /// Bus-out check.
        const BUS_OUT_CHECK = 0x20, "BUS_OUT";
        /// Equipment check.
        const EQUIPMENT_CHECK = 0x10, "EQUIP";
        /// Data check.
        const DATA_CHECK = 0x08, "DATA_CHK";
        /// Overrun.
        const OVERRUN = 0x04, "OVERRUN";
        /// Device dependent (Hercules: control check).
        const DEVICE_DEPENDENT_6 = 0x02, "DD6";
        /// Device dependent (ECKD: incomplete domain; Hercules: operation check).
        const DEVICE_DEPENDENT_7 = 0x01, "DD7";
    }
}

flag_set! {
    /// ECKD DASD sense byte 1.
    ///
    /// ```
    /// use ccw_types::EckdSenseByte1;
    /// assert_eq!(EckdSenseByte1::from_bits(0x88).to_string(), "PERM|NRF");
    /// ```
    pub struct EckdSenseByte1: 8 bits {
        /// Permanent error.
        const PERMANENT_ERROR = 0x80, "PERM";
        /// Invalid track format.
        const INVALID_TRACK_FORMAT = 0x40, "ITF";
        /// End of cylinder.
        const END_OF_CYLINDER = 0x20, "EOC";
        /// Message to operator.
        const MESSAGE_TO_OPERATOR = 0x10, "MTO";
        /// No record found.
        const NO_RECORD_FOUND = 0x08, "NRF";
        /// File protected.
        const FILE_PROTECTED = 0x04, "FP";
        /// Write inhibited.
        const WRITE_INHIBITED = 0x02, "WRI";
        /// Imprecise ending.
        const IMPRECISE_ENDING = 0x01, "IMPRECISE";
    }
}

flag_set! {
    /// ECKD DASD sense byte 2 (bits 0x08, 0x02 and 0x01 are not named in the sources and
    /// print in hex).
    ///
    /// ```
    /// use ccw_types::EckdSenseByte2;
    /// assert_eq!(EckdSenseByte2::from_bits(0x41).to_string(), "CORRECTABLE|0x01");
    /// ```
    pub struct EckdSenseByte2: 8 bits {
        /// Request inhibit write.
        const REQUEST_INHIBIT_WRITE = 0x80, "RIW";
        /// Correctable.
        const CORRECTABLE = 0x40, "CORRECTABLE";
        /// First logged error.
        const FIRST_LOGGED_ERROR = 0x20, "FLE";
        /// Environmental data present.
        const ENVIRONMENTAL_DATA = 0x10, "ENV";
        /// Imprecise ending.
        const IMPRECISE_ENDING = 0x04, "IMPRECISE";
    }
}

/// Basic sense data: 1 to 32 bytes as the device transferred them (fixed capacity, no
/// allocation). Bytes beyond 0-2 are device dependent and kept as they are.
///
/// ```
/// use ccw_types::{BasicSense, SenseByte0};
/// // The real device's concurrent sense after an unknown command: command reject.
/// let sense = BasicSense::parse(&[0x80, 0x00, 0x00, 0x00])?;
/// assert!(sense.byte0().contains(SenseByte0::COMMAND_REJECT));
/// assert_eq!(sense.as_bytes(), &[0x80, 0, 0, 0]);
/// assert_eq!(sense.to_string(), "80000000 (CMD_REJ)");
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BasicSense {
    bytes: [u8; 32],
    len: u8,
}

impl BasicSense {
    /// The most sense bytes a device stores (Linux `SENSE_MAX_COUNT`).
    pub const MAX_LEN: usize = 32;

    /// Sense data from the bytes the device transferred: at least 1, at most 32.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.is_empty() {
            return Err(DecodeError::too_short("sense", 1, 0));
        }
        if bytes.len() > Self::MAX_LEN {
            return Err(DecodeError::new(
                "sense",
                "length",
                DecodeReason::OutOfRange {
                    value: bytes.len() as u64,
                    max: Self::MAX_LEN as u64,
                },
            ));
        }
        let mut out = [0u8; 32];
        out[..bytes.len()].copy_from_slice(bytes);
        Ok(Self {
            bytes: out,
            len: bytes.len() as u8,
        })
    }

    /// The bytes as transferred.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
    /// Byte 0, device-independent bits.
    pub fn byte0(&self) -> SenseByte0 {
        SenseByte0::from_bits(self.bytes[0])
    }
    /// Byte 1 read with ECKD DASD meanings (zero if not transferred).
    pub fn eckd_byte1(&self) -> EckdSenseByte1 {
        EckdSenseByte1::from_bits(self.bytes[1])
    }
    /// Byte 2 read with ECKD DASD meanings (zero if not transferred).
    pub fn eckd_byte2(&self) -> EckdSenseByte2 {
        EckdSenseByte2::from_bits(self.bytes[2])
    }
}

impl fmt::Debug for BasicSense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicSense")
            .field("byte0", &self.byte0())
            .field("bytes", &self.as_bytes())
            .finish()
    }
}

/// The first (up to) 4 bytes in hex, then byte 0's flags: `80000000 (CMD_REJ)`.
impl fmt::Display for BasicSense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes().iter().take(4) {
            write!(f, "{b:02x}")?;
        }
        if self.len > 4 {
            f.write_str("..")?;
        }
        write!(f, " ({})", self.byte0())
    }
}
