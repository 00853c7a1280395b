// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The css-core backend over Linux's vfio-ccw driver.
//!
//! This crate will hold (issue #6) the VFIO container/group and iommufd cdev plumbing, the
//! vfio-ccw regions (io, async command, schib, crw), the io/crw/req interrupts as eventfds on
//! tokio, and DMA mapping. Nothing is implemented yet.
