// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The seam between the driver and a channel-program translator.
//!
//! The driver needs three things from a translated program: the host ORB to start, the
//! mapping of the final SCSW back to guest addresses, and the answer to a DMA-unmap
//! notification. A program owns what it pinned and allocated and gives it back when it is
//! dropped (ccw-translate's `ChannelProgram` holds its mapper for that): the driver's only
//! duty is to drop each program once the channel is done with it, which ownership makes
//! exactly once. ccw-translate's `Translator` implements [`Translate`]; tests can plug in
//! their own.

use std::sync::Arc;

use ccw_translate::{GuestRange, Mapper};
use ccw_types::{Errno, ErrorKind, Orb, Scsw, SubchannelStatus};
use vm_memory::GuestMemory;

/// A translated channel program, owned by the driver while it runs. Dropping it releases
/// everything it holds (pins, control memory); the driver drops it only once the channel no
/// longer uses it (final status, a start that did not happen, a finished quiesce or clear).
pub trait HostProgram: Send + 'static {
    /// The ORB to pass to START SUBCHANNEL (program in the backend's device space).
    fn host_orb(&self) -> Orb;
    /// Rewrites host channel-program addresses in `scsw` to the guest's.
    fn update_scsw(&self, scsw: &mut Scsw);
    /// Whether the program has pinned any byte of the guest range `range` (what a DMA-unmap
    /// notification asks: [`crate::Css::unmap_guest_range`]).
    fn is_pinned(&self, range: GuestRange) -> bool;
}

/// Why a translation failed, in the terms a subchannel answers with.
pub trait TranslateFailure: std::error::Error + Send + Sync + 'static {
    /// The errno vfio-ccw returns for this failure.
    fn errno(&self) -> Errno;
    /// The shared classification of this failure.
    fn kind(&self) -> ErrorKind;
    /// The subchannel status a real channel subsystem would present instead, if any
    /// (usually program check).
    fn program_check(&self) -> Option<SubchannelStatus>;
}

/// A channel-program translator with reusable scratch state (one per subchannel in use).
pub trait Translate: Send + 'static {
    /// The translated program.
    type Program: HostProgram;
    /// The translation error.
    type Error: TranslateFailure;
    /// A translator with the default (kernel-compatible) limits.
    fn create() -> Self;
    /// Translates the guest program `orb` (command mode) found in `mem`, pinning its data
    /// through `mapper` (which the program keeps, to release into when dropped).
    /// `lpm_default` replaces a logical-path mask of 0.
    fn translate<M: GuestMemory + ?Sized>(
        &mut self,
        orb: &Orb,
        mem: &M,
        mapper: Arc<dyn Mapper>,
        lpm_default: u8,
    ) -> Result<Self::Program, Self::Error>;
}

/// ccw-translate's translator: the default of [`crate::Css`].
impl Translate for ccw_translate::Translator {
    type Program = ccw_translate::ChannelProgram;
    type Error = ccw_translate::TranslateError;

    fn create() -> Self {
        ccw_translate::Translator::new(ccw_translate::Limits::default())
    }

    fn translate<M: GuestMemory + ?Sized>(
        &mut self,
        orb: &Orb,
        mem: &M,
        mapper: Arc<dyn Mapper>,
        lpm_default: u8,
    ) -> Result<Self::Program, Self::Error> {
        ccw_translate::Translator::translate(self, orb, mem, mapper, lpm_default)
    }
}

impl HostProgram for ccw_translate::ChannelProgram {
    fn host_orb(&self) -> Orb {
        ccw_translate::ChannelProgram::host_orb(self)
    }
    fn update_scsw(&self, scsw: &mut Scsw) {
        ccw_translate::ChannelProgram::update_scsw(self, scsw);
    }
    fn is_pinned(&self, range: GuestRange) -> bool {
        ccw_translate::ChannelProgram::is_pinned(self, range)
    }
}

impl TranslateFailure for ccw_translate::TranslateError {
    fn errno(&self) -> Errno {
        ccw_translate::TranslateError::errno(self)
    }
    fn kind(&self) -> ErrorKind {
        ccw_translate::TranslateError::kind(self)
    }
    fn program_check(&self) -> Option<SubchannelStatus> {
        ccw_translate::TranslateError::program_check(self)
    }
}
