// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Passthrough tests (placeholder while written).
