//! Bounded text values. Lengths count Unicode scalar values, as clients count characters.

/// Defines a string newtype whose constructor enforces a length range.
#[macro_export]
macro_rules! bounded_text {
    ($(#[$meta:meta])* $name:ident, field = $field:literal, min = $min:literal, max = $max:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        #[allow(dead_code)]
        impl $name {
            pub const MIN_CHARS: usize = $min;
            pub const MAX_CHARS: usize = $max;

            /// Accepts the value when its length is within the documented range.
            pub fn parse(value: impl Into<String>) -> Result<Self, $crate::ValidationError> {
                let value = value.into();
                $crate::text::check_length($field, &value, $min, $max)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// Checks a text's length in characters against an inclusive range.
pub fn check_length(
    field: &str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<(), crate::ValidationError> {
    let chars = value.chars().count();
    if chars < min {
        let message = if min == 1 {
            "must not be empty".to_owned()
        } else {
            format!("must be at least {min} characters")
        };
        return Err(crate::ValidationError::field(field, message));
    }
    if chars > max {
        return Err(crate::ValidationError::field(
            field,
            format!("must be at most {max} characters (got {chars})"),
        ));
    }
    Ok(())
}

/// Checks an optional text; `None` is always accepted.
pub fn check_optional(
    field: &str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, crate::ValidationError> {
    match value {
        Some(v) => check_length(field, &v, 0, max).map(|()| Some(v)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    bounded_text!(Sample, field = "sample", min = 1, max = 3);

    #[test]
    fn counts_characters_not_bytes() {
        assert!(Sample::parse("ééé").is_ok());
        assert!(Sample::parse("éééé").is_err());
    }

    #[test]
    fn empty_is_refused_with_a_clear_message() {
        let err = Sample::parse("").unwrap_err();
        assert_eq!(err.errors[0].field, "sample");
        assert_eq!(err.errors[0].message, "must not be empty");
    }

    #[test]
    fn optional_text_accepts_none_and_checks_some() {
        assert_eq!(check_optional("f", None, 2).unwrap(), None);
        assert!(check_optional("f", Some("abc".into()), 2).is_err());
    }
}
