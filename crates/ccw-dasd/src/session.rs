// SPDX-License-Identifier: Apache-2.0 OR MIT

//! A DASD driven the way a driver drives it, on any channel subsystem backend: the program is
//! laid out in guest memory ([`lay_out`]) and submitted with css-core's
//! [`Subchannel::submit`], which translates it (IDAWs, pinned pages), starts it on the
//! backend and answers with the final interruption in guest addresses. There is no second
//! I/O pipeline: the simulator (mock-backend) and a real 3390 behind vfio-ccw take the same
//! path.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::sync::Arc;
//! use ccw_dasd::{DasdSession, EckdProgram, LayoutOptions};
//! use mock_backend::MockBackend;
//! use mock_backend::dasd::{CkdImage, CreateOptions, Eckd, Model3390};
//! use vm_memory::{GuestAddress, GuestMemoryMmap};
//! let dir = std::env::temp_dir().join(format!("session-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("doc.3390");
//! # let _ = std::fs::remove_file(&path);
//! let opts = CreateOptions { cylinders: Some(1), volser: Some("DOC001".into()) };
//! let image = CkdImage::create(&path, Model3390::M1, &opts).unwrap();
//! let mem = Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 4 << 20)]).unwrap());
//! let backend = MockBackend::builder()
//!     .subchannel(0x0200, Box::new(Eckd::new(image, 0x0200)))
//!     .guest_memory(&*mem)
//!     .build()
//!     .unwrap();
//! let mut s = DasdSession::open(Arc::new(backend), mem, None).await.unwrap();
//! let out = s.run(&EckdProgram::rdc(), LayoutOptions::default()).await.unwrap();
//! assert!(out.ok(), "{}", out.irb);
//! assert_eq!(&out.inputs[0][3..5], &[0x33, 0x90]);
//! s.close().await.unwrap();
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use ccw_types::{DeviceStatus, Irb, SubchannelId, SubchannelStatus};
use css_core::{Backend, Css, CssError, Subchannel};
use vm_memory::GuestMemoryMmap;

use crate::layout::{LayoutError, LayoutOptions, lay_out};
use crate::program::{EckdProgram, Payload, ProgramCcw};

/// Where programs are laid out in guest memory.
pub const PROGRAM_BASE: u64 = 0x1_0000;
/// How long [`DasdSession::run`] waits for a final interruption unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a program could not be run (as opposed to running and ending with unit check).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The channel subsystem refused an operation (open, START, a closed or gone
    /// subchannel, a backend failure).
    #[error(transparent)]
    Css(CssError),
    /// The program did not fit guest memory.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The translator rejected the program.
    #[error("translation failed: {0}")]
    Translate(CssError),
    /// No final status arrived (the program was cleared).
    #[error("no final status within {0:?}")]
    Timeout(Duration),
    /// The backend presents no subchannel to drive.
    #[error("the backend presents no subchannel")]
    NoSubchannel,
}

impl From<CssError> for SessionError {
    fn from(e: CssError) -> Self {
        match e {
            e @ CssError::Translate { .. } => SessionError::Translate(e),
            e => SessionError::Css(e),
        }
    }
}

/// The class of a [`SessionError`], without its data, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionErrorKind {
    /// The channel subsystem refused an operation ([`SessionError::Css`]).
    Css,
    /// The program did not fit guest memory ([`SessionError::Layout`]).
    Layout,
    /// The translator rejected the program ([`SessionError::Translate`]).
    Translate,
    /// No final status arrived ([`SessionError::Timeout`]).
    Timeout,
    /// No subchannel to drive ([`SessionError::NoSubchannel`]).
    NoSubchannel,
}

impl SessionError {
    /// The class of the error.
    ///
    /// ```
    /// use ccw_dasd::{SessionError, SessionErrorKind};
    /// use std::time::Duration;
    /// assert_eq!(SessionError::Timeout(Duration::from_secs(1)).kind(), SessionErrorKind::Timeout);
    /// ```
    pub fn kind(&self) -> SessionErrorKind {
        match self {
            SessionError::Css(_) => SessionErrorKind::Css,
            SessionError::Layout(_) => SessionErrorKind::Layout,
            SessionError::Translate(_) => SessionErrorKind::Translate,
            SessionError::Timeout(_) => SessionErrorKind::Timeout,
            SessionError::NoSubchannel => SessionErrorKind::NoSubchannel,
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

/// One ECKD device on an open subchannel of a css-core channel subsystem over any backend.
pub struct DasdSession<B: Backend> {
    css: Css<B>,
    sub: Subchannel<B>,
    mem: Arc<GuestMemoryMmap>,
    timeout: Duration,
}

impl<B: Backend> std::fmt::Debug for DasdSession<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DasdSession")
            .field("sch", &self.sub.id())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> DasdSession<B> {
    /// Opens subchannel `sch` (default: the first the backend presents) of `backend`, which
    /// already reaches the guest memory `mem` (mock-backend's `guest_memory`, vfio-backend's
    /// `attach_memory`).
    pub async fn open(
        backend: Arc<B>,
        mem: Arc<GuestMemoryMmap>,
        sch: Option<SubchannelId>,
    ) -> Result<Self, SessionError> {
        let css = Css::new(backend)?;
        let ids = css.probe().await?;
        let sch = match sch {
            Some(s) => s,
            None => *ids.first().ok_or(SessionError::NoSubchannel)?,
        };
        let sub = css.open(sch).await?;
        Ok(DasdSession {
            css,
            sub,
            mem,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Waits at most `timeout` for each program's final status.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The backend (e.g. to inspect a simulated device).
    pub fn backend(&self) -> &Arc<B> {
        self.css.backend()
    }

    /// The subchannel the device is on.
    pub fn subchannel(&self) -> SubchannelId {
        self.sub.id()
    }

    /// The guest memory programs run from.
    pub fn memory(&self) -> &Arc<GuestMemoryMmap> {
        &self.mem
    }

    /// Runs `prog` to its final status. On timeout the program is cleared first.
    pub async fn run(
        &mut self,
        prog: &EckdProgram,
        opts: LayoutOptions,
    ) -> Result<ProgramOutcome, SessionError> {
        let mem: &GuestMemoryMmap = &self.mem;
        let laid = lay_out(prog, mem, PROGRAM_BASE, opts)?;
        let orb = laid.orb.emit();
        let done = match tokio::time::timeout(self.timeout, self.sub.submit(&orb, mem)).await {
            Ok(done) => done?,
            Err(_) => {
                // The timeout is the error reported; a failed clear is traced, not lost.
                if let Err(e) = self.sub.clear().await {
                    tracing::warn!(sch = %self.sub.id(), error = %e, "clear after timeout failed");
                }
                return Err(SessionError::Timeout(self.timeout));
            }
        };
        let inputs = laid.read_inputs(mem)?;
        Ok(ProgramOutcome {
            irb: done.irb,
            inputs,
        })
    }

    /// Runs a basic Sense and returns the 32 sense bytes.
    pub async fn sense(&mut self) -> Result<[u8; 32], SessionError> {
        let mut prog = EckdProgram::default();
        prog.ccws.push(ProgramCcw {
            cmd: 0x04,
            flags: ccw_types::CcwFlags::NONE,
            payload: Payload::In(32),
        });
        let out = self.run(&prog, LayoutOptions::default()).await?;
        let mut s = [0u8; 32];
        let n = out.inputs[0].len().min(32);
        s[..n].copy_from_slice(&out.inputs[0][..n]);
        Ok(s)
    }

    /// Closes the subchannel.
    pub async fn close(self) -> Result<(), SessionError> {
        self.sub.close().await?;
        Ok(())
    }
}
