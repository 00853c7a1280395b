// SPDX-License-Identifier: Apache-2.0 OR MIT

//! A 3390 on the simulated channel subsystem, driven the way a driver drives it: the program
//! is laid out in guest memory ([`lay_out`]), translated by ccw-translate's [`Translator`]
//! into a host program (IDAWs, pinned pages), started on a [`MockBackend`] subchannel, and
//! the final interruption is awaited and translated back to guest addresses.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use mock_backend::dasd::{CkdImage, CreateOptions, DasdSession, EckdProgram, LayoutOptions, Model3390, TrackAddr};
//! let dir = std::env::temp_dir().join(format!("session-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("doc.3390");
//! # let _ = std::fs::remove_file(&path);
//! let opts = CreateOptions { cylinders: Some(1), volser: Some("DOC001".into()) };
//! let image = CkdImage::create(&path, Model3390::M1, &opts).unwrap();
//! let mut s = DasdSession::new(image, 0x0200).await.unwrap();
//! let out = s.run(&EckdProgram::rdc(), LayoutOptions::default()).await.unwrap();
//! assert!(out.ok(), "{}", out.irb);
//! assert_eq!(&out.inputs[0][3..5], &[0x33, 0x90]);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use ccw_translate::{Limits, Translator};
use ccw_types::{DeviceStatus, Irb, SubchannelId, SubchannelStatus};
use css_core::{Backend, BackendError, BackendEvent, ConditionCode, EventReceiver};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::eckd::Eckd;
use super::image::CkdImage;
use super::layout::{LayoutError, LayoutOptions, lay_out, lay_out_native};
use super::program::EckdProgram;
use crate::MockBackend;

/// Guest memory of a session.
const GUEST_SIZE: usize = 4 << 20;
/// Where programs are laid out in guest memory.
const PROGRAM_BASE: u64 = 0x1_0000;
/// How long to wait for a final interruption.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a program could not be run (as opposed to running and ending with unit check).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The backend refused an operation.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The program did not fit guest memory.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The translator rejected the program.
    #[error("translation failed: {0}")]
    Translate(#[from] ccw_translate::TranslateError),
    /// START SUBCHANNEL did not accept the program.
    #[error("start subchannel: condition code {0:?}")]
    Start(ConditionCode),
    /// No final status arrived.
    #[error("no final status within {0:?}")]
    Timeout(Duration),
    /// Guest memory could not be created.
    #[error("guest memory: {0}")]
    Memory(String),
}

/// The class of a [`SessionError`], without its data, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionErrorKind {
    /// The backend refused an operation ([`SessionError::Backend`]).
    Backend,
    /// The program did not fit guest memory ([`SessionError::Layout`]).
    Layout,
    /// The translator rejected the program ([`SessionError::Translate`]).
    Translate,
    /// START SUBCHANNEL did not accept the program ([`SessionError::Start`]).
    Start,
    /// No final status arrived ([`SessionError::Timeout`]).
    Timeout,
    /// Guest memory could not be created ([`SessionError::Memory`]).
    Memory,
}

impl SessionError {
    /// The class of the error.
    ///
    /// ```
    /// use mock_backend::dasd::{SessionError, SessionErrorKind};
    /// use std::time::Duration;
    /// assert_eq!(SessionError::Timeout(Duration::from_secs(1)).kind(), SessionErrorKind::Timeout);
    /// ```
    pub fn kind(&self) -> SessionErrorKind {
        match self {
            SessionError::Backend(_) => SessionErrorKind::Backend,
            SessionError::Layout(_) => SessionErrorKind::Layout,
            SessionError::Translate(_) => SessionErrorKind::Translate,
            SessionError::Start(_) => SessionErrorKind::Start,
            SessionError::Timeout(_) => SessionErrorKind::Timeout,
            SessionError::Memory(_) => SessionErrorKind::Memory,
        }
    }
}

/// How a program ended.
#[derive(Debug, Clone)]
pub struct ProgramOutcome {
    /// The final IRB (SCSW with guest addresses).
    pub irb: Irb,
    /// The bytes each `In` command of the program received, in order.
    pub inputs: Vec<Vec<u8>>,
}

impl ProgramOutcome {
    /// Whether the program ended normally: channel end + device end, no subchannel status.
    pub fn ok(&self) -> bool {
        let s = &self.irb.scsw;
        DeviceStatus::from_bits(s.dstat) == (DeviceStatus::CHANNEL_END | DeviceStatus::DEVICE_END)
            && SubchannelStatus::from_bits(s.cstat).is_empty()
    }
    /// Whether the device ended the program with unit check.
    pub fn unit_check(&self) -> bool {
        DeviceStatus::from_bits(self.irb.scsw.dstat).contains(DeviceStatus::UNIT_CHECK)
    }
}

/// One ECKD device on its own simulated channel subsystem.
#[derive(Debug)]
pub struct DasdSession {
    backend: MockBackend,
    sch: SubchannelId,
    mem: GuestMemoryMmap,
    events: EventReceiver,
    translator: Translator,
}

impl DasdSession {
    /// Attaches `image` as device number `devno` on subchannel 0.0.0000 and enables it.
    pub async fn new(image: CkdImage, devno: u16) -> Result<Self, SessionError> {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), GUEST_SIZE)])
            .map_err(|e| SessionError::Memory(e.to_string()))?;
        let backend = MockBackend::builder()
            .subchannel(devno, Box::new(Eckd::new(image, devno)))
            .guest_memory(&mem)
            .build()?;
        let sch = SubchannelId::new(0, 0, 0);
        let events = backend.take_events()?;
        backend.enable(sch, 0xD5D0_0000).await?;
        Ok(DasdSession {
            backend,
            sch,
            mem,
            events,
            translator: Translator::new(Limits::default()),
        })
    }

    /// The backend (e.g. to inspect the device with [`MockBackend::with_device`]).
    pub fn backend(&self) -> &MockBackend {
        &self.backend
    }

    /// The subchannel the device is on.
    pub fn subchannel(&self) -> SubchannelId {
        self.sch
    }

    /// Runs `prog` to its final status.
    pub async fn run(
        &mut self,
        prog: &EckdProgram,
        opts: LayoutOptions,
    ) -> Result<ProgramOutcome, SessionError> {
        let laid = lay_out(prog, &self.mem, PROGRAM_BASE, opts)?;
        let orb = laid.orb.emit();
        let mapper: Arc<dyn ccw_translate::Mapper> = self.backend.mapper(self.sch)?;
        let cp = self.translator.translate(&orb, &self.mem, &*mapper, 0x80)?;
        let mut irb = match self.start_and_wait(&cp.host_orb()).await {
            Ok(irb) => irb,
            Err(e) => {
                cp.release(&*mapper);
                return Err(e);
            }
        };
        cp.update_scsw(&mut irb.scsw);
        cp.release(&*mapper);
        let inputs = laid.read_inputs(&self.mem)?;
        Ok(ProgramOutcome { irb, inputs })
    }

    /// Runs `prog` the way a driver on the channel subsystem itself does (no guest, no
    /// translation): CCWs and IDALs in control memory, data pinned in guest memory
    /// ([`lay_out_native`]). Reads never data chain (`data_chain_reads` off) unless asked.
    pub async fn run_native(
        &mut self,
        prog: &EckdProgram,
        data_chain_reads: bool,
    ) -> Result<ProgramOutcome, SessionError> {
        let mapper: Arc<dyn ccw_translate::Mapper> = self.backend.mapper(self.sch)?;
        let native = lay_out_native(prog, &self.mem, PROGRAM_BASE, &*mapper, data_chain_reads)?;
        let orb = native.orb.emit();
        let irb = match self.start_and_wait(&orb).await {
            Ok(irb) => irb,
            Err(e) => {
                native.release(&*mapper);
                return Err(e);
            }
        };
        let inputs = native.read_inputs(&self.mem);
        native.release(&*mapper);
        Ok(ProgramOutcome {
            irb,
            inputs: inputs?,
        })
    }

    /// Starts a host ORB and waits for the final status (host addresses); on timeout the
    /// program is cleared.
    async fn start_and_wait(&mut self, orb: &ccw_types::Orb) -> Result<Irb, SessionError> {
        let cc = self.backend.start(self.sch, orb).await?;
        if cc != ConditionCode::Cc0 {
            return Err(SessionError::Start(cc));
        }
        loop {
            match tokio::time::timeout(TIMEOUT, self.events.recv()).await {
                Ok(Some(BackendEvent::Interrupt { sch, irb })) if sch == self.sch => {
                    if irb.scsw.is_final() {
                        return Ok(irb);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    // The timeout is the error reported; a failed clear (the program may
                    // still be running when its buffers are released) is traced, not lost.
                    if let Err(e) = self.backend.clear(self.sch).await {
                        tracing::warn!(sch = %self.sch, error = %e, "clear after timeout failed");
                    }
                    return Err(SessionError::Timeout(TIMEOUT));
                }
            }
        }
    }

    /// Runs a basic Sense and returns the 32 sense bytes.
    pub async fn sense(&mut self) -> Result<[u8; 32], SessionError> {
        let mut prog = EckdProgram::default();
        prog.ccws.push(super::program::ProgramCcw {
            cmd: 0x04,
            flags: ccw_types::CcwFlags::NONE,
            payload: super::program::Payload::In(32),
        });
        let out = self.run(&prog, LayoutOptions::default()).await?;
        let mut s = [0u8; 32];
        let n = out.inputs[0].len().min(32);
        s[..n].copy_from_slice(&out.inputs[0][..n]);
        Ok(s)
    }
}
