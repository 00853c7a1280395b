// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The extended-measurement word and the counter display it shares with the measurement
//! blocks: its own module so the IRB (which stores an EMW) and the measurement blocks (which
//! hold the same times) both depend on it and not on each other.

use core::fmt;

use zerocopy::big_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::block::{reserved_zero, stored_block};
use crate::error::DecodeError;

/// The extended-measurement word (IRB bytes 64-95), stored only in extended-measurement-word
/// mode (PMCW XMWME). The same time fields as a format-1 measurement block; units are model
/// dependent. Layout as Hercules' `esa390.h` names it (the reference digest does not list it).
///
/// ```
/// use ccw_types::Emw;
/// let mut bytes = [0u8; 32];
/// bytes[3] = 7; // device-connect time
/// let emw = Emw::parse(&bytes)?;
/// assert_eq!(emw.device_connect_time.get(), 7);
/// assert_eq!(emw.into_bytes(), bytes);
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Emw {
    /// Device-connect time.
    pub device_connect_time: U32,
    /// Function-pending time.
    pub function_pending_time: U32,
    /// Device-disconnect time.
    pub device_disconnect_time: U32,
    /// Control-unit-queuing time.
    pub cu_queuing_time: U32,
    /// Device-active-only time.
    pub device_active_only_time: U32,
    /// Device-busy time.
    pub device_busy_time: U32,
    /// Initial-command-response time.
    pub initial_command_response_time: U32,
    /// Reserved.
    pub reserved: U32,
}

stored_block!(Emw, "EMW", 32, validate);

impl Emw {
    /// Rejects a non-zero reserved word 7.
    pub fn validate(&self) -> Result<(), DecodeError> {
        reserved_zero("EMW", "word 7", self.reserved.get() as u64)
    }
}

impl Emw {
    /// The time fields as `name=value` pairs (shared with the format-1 measurement block).
    pub(crate) fn write_times(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_counters(
            f,
            &[
                ("connect", self.device_connect_time),
                ("pending", self.function_pending_time),
                ("disconnect", self.device_disconnect_time),
                ("cu-queuing", self.cu_queuing_time),
                ("active-only", self.device_active_only_time),
                ("busy", self.device_busy_time),
                ("icr", self.initial_command_response_time),
            ],
        )
    }
}

impl fmt::Display for Emw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EMW ")?;
        self.write_times(f)
    }
}

/// Writes `name=value` pairs separated by spaces (the measurement displays).
pub(crate) fn write_counters(f: &mut fmt::Formatter<'_>, counters: &[(&str, U32)]) -> fmt::Result {
    for (i, (name, value)) in counters.iter().enumerate() {
        let sep = if i == 0 { "" } else { " " };
        write!(f, "{sep}{name}={}", value.get())?;
    }
    Ok(())
}
