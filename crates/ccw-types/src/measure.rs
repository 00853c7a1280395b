// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Channel-measurement blocks: format 0 (32 bytes, at `MBO + MBI * 32`) and format 1
//! (64 bytes, at the SCHIB's MBA), reference §5.6.

use core::fmt;

use zerocopy::big_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::block::{reserved_zero, stored_block};
use crate::emw::{Emw, write_counters};
use crate::error::DecodeError;

/// Which measurement-block format a subchannel uses (PMCW MBFC).
///
/// ```
/// use ccw_types::MeasurementFormat;
/// assert_eq!(MeasurementFormat::Format1.block_size(), 64);
/// assert_eq!(MeasurementFormat::Format0.to_string(), "fmt-0");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeasurementFormat {
    /// Format 0: 32 bytes in the block array SET CHANNEL MONITOR designates.
    Format0,
    /// Format 1: 64 bytes at the subchannel's own measurement-block address.
    Format1,
}

impl MeasurementFormat {
    /// Size of one block in bytes.
    pub const fn block_size(self) -> usize {
        match self {
            MeasurementFormat::Format0 => 32,
            MeasurementFormat::Format1 => 64,
        }
    }
}

impl fmt::Display for MeasurementFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MeasurementFormat::Format0 => "fmt-0",
            MeasurementFormat::Format1 => "fmt-1",
        })
    }
}

/// A format-0 channel-measurement block (32 bytes).
///
/// ```
/// use ccw_types::MeasurementBlock0;
/// let mut bytes = [0u8; 32];
/// bytes[1] = 3; // three SSCH/RSCH
/// bytes[4..8].copy_from_slice(&100u32.to_be_bytes()); // device-connect time
/// let mb = MeasurementBlock0::parse(&bytes)?;
/// assert_eq!((mb.ssch_rsch_count.get(), mb.device_connect_time.get()), (3, 100));
/// assert_eq!(mb.to_string(),
///     "CMB0 ssch+rsch=3 samples=0 connect=100 pending=0 disconnect=0 cu-queuing=0 active-only=0");
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct MeasurementBlock0 {
    /// SSCH + RSCH count.
    pub ssch_rsch_count: U16,
    /// Sample count.
    pub sample_count: U16,
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
    /// Reserved words 6-7.
    pub reserved: [U32; 2],
}

/// A format-1 channel-measurement block (64 bytes).
///
/// Words 9 and 10 are named as kvm-unit-tests names them (interruption delay times); the
/// reference digest lists everything after word 8 as reserved, so only words 11-15 are
/// rejected when non-zero.
///
/// ```
/// use ccw_types::MeasurementBlock1;
/// let mut bytes = [0u8; 64];
/// bytes[3] = 1; // one SSCH/RSCH
/// bytes[28..32].copy_from_slice(&5u32.to_be_bytes()); // device-busy time
/// let mb = MeasurementBlock1::parse(&bytes)?;
/// assert_eq!((mb.ssch_rsch_count.get(), mb.device_busy_time.get()), (1, 5));
/// assert_eq!(mb.into_bytes(), bytes);
/// # Ok::<(), ccw_types::DecodeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct MeasurementBlock1 {
    /// SSCH + RSCH count.
    pub ssch_rsch_count: U32,
    /// Sample count.
    pub sample_count: U32,
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
    /// Interruption-delay time (kvm-unit-tests' name; not in the digest).
    pub irq_delay_time: U32,
    /// Interruption-priority-delay time (kvm-unit-tests' name; not in the digest).
    pub irq_priority_delay_time: U32,
    /// Reserved words 11-15.
    pub reserved: [U32; 5],
}

const _: () = assert!(size_of::<MeasurementBlock0>() == 32 && size_of::<MeasurementBlock1>() == 64);

stored_block!(MeasurementBlock0, "CMB0", 32, validate);
stored_block!(MeasurementBlock1, "CMB1", 64, validate);

fn reserved_words(block: &'static str, words: &[U32]) -> Result<(), DecodeError> {
    let any = words.iter().fold(0u64, |acc, w| acc | u64::from(w.get()));
    reserved_zero(block, "reserved words", any)
}

impl MeasurementBlock0 {
    /// Rejects non-zero reserved words 6-7.
    pub fn validate(&self) -> Result<(), DecodeError> {
        reserved_words("CMB0", &self.reserved)
    }
}

impl MeasurementBlock1 {
    /// Words 2-8, the times, in the layout of the extended-measurement word that carries the
    /// same values for one I/O.
    ///
    /// ```
    /// use ccw_types::MeasurementBlock1;
    /// let mut mb = MeasurementBlock1::default();
    /// mb.device_busy_time = 9.into();
    /// assert_eq!(mb.times().device_busy_time.get(), 9);
    /// ```
    pub fn times(&self) -> Emw {
        Emw {
            device_connect_time: self.device_connect_time,
            function_pending_time: self.function_pending_time,
            device_disconnect_time: self.device_disconnect_time,
            cu_queuing_time: self.cu_queuing_time,
            device_active_only_time: self.device_active_only_time,
            device_busy_time: self.device_busy_time,
            initial_command_response_time: self.initial_command_response_time,
            reserved: U32::new(0),
        }
    }

    /// Rejects non-zero reserved words 11-15.
    pub fn validate(&self) -> Result<(), DecodeError> {
        reserved_words("CMB1", &self.reserved)
    }
}

impl fmt::Display for MeasurementBlock0 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CMB0 ssch+rsch={} samples={} ",
            self.ssch_rsch_count.get(),
            self.sample_count.get()
        )?;
        write_counters(
            f,
            &[
                ("connect", self.device_connect_time),
                ("pending", self.function_pending_time),
                ("disconnect", self.device_disconnect_time),
                ("cu-queuing", self.cu_queuing_time),
                ("active-only", self.device_active_only_time),
            ],
        )
    }
}

impl fmt::Display for MeasurementBlock1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CMB1 ssch+rsch={} samples={} ",
            self.ssch_rsch_count.get(),
            self.sample_count.get()
        )?;
        self.times().write_times(f)
    }
}
