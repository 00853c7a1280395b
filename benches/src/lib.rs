// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Criterion benchmarks for ccw-rs live in `benches/benches/`; run them with `cargo xtask bench`.
