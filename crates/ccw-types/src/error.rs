// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The one error type of this crate: which block, which field, and what is wrong with it.

use core::fmt;

/// An architected block failed to decode or encode.
///
/// Every error names the block (`"CCW"`, `"ORB"`, ...) and the field (`"count"`, `"cpa"`, ...)
/// so that a person reading a log line knows exactly which bytes were wrong.
///
/// ```
/// use ccw_types::{Ccw1, CcwFormat, CcwRepr, DecodeReason};
/// // A format-1 CCW whose data address has bit 0 (the 31-bit-mode bit) set.
/// let raw = Ccw1::from_bytes([0x02, 0x00, 0x00, 0x10, 0x80, 0x00, 0x10, 0x00]);
/// let err = CcwRepr::parse(raw.into_bytes(), CcwFormat::Format1).unwrap_err();
/// assert_eq!(err.block, "CCW");
/// assert_eq!(err.field, "data address");
/// assert!(matches!(err.reason, DecodeReason::Reserved { .. }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    /// The architected block, e.g. `"SCSW"`.
    pub block: &'static str,
    /// The field inside the block, e.g. `"function control"`.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: DecodeReason,
}

/// Why a block failed to decode or encode.
///
/// ```
/// use ccw_types::{DecodeReason, Scsw};
/// let err = Scsw::read_from(&[0u8; 4]).unwrap_err();
/// assert_eq!(err.reason, DecodeReason::TooShort { needed: 12, got: 4 });
/// assert_eq!(err.to_string(), "SCSW length: buffer too short (4 bytes, need 12)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeReason {
    /// The buffer is shorter than the block.
    TooShort {
        /// Bytes the block needs.
        needed: usize,
        /// Bytes that were given.
        got: usize,
    },
    /// Bits the architecture reserves (must be zero) are set; `bits` are the offending bits,
    /// right-aligned in the field.
    Reserved {
        /// The offending bits.
        bits: u64,
    },
    /// The field holds a value the architecture does not define.
    Invalid {
        /// The value found.
        value: u64,
    },
    /// The value does not fit the field (for example a 32-bit address in a 24-bit field).
    OutOfRange {
        /// The value that was to be stored.
        value: u64,
        /// The largest value the field can hold.
        max: u64,
    },
    /// Text could not be parsed (bus ids and other textual forms).
    Syntax,
}

impl DecodeError {
    /// The shared kind: always [`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument)
    /// (the bytes or text given are malformed).
    pub const fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::InvalidArgument
    }

    /// An error for `block`'s `field` with `reason`.
    pub const fn new(block: &'static str, field: &'static str, reason: DecodeReason) -> Self {
        Self {
            block,
            field,
            reason,
        }
    }

    /// The buffer given for `block` is `got` bytes long but `needed` are required.
    pub const fn too_short(block: &'static str, needed: usize, got: usize) -> Self {
        Self::new(block, "length", DecodeReason::TooShort { needed, got })
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.block, self.field)?;
        match self.reason {
            DecodeReason::TooShort { needed, got } => {
                write!(f, "buffer too short ({got} bytes, need {needed})")
            }
            DecodeReason::Reserved { bits } => write!(f, "reserved bits set ({bits:#x})"),
            DecodeReason::Invalid { value } => write!(f, "invalid value {value:#x}"),
            DecodeReason::OutOfRange { value, max } => {
                write!(f, "value {value:#x} out of range (max {max:#x})")
            }
            DecodeReason::Syntax => write!(f, "syntax error"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// Copies the first `N` bytes of `bytes` into an array, or fails with [`DecodeReason::TooShort`].
pub(crate) fn take<const N: usize>(
    block: &'static str,
    bytes: &[u8],
) -> Result<[u8; N], DecodeError> {
    match bytes.get(..N) {
        Some(head) => {
            let mut out = [0u8; N];
            out.copy_from_slice(head);
            Ok(out)
        }
        None => Err(DecodeError::too_short(block, N, bytes.len())),
    }
}
