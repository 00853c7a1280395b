// SPDX-License-Identifier: Apache-2.0 OR MIT

//! Small bit-set newtypes for status bytes and control fields.
//!
//! Written by hand (a `macro_rules!`) rather than with the `bitflags` crate so that the sets plug
//! straight into `bitfield-struct` fields (which need `const fn from_bits/into_bits`) and print
//! in the architecture's short names (`CE|DE`).

/// Defines a `Copy` bit-set newtype over `u8` with named constants.
macro_rules! flag_set {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident: $bits:literal bits {
            $( $(#[$fmeta:meta])* const $flag:ident = $value:expr, $short:literal; )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        #[repr(transparent)]
        $vis struct $name(u8);

        impl $name {
            $( $(#[$fmeta])* pub const $flag: Self = Self($value); )+

            /// The empty set.
            pub const NONE: Self = Self(0);
            /// Every defined bit.
            pub const ALL: Self = Self(0 $(| $value)+);
            /// The width of the field in bits.
            pub const BITS: u32 = $bits;

            /// The set from raw bits (bits outside the field are dropped).
            pub const fn from_bits(bits: u8) -> Self {
                Self(bits & (((1u16 << $bits) - 1) as u8))
            }
            /// The raw bits.
            pub const fn into_bits(self) -> u8 {
                self.0
            }
            /// The raw bits.
            pub const fn bits(self) -> u8 {
                self.0
            }
            /// Whether every bit of `other` is set in `self`.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }
            /// Whether any bit of `other` is set in `self`.
            pub const fn intersects(self, other: Self) -> bool {
                self.0 & other.0 != 0
            }
            /// Whether no bit is set.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }
            /// `self` with the bits of `other` added.
            pub const fn union(self, other: Self) -> Self {
                Self(self.0 | other.0)
            }
            /// `self` with the bits of `other` removed.
            pub const fn difference(self, other: Self) -> Self {
                Self(self.0 & !other.0)
            }
            /// The named flags, most significant first, with their short names.
            pub const NAMES: &'static [(Self, &'static str)] = &[$((Self::$flag, $short)),+];
        }

        impl core::ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                self.union(rhs)
            }
        }
        impl core::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: Self) {
                *self = self.union(rhs);
            }
        }
        impl core::ops::BitAnd for $name {
            type Output = Self;
            fn bitand(self, rhs: Self) -> Self {
                Self(self.0 & rhs.0)
            }
        }
        impl core::ops::Sub for $name {
            type Output = Self;
            fn sub(self, rhs: Self) -> Self {
                self.difference(rhs)
            }
        }

        /// Prints the set as `A|B`, `-` when empty, and unnamed bits in hex.
        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                $crate::flags::write_set(f, self.0, Self::NAMES.iter().map(|(v, n)| (v.0, *n)))
            }
        }
        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{}({:#04x}: {})", stringify!($name), self.0, self)
            }
        }
    };
}
pub(crate) use flag_set;

/// Writes `bits` as `NAME|NAME|0x..`, or `-` when no bit is set.
pub(crate) fn write_set(
    f: &mut core::fmt::Formatter<'_>,
    bits: u8,
    names: impl Iterator<Item = (u8, &'static str)>,
) -> core::fmt::Result {
    if bits == 0 {
        return f.write_str("-");
    }
    let mut rest = bits;
    let mut first = true;
    for (value, name) in names {
        if value != 0 && bits & value == value {
            if !first {
                f.write_str("|")?;
            }
            f.write_str(name)?;
            first = false;
            rest &= !value;
        }
    }
    if rest != 0 {
        if !first {
            f.write_str("|")?;
        }
        write!(f, "{rest:#04x}")?;
    }
    Ok(())
}
