// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Indirect data addressing: IDAW formats and list arithmetic (reference §8).

use crate::error::{DecodeError, DecodeReason};

/// The IDAW format and block size a channel program uses (selected by ORB H and T).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdawFormat {
    /// Format-1 IDAWs: 4 bytes, 31-bit addresses, 2 KiB blocks (ORB H = 0).
    Format1,
    /// Format-2 IDAWs: 8 bytes, 64-bit addresses, 2 KiB blocks (ORB H = 1, T = 1).
    Format2K2,
    /// Format-2 IDAWs: 8 bytes, 64-bit addresses, 4 KiB blocks (ORB H = 1, T = 0).
    Format2K4,
}

impl IdawFormat {
    /// Bytes one IDAW block covers.
    pub const fn block_size(self) -> u64 {
        match self {
            IdawFormat::Format1 | IdawFormat::Format2K2 => 2048,
            IdawFormat::Format2K4 => 4096,
        }
    }

    /// Size of one IDAW in the list.
    pub const fn idaw_size(self) -> u64 {
        match self {
            IdawFormat::Format1 => 4,
            IdawFormat::Format2K2 | IdawFormat::Format2K4 => 8,
        }
    }

    /// How many IDAWs a transfer of `count` bytes starting at `addr` needs (at least one, as
    /// the channel fetches the first IDAW even for a zero count).
    ///
    /// ```
    /// use ccw_types::IdawFormat;
    /// // Reference §13.5: 8192 bytes at 0x12345678.
    /// assert_eq!(IdawFormat::Format2K4.idaws_needed(0x12345678, 8192), 3);
    /// assert_eq!(IdawFormat::Format2K2.idaws_needed(0x12345678, 8192), 5);
    /// assert_eq!(IdawFormat::Format2K4.idaws_needed(0x1000, 0), 1);
    /// ```
    pub const fn idaws_needed(self, addr: u64, count: u64) -> u64 {
        let bs = self.block_size();
        let count = if count == 0 { 1 } else { count };
        ((addr & (bs - 1)) + count).div_ceil(bs)
    }

    /// The address each IDAW of a well-formed list for `count` bytes at `addr` holds: `addr`
    /// itself, then the start of every following block.
    ///
    /// ```
    /// use ccw_types::IdawFormat;
    /// let v: Vec<u64> = IdawFormat::Format2K4.idaw_addresses(0x12345678, 8192).collect();
    /// assert_eq!(v, [0x12345678, 0x12346000, 0x12347000]);
    /// ```
    pub fn idaw_addresses(self, addr: u64, count: u64) -> impl Iterator<Item = u64> {
        let bs = self.block_size();
        let n = self.idaws_needed(addr, count);
        (0..n).map(move |i| {
            if i == 0 {
                addr
            } else {
                (addr & !(bs - 1)) + i * bs
            }
        })
    }

    /// Decodes one stored IDAW of this format (big-endian, 4 or 8 bytes): format-1 IDAWs must
    /// have bit 0 clear.
    pub fn decode(self, bytes: &[u8]) -> Result<u64, DecodeError> {
        match self {
            IdawFormat::Format1 => {
                let b: [u8; 4] = crate::error::take("IDAW", bytes)?;
                let v = u32::from_be_bytes(b);
                if v & 0x8000_0000 != 0 {
                    return Err(DecodeError::new(
                        "IDAW",
                        "address",
                        DecodeReason::Reserved { bits: 1 },
                    ));
                }
                Ok(v as u64)
            }
            IdawFormat::Format2K2 | IdawFormat::Format2K4 => {
                let b: [u8; 8] = crate::error::take("IDAW", bytes)?;
                Ok(u64::from_be_bytes(b))
            }
        }
    }
}
