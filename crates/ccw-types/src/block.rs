// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The boilerplate every fixed-size stored block shares: conversion from and to its bytes, a
//! length-checked read from a slice, and (for blocks that validate themselves) `parse`.

/// Implements `LEN`, `from_bytes`, `into_bytes` and `read_from` for a zerocopy block of `$n`
/// bytes; with `validate`, also `parse` (read, then `Self::validate`).
macro_rules! stored_block {
    ($t:ty, $name:literal, $n:literal) => {
        impl $t {
            /// Size of the block in bytes.
            pub const LEN: usize = $n;

            /// The block stored in `bytes` (every bit pattern is accepted; see `parse` where a
            /// block has reserved bits).
            pub fn from_bytes(bytes: [u8; $n]) -> Self {
                zerocopy::transmute!(bytes)
            }
            /// The bytes as stored (big-endian architected fields).
            pub fn into_bytes(self) -> [u8; $n] {
                zerocopy::transmute!(self)
            }
            /// The block at the start of `bytes`; fails only if `bytes` is too short.
            pub fn read_from(bytes: &[u8]) -> Result<Self, $crate::DecodeError> {
                $crate::error::take::<$n>($name, bytes).map(Self::from_bytes)
            }
        }
    };
    ($t:ty, $name:literal, $n:literal, validate) => {
        $crate::block::stored_block!($t, $name, $n);
        impl $t {
            /// The validated level: reads the block from the start of `bytes` and rejects
            /// reserved bits and undefined values (see `validate`) with an error naming the field.
            pub fn parse(bytes: &[u8]) -> Result<Self, $crate::DecodeError> {
                let block = Self::read_from(bytes)?;
                block.validate()?;
                Ok(block)
            }
        }
    };
}
pub(crate) use stored_block;

/// Fails with [`DecodeReason::Reserved`](crate::DecodeReason::Reserved) for `block`'s `field`
/// when `bits` is not zero.
pub(crate) fn reserved_zero(
    block: &'static str,
    field: &'static str,
    bits: u64,
) -> Result<(), crate::DecodeError> {
    if bits == 0 {
        Ok(())
    } else {
        Err(crate::DecodeError::new(
            block,
            field,
            crate::DecodeReason::Reserved { bits },
        ))
    }
}

/// Writes `bits` as `NAME|NAME`, `-` when none is set, for a list of `(set, name)` pairs.
pub(crate) fn write_names(
    f: &mut core::fmt::Formatter<'_>,
    names: &[(bool, &str)],
) -> core::fmt::Result {
    let mut any = false;
    for &(set, name) in names {
        if set {
            if any {
                f.write_str("|")?;
            }
            f.write_str(name)?;
            any = true;
        }
    }
    if !any {
        f.write_str("-")?;
    }
    Ok(())
}
