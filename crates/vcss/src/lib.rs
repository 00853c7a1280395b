// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The guest-facing virtual channel subsystem: what a VMM on s390x answers when KVM hands it a
//! guest's I/O instruction.
//!
//! [`Vcss`] holds the virtual subchannels (each a [`sch::SchState`] and a [`Device`]), the
//! floating I/O-interruption queues by ISC and the channel-report-word queue. Each instruction
//! handler is a function of (that state, guest memory, register values / operand address) that
//! stores into guest memory and returns the condition code, or the [`ProgramInterruption`] the
//! VMM injects instead, or [`Unsupported`] for what vcss does not implement.
//!
//! See the crate README for a VMM's integration and the status of every instruction and CHSC
//! command.

pub mod chsc;
mod css;
pub mod device;
pub mod ipl;
pub mod irq;
pub mod machine;
pub mod passthrough;
pub mod sch;

#[cfg(test)]
mod tests;

/// The README's example, compiled and run as a doc test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use css::{EINVAL, Paths, SeiEvent, VIRTIO_CCW_NOTIFY, Vcss, VirtualSubchannel};
pub use css_core::ConditionCode;
pub use device::{Device, Ending, GuestIo, Outcome, SenseData, VirtioNotify};
pub use ipl::{IplError, IplStep, PrefetchIpl};
pub use irq::{CrwQueue, IrqQueues, Notification, Notifier};

use sch::OperandException;

/// A program interruption the instruction raises instead of setting a condition code; the VMM
/// injects it into the vCPU (the instruction is suppressed: nothing was changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramInterruption {
    /// Operand exception: an invalid subchannel-identification word, reserved bits in an
    /// ORB/SCHIB, a CHSC request length out of range, a facility not installed.
    #[error("{0}")]
    Operand(OperandException),
    /// Specification exception: an operand not on its required boundary.
    #[error("specification exception: {0}")]
    Specification(&'static str),
    /// Addressing exception: the operand names storage the guest does not have.
    #[error("addressing exception at {0:#x}")]
    Addressing(u64),
    /// Protection exception: the operand is to be stored into storage the guest memory
    /// reports read-only (vm-memory [`Permissions`](vm_memory::Permissions)). Storage keys are
    /// not modelled: a VMM that keeps them checks them before calling vcss.
    #[error("protection exception at {0:#x}")]
    Protection(u64),
}

/// What vcss does not implement: a clear refusal, never a made-up answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} is not supported by vcss: {why}")]
pub struct Unsupported {
    /// The instruction or function.
    pub what: &'static str,
    /// Why.
    pub why: &'static str,
}

impl Unsupported {
    /// `what` is unsupported because `why`.
    pub const fn new(what: &'static str, why: &'static str) -> Self {
        Self { what, why }
    }
}

/// The result of an instruction handler other than a condition code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstrError {
    /// Inject this program interruption.
    #[error(transparent)]
    Program(#[from] ProgramInterruption),
    /// Not implemented by vcss.
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
}
