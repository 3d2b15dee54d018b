//! Bounding text the robot sends: node outputs and error messages have limits on the server,
//! and a chatty command or web page must not make a report too big to be accepted.

/// `text` cut to at most `max` characters (never inside a character).
pub fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// Bytes as text (invalid UTF-8 replaced), cut to at most `max` bytes at a character boundary;
/// `true` when something was cut.
pub fn lossy_capped(bytes: &[u8], max: usize) -> (String, bool) {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= max {
        return (text.into_owned(), false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_owned(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_character_boundaries() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("hi", 5), "hi");
        assert_eq!(lossy_capped("hé".as_bytes(), 2), ("h".to_owned(), true));
        assert_eq!(lossy_capped(b"abc", 3), ("abc".to_owned(), false));
        assert_eq!(lossy_capped(&[0xff], 10).0, "\u{fffd}");
    }
}
