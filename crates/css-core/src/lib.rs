// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The subchannel layer of ccw-rs.
//!
//! This crate will hold (issue #5) the vfio-ccw subchannel state machine as a pure transition
//! table plus a driver, the channel-subsystem registry with channel-report processing, and the
//! backend conformance suite. What exists now is the [`Backend`] trait that abstracts a
//! channel subsystem.

pub mod backend;

pub use backend::{
    Backend, BackendError, BackendErrorKind, BackendEvent, ConditionCode, EventReceiver,
};
