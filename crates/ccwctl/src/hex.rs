// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Hex text for bytes, shared by the decoders, the SENSE ID views and the reports (and
//! re-exported as `ccwctl::decode::hex`), in a module of its own so they need not import
//! each other for it.

/// Lower-case hex without separators.
///
/// ```
/// assert_eq!(ccwctl::decode::hex(&[0xE4, 0x00, 0x0a]), "e4000a");
/// ```
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
