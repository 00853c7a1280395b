// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The 3390 models an image can hold (nominal cylinder counts and model bytes).

use core::fmt;
use core::str::FromStr;

/// A 3390 model: fixes the nominal cylinder count and the model bytes.
///
/// ```
/// use mock_backend::dasd::Model3390;
/// let m: Model3390 = "3390-3".parse().unwrap();
/// assert_eq!(m.cylinders(), 3339);
/// assert_eq!(m.to_string(), "3390-3");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model3390 {
    /// 3390-1: 1113 cylinders.
    M1,
    /// 3390-2: 2226 cylinders.
    M2,
    /// 3390-3: 3339 cylinders.
    M3,
    /// 3390-9: 10017 cylinders.
    M9,
    /// 3390-27: 32760 cylinders.
    M27,
    /// 3390-54: 65520 cylinders.
    M54,
}

impl Model3390 {
    /// All models, smallest first.
    pub const ALL: [Model3390; 6] = [
        Model3390::M1,
        Model3390::M2,
        Model3390::M3,
        Model3390::M9,
        Model3390::M27,
        Model3390::M54,
    ];

    /// Nominal (primary) cylinder count.
    pub const fn cylinders(self) -> u32 {
        match self {
            Model3390::M1 => 1113,
            Model3390::M2 => 2226,
            Model3390::M3 => 3339,
            Model3390::M9 => 10017,
            Model3390::M27 => 32760,
            Model3390::M54 => 65520,
        }
    }

    /// Device-model byte (SENSE ID byte 6, RDC byte 5).
    pub const fn model_byte(self) -> u8 {
        match self {
            Model3390::M1 => 0x02,
            Model3390::M2 => 0x06,
            Model3390::M3 => 0x0A,
            Model3390::M9 | Model3390::M27 | Model3390::M54 => 0x0C,
        }
    }

    /// Device-type code (RDC byte 11).
    pub(super) const fn type_code(self) -> u8 {
        match self {
            Model3390::M1 => 0x26,
            Model3390::M2 => 0x27,
            Model3390::M3 => 0x24,
            Model3390::M9 | Model3390::M27 | Model3390::M54 => 0x32,
        }
    }

    /// The smallest model that holds `cylinders` cylinders (how an image of arbitrary size is
    /// presented), or `None` if even a 3390-54 is too small.
    pub fn for_cylinders(cylinders: u32) -> Option<Model3390> {
        Self::ALL.into_iter().find(|m| cylinders <= m.cylinders())
    }
}

impl fmt::Display for Model3390 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = match self {
            Model3390::M1 => 1,
            Model3390::M2 => 2,
            Model3390::M3 => 3,
            Model3390::M9 => 9,
            Model3390::M27 => 27,
            Model3390::M54 => 54,
        };
        write!(f, "3390-{n}")
    }
}

/// The text was not one of `3390-1`, `-2`, `-3`, `-9`, `-27`, `-54`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown 3390 model {0:?} (expected 3390-1, -2, -3, -9, -27 or -54)")]
pub struct UnknownModel(pub String);

impl FromStr for Model3390 {
    type Err = UnknownModel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n = s.strip_prefix("3390-").unwrap_or(s);
        Ok(match n {
            "1" => Model3390::M1,
            "2" => Model3390::M2,
            "3" => Model3390::M3,
            "9" => Model3390::M9,
            "27" => Model3390::M27,
            "54" => Model3390::M54,
            _ => return Err(UnknownModel(s.to_owned())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_parse_and_fit() {
        for m in Model3390::ALL {
            assert_eq!(m.to_string().parse::<Model3390>().unwrap(), m);
            assert_eq!(Model3390::for_cylinders(m.cylinders()), Some(m));
        }
        assert_eq!(Model3390::for_cylinders(3), Some(Model3390::M1));
        assert_eq!(Model3390::for_cylinders(65521), None);
        assert!("3390-4".parse::<Model3390>().is_err());
    }
}
