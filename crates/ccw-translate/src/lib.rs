// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Zero-copy translation of s390 channel programs from a guest's address space to the
//! device address space of a backend.
//!
//! The translator itself (issue #3) is not implemented yet. What exists is the [`Mapper`]
//! contract through which backends give the translator device addresses for guest ranges and
//! control memory for host programs.

pub mod mapper;

pub use mapper::{ControlArea, DeviceAddr, DmaAccess, GuestRange, MapError, Mapper};
