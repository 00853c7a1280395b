// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Indirect data addressing: IDAW formats and list arithmetic (reference §8).

use core::fmt;

use crate::error::{DecodeError, DecodeReason};

/// The IDAW format and block size a channel program uses (selected by ORB H and T).
///
/// ```
/// use ccw_types::IdawFormat;
/// let f = IdawFormat::from_orb_bits(true, false);
/// assert_eq!(f, IdawFormat::Format2K4);
/// assert_eq!((f.block_size(), f.idaw_size()), (4096, 8));
/// assert_eq!(f.to_string(), "fmt-2 IDAW (4K)");
/// let mut buf = [0u8; 8];
/// assert_eq!(f.encode(0x1_2345_6000, &mut buf)?, 8);
/// assert_eq!(f.decode(&buf)?, 0x1_2345_6000);
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
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
    /// The format ORB bits H (format-2 IDAWs) and T (2 KiB blocks) select; T is meaningful
    /// only with H.
    pub const fn from_orb_bits(format2: bool, k2: bool) -> Self {
        match (format2, k2) {
            (false, _) => IdawFormat::Format1,
            (true, true) => IdawFormat::Format2K2,
            (true, false) => IdawFormat::Format2K4,
        }
    }

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
    /// This is arithmetic only: it does not ask whether the IDAWs can hold the addresses (a
    /// format-1 list cannot reach past 2 GiB); [`IdawFormat::check_transfer`] and
    /// [`IdawFormat::idaw_addresses`] do.
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
        // Saturating: a count near 2^64 cannot overflow (no real transfer is that long).
        (addr & (bs - 1)).saturating_add(count).div_ceil(bs)
    }

    /// The highest address an IDAW of this format can hold: 2^31 - 1 for format 1 (31-bit
    /// addresses, bit 0 must be zero), 2^64 - 1 for format 2.
    pub const fn max_address(self) -> u64 {
        match self {
            IdawFormat::Format1 => 0x7FFF_FFFF,
            IdawFormat::Format2K2 | IdawFormat::Format2K4 => u64::MAX,
        }
    }

    /// Checks that a well-formed IDAW list of this format can describe `count` bytes at
    /// `addr` (at least one byte, as the channel fetches the first IDAW even for a zero
    /// count): every byte of the transfer, and so every block an IDAW designates, must lie at
    /// or below [`IdawFormat::max_address`].
    ///
    /// Architecture (reference §8): a format-1 IDAW holds a 31-bit address, so a transfer
    /// that would continue past 2 GiB needs an IDAW no format-1 list can hold; a real channel
    /// fetching such an IDAW (bit 0 set) ends the program with a program check. Format-2
    /// addresses cannot wrap past 2^64 either. Both are errors here, never a wrapped list.
    ///
    /// ```
    /// use ccw_types::IdawFormat;
    /// assert!(IdawFormat::Format1.check_transfer(0x7FFF_F000, 0x1000).is_ok());
    /// assert!(IdawFormat::Format1.check_transfer(0x7FFF_F000, 0x1001).is_err());
    /// assert!(IdawFormat::Format2K4.check_transfer(u64::MAX, 0).is_ok());
    /// assert!(IdawFormat::Format2K4.check_transfer(u64::MAX, 2).is_err());
    /// ```
    pub fn check_transfer(self, addr: u64, count: u64) -> Result<(), DecodeError> {
        let max = self.max_address();
        let last = addr.checked_add(count.max(1) - 1);
        match last {
            Some(last) if last <= max => Ok(()),
            _ => Err(DecodeError::new(
                "IDAW list",
                "address",
                DecodeReason::OutOfRange {
                    value: last.unwrap_or(u64::MAX),
                    max,
                },
            )),
        }
    }

    /// The address each IDAW of a well-formed list for `count` bytes at `addr` holds: `addr`
    /// itself, then the start of every following block. Fails, as
    /// [`IdawFormat::check_transfer`] does, when no list of this format can describe the
    /// transfer.
    ///
    /// ```
    /// use ccw_types::IdawFormat;
    /// let v: Vec<u64> = IdawFormat::Format2K4.idaw_addresses(0x12345678, 8192)?.collect();
    /// assert_eq!(v, [0x12345678, 0x12346000, 0x12347000]);
    /// // A format-1 list cannot cross 2 GiB.
    /// assert!(IdawFormat::Format1.idaw_addresses(0x7FFF_F800, 0x1000).is_err());
    /// # Ok::<(), ccw_types::DecodeError>(())
    /// ```
    pub fn idaw_addresses(
        self,
        addr: u64,
        count: u64,
    ) -> Result<impl Iterator<Item = u64>, DecodeError> {
        self.check_transfer(addr, count)?;
        let bs = self.block_size();
        let n = self.idaws_needed(addr, count);
        // No overflow: every block start lies at or below the transfer's last byte, which
        // `check_transfer` proved representable.
        Ok((0..n).map(move |i| {
            if i == 0 {
                addr
            } else {
                (addr & !(bs - 1)) + i * bs
            }
        }))
    }

    /// Encodes one IDAW holding `addr` into the start of `out` and returns its size (4 or 8).
    /// Fails if `out` is too short or a format-1 IDAW cannot hold `addr` (31 bits).
    pub fn encode(self, addr: u64, out: &mut [u8]) -> Result<usize, DecodeError> {
        let size = self.idaw_size() as usize;
        let Some(slot) = out.get_mut(..size) else {
            return Err(DecodeError::too_short("IDAW", size, out.len()));
        };
        match self {
            IdawFormat::Format1 => {
                if addr > 0x7FFF_FFFF {
                    return Err(DecodeError::new(
                        "IDAW",
                        "address",
                        DecodeReason::OutOfRange {
                            value: addr,
                            max: 0x7FFF_FFFF,
                        },
                    ));
                }
                slot.copy_from_slice(&(addr as u32).to_be_bytes());
            }
            IdawFormat::Format2K2 | IdawFormat::Format2K4 => {
                slot.copy_from_slice(&addr.to_be_bytes());
            }
        }
        Ok(size)
    }

    /// Checks the address of IDAW number `index` of a list (reference §8.3): the first may
    /// designate any byte; every later one must designate the first byte of a block (for read
    /// backward, `backward`, the last byte of a block).
    ///
    /// ```
    /// use ccw_types::IdawFormat;
    /// let f = IdawFormat::Format2K4;
    /// assert!(f.check_address(0, 0x1234_5678, false).is_ok());
    /// assert!(f.check_address(1, 0x1234_6000, false).is_ok());
    /// assert!(f.check_address(1, 0x1234_6008, false).is_err());
    /// assert!(f.check_address(1, 0x1234_5FFF, true).is_ok());
    /// ```
    pub fn check_address(self, index: usize, addr: u64, backward: bool) -> Result<(), DecodeError> {
        if index == 0 {
            return Ok(());
        }
        let mask = self.block_size() - 1;
        let off = if backward {
            addr.wrapping_add(1) & mask
        } else {
            addr & mask
        };
        if off != 0 {
            return Err(DecodeError::new(
                "IDAW",
                "block alignment",
                DecodeReason::Invalid { value: addr },
            ));
        }
        Ok(())
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

impl fmt::Display for IdawFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdawFormat::Format1 => "fmt-1 IDAW (2K)",
            IdawFormat::Format2K2 => "fmt-2 IDAW (2K)",
            IdawFormat::Format2K4 => "fmt-2 IDAW (4K)",
        })
    }
}
