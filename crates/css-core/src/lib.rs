// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The subchannel layer of ccw-rs: vfio-ccw's subchannel state machine done race-free by
//! construction, a channel-subsystem registry with channel-report processing, and the
//! [`Backend`] trait every channel subsystem implements (the conformance suite every backend
//! runs is the css-conformance crate).
//!
//! # Layers
//! - [`fsm`]: the state machine as a pure function `(state, event) -> (state, action,
//!   outcome)`, cell for cell vfio-ccw's table:
//!
//! | state \ event   | NotOper | IoRequest        | AsyncRequest   | Interrupt      | Open          | Close          |
//! |-----------------|---------|------------------|----------------|----------------|---------------|----------------|
//! | `NotOper`       | nop     | EIO              | EIO            | disable        | nop           | nop            |
//! | `Standby`       | notoper | EIO              | EIO            | disable        | enable        | notoper        |
//! | `Idle`          | notoper | -> `CpProcessing` | halt/clear     | irq            | notoper       | -> `Standby`    |
//! | `CpProcessing`  | notoper | EAGAIN           | EAGAIN         | irq            | notoper       | -> `Standby`    |
//! | `CpPending`     | notoper | EBUSY            | halt/clear     | irq (final -> `Idle`) | notoper | -> `Standby` |
//!
//! - The driver: each subchannel's state sits behind one synchronous lock that is never held
//!   across an `.await`; backend calls happen between two transitions, outside the lock.
//!   Every request gets exactly one answer and every translated program is released exactly
//!   once, whoever (completion, close, removal, not-operational) gets there first. The
//!   locking is model-checked with loom (`cargo xtask loom`).
//! - [`Css`]: the registry (O(1) lookup by subchannel id), probe/open/close/remove with
//!   bounded quiesce, routing of the backend's interruptions, and channel reports: a
//!   subchannel report refreshes the SCHIB (not operational when the device is no longer
//!   valid, removed when the subchannel is gone); channel-path reports and operator varies
//!   update the path masks and are forwarded to the subchannels as CRWs, as `vfio_ccw_drv`
//!   does.
//! - [`Subchannel`]: `submit(orb, guest memory)` translates the guest program (ccw-translate),
//!   starts it, and resolves with the final IRB in guest addresses; intermediate status
//!   arrives on [`Subchannel::events`].
//!
//! # Tracing
//! A `subchannel` span per open subchannel and an `io` span per request (subchannel id,
//! intparm); state transitions are logged at debug level.
#![cfg_attr(loom, allow(dead_code))]
#![cfg_attr(
    not(loom),
    doc = r#"
# Example

```no_run
# async fn example<B: css_core::Backend>(backend: std::sync::Arc<B>,
#     mem: vm_memory::GuestMemoryMmap, orb: ccw_types::Orb) -> Result<(), css_core::CssError> {
use css_core::Css;
let css: Css<B> = Css::new(backend)?;  // translator: ccw-translate's
for sch in css.probe().await? {
    println!("{sch}: {:?}", css.state(sch)?);
}
let sch = "0.0.0000".parse().unwrap();
let sub = css.open(sch).await?;
let done = sub.submit(&orb, &mem).await?;           // final status, guest addresses
println!("intparm {:#x}: {:?}", done.intparm, done.irb.scsw);
sub.close().await?;
# Ok(()) }
```
"#
)]

pub mod backend;
mod core;
mod error;
pub mod fsm;
mod paths;
mod program;
mod registry;
mod schtable;
mod sync;

#[cfg(all(test, loom))]
mod loom_models;
#[cfg(test)]
mod test_support;

#[cfg(not(loom))]
mod css;

pub use crate::core::{IoCompletion, SubchannelEvent};
pub use backend::{
    Backend, BackendError, BackendErrorKind, BackendEvent, ConditionCode, EventPermit,
    EventReceiver, EventSender, event_channel,
};
#[cfg(not(loom))]
pub use css::{Css, CssConfig, Subchannel};
pub use error::{CssError, CssErrorKind};
pub use fsm::{Errno, State};
pub use paths::PathEvent;
pub use program::{HostProgram, Translate, TranslateFailure};
pub use schtable::SubchannelTable;
