//! Bounded text values. Lengths count Unicode scalar values, as clients count characters.
//!
//! Two rules about characters hold for every text the domain accepts, whatever the storage:
//!
//! - No text contains NUL (U+0000). PostgreSQL cannot store it in a text column (the insert
//!   fails), SQLite would store it, and no client means it; refusing it here makes both
//!   backends answer alike, and keeps a stored value readable by C-string tools.
//! - A *name* (of a queue, workflow, trigger, schedule, flow, node, key; a reference) contains
//!   no control character at all (Unicode category Cc: U+0000–U+001F and U+007F–U+009F): a
//!   name is shown in lists, logs and URLs, where a tab, a newline or an escape sequence would
//!   forge or hide what is shown. Free text (messages, descriptions, payloads) may hold tabs
//!   and newlines.

/// Defines a name's string newtype: its constructor enforces a length range and refuses control
/// characters ([`check_name`]).
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

            /// Accepts the value when its length is within the documented range and it holds
            /// no control character.
            pub fn parse(value: impl Into<String>) -> Result<Self, $crate::ValidationError> {
                let value = value.into();
                $crate::text::check_name($field, &value, $min, $max)?;
                Ok(Self(value))
            }

            /// A value read back from storage: only its length is checked. A name stored before
            /// names refused control characters (or, on SQLite, NUL) still reads back as it
            /// was, rather than making every read of it fail.
            pub fn from_stored(value: impl Into<String>) -> Result<Self, $crate::ValidationError> {
                let value = value.into();
                $crate::text::check_stored_length($field, &value, $min, $max)?;
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

/// Why a text holding NUL is refused.
pub const NUL_REFUSED: &str = "must not contain the NUL character (U+0000)";

/// Refuses a text holding NUL (U+0000), the one character no text may hold.
pub fn check_no_nul(field: &str, value: &str) -> Result<(), crate::ValidationError> {
    if value.contains('\0') {
        return Err(crate::ValidationError::field(field, NUL_REFUSED));
    }
    Ok(())
}

/// Checks a free text: its length in characters against an inclusive range, and no NUL.
pub fn check_length(
    field: &str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<(), crate::ValidationError> {
    check_no_nul(field, value)?;
    check_stored_length(field, value, min, max)
}

/// Checks only the length of a text read back from storage: the rules about characters apply
/// to what comes in, and a value stored before they did must still read back.
pub fn check_stored_length(
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

/// Checks a name: [`check_length`], and no control character (Unicode category Cc), which the
/// refusal names by its code point and position.
pub fn check_name(
    field: &str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<(), crate::ValidationError> {
    check_length(field, value, min, max)?;
    if let Some((at, c)) = value.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Err(crate::ValidationError::field(
            field,
            format!(
                "must not contain control characters (U+0000-U+001F, U+007F-U+009F); \
                 found U+{:04X} at character {}",
                u32::from(c),
                at + 1
            ),
        ));
    }
    Ok(())
}

/// Checks an optional name; `None` is always accepted.
pub fn check_optional_name(
    field: &str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, crate::ValidationError> {
    match value {
        Some(v) => check_name(field, &v, 0, max).map(|()| Some(v)),
        None => Ok(None),
    }
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
    fn no_text_holds_nul_and_the_refusal_names_the_field() {
        for value in ["\0", "a\0b", "ab\0"] {
            let err = check_length("message", value, 0, 10).unwrap_err();
            assert_eq!(err.errors[0].field, "message");
            assert_eq!(err.errors[0].message, NUL_REFUSED);
            assert!(Sample::parse(value).is_err(), "{value:?}");
            assert!(check_optional("message", Some(value.to_owned()), 10).is_err());
        }
    }

    #[test]
    fn free_text_keeps_tabs_newlines_and_other_control_characters() {
        assert!(check_length("message", "line 1\nline 2\tend\u{1b}\u{85}", 0, 100).is_ok());
    }

    #[test]
    fn names_refuse_every_control_character_and_say_which_and_where() {
        for c in ('\u{0}'..='\u{1f}').chain('\u{7f}'..='\u{9f}') {
            let value = format!("ab{c}");
            assert!(Sample::parse(value.clone()).is_err(), "{c:?}");
            assert!(check_optional_name("reference", Some(value), 10).is_err());
        }
        let err = check_name("queue_name", "q\u{1}x", 1, 10).unwrap_err();
        assert_eq!(err.errors[0].field, "queue_name");
        assert_eq!(
            err.errors[0].message,
            "must not contain control characters (U+0000-U+001F, U+007F-U+009F); \
             found U+0001 at character 2"
        );
        // Other characters, spaces and letters of any script, are names' business.
        assert!(Sample::parse("a é").is_ok());
        assert!(check_name("n", "файл 名前 \u{a0}\u{200b}", 1, 20).is_ok());
        assert_eq!(check_optional_name("reference", None, 1).unwrap(), None);
    }

    #[test]
    fn stored_values_read_back_whatever_their_characters() {
        assert_eq!(Sample::from_stored("a\tb").unwrap().as_str(), "a\tb");
        assert!(Sample::from_stored("\0").is_ok());
        assert!(Sample::from_stored("").is_err());
        assert!(Sample::from_stored("abcd").is_err());
    }

    #[test]
    fn optional_text_accepts_none_and_checks_some() {
        assert_eq!(check_optional("f", None, 2).unwrap(), None);
        assert!(check_optional("f", Some("abc".into()), 2).is_err());
    }
}
