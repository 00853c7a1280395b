// SPDX-License-Identifier: Apache-2.0 OR MIT

//! A simulated s390 channel subsystem.
//!
//! This crate will hold (issue #4) a software channel subsystem that executes host channel
//! programs with exact SCSW/IRB semantics, device models (a virtio-blk-ccw control device, a
//! generic test device, later an ECKD 3390 DASD) and seeded fault injection. Nothing is
//! implemented yet.
pub mod dasd;
