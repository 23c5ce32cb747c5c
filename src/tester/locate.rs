//! The line of pasted JSON a field error points at, so the tester can show "line 4: email …".

/// The 1-based line where `field` (a dotted path as errors name it: `email`,
/// `click_ids.ttclid`, `items.1.price`) is written in `text`, found by its keys and array
/// indexes in order. `None` when a part is not found (the field is missing, or the error names
/// the whole event).
pub fn field_line(text: &str, field: &str) -> Option<u32> {
    let mut from = 0;
    let mut found = None;
    for segment in field.split('.').filter(|s| !s.is_empty()) {
        let at = match segment.parse::<usize>() {
            Ok(index) => element_position(text, index, from)?,
            Err(_) => key_position(text, segment, from)? + segment.len() + 2,
        };
        found = Some(at);
        from = at;
    }
    let at = found?;
    Some(text[..at].bytes().filter(|&b| b == b'\n').count() as u32 + 1)
}

/// Where element `index` of the first array opening at or after byte `from` begins.
fn element_position(text: &str, index: usize, from: usize) -> Option<usize> {
    let open = from + text.get(from..)?.find('[')?;
    let (mut depth, mut in_string, mut escaped, mut element) = (0usize, false, false, 0usize);
    for (offset, byte) in text[open..].bytes().enumerate() {
        let at = open + offset;
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if depth == 1 && element == index && !matches!(byte, b' ' | b'\t' | b'\r' | b'\n' | b',' | b']') {
            return Some(at);
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return None;
                }
            }
            b',' if depth == 1 => element += 1,
            _ => {}
        }
    }
    None
}

/// Where `"key"` followed by `:` first appears at or after byte `from`.
fn key_position(text: &str, key: &str, from: usize) -> Option<usize> {
    let quoted = format!("\"{key}\"");
    let mut start = from;
    while let Some(offset) = text.get(start..)?.find(&quoted) {
        let at = start + offset;
        let after = &text[at + quoted.len()..];
        if after.trim_start().starts_with(':') {
            return Some(at);
        }
        start = at + quoted.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::field_line;

    const EVENT: &str = "{\n  \"event_id\": \"e1\",\n  \"note\": \"email\",\n  \"email\": \"x\",\n  \"click_ids\": {\n    \"ttclid\": 5\n  },\n  \"items\": [\n    {\"id\": \"a\", \"price\": 1},\n    {\"id\": \"b\",\n     \"price\": \"x\"}\n  ]\n}";

    #[test]
    fn a_field_is_found_by_its_key_not_by_a_value_that_spells_it() {
        assert_eq!(field_line(EVENT, "email"), Some(4));
        assert_eq!(field_line(EVENT, "event_id"), Some(2));
    }

    #[test]
    fn nested_fields_are_found_inside_their_parent() {
        assert_eq!(field_line(EVENT, "click_ids.ttclid"), Some(6));
        assert_eq!(field_line(EVENT, "items.0.price"), Some(9));
        assert_eq!(field_line(EVENT, "items.1.price"), Some(11));
        assert_eq!(field_line(EVENT, "items.1"), Some(10));
        assert_eq!(field_line(EVENT, "items.2"), None);
    }

    #[test]
    fn a_missing_field_or_the_whole_event_has_no_line() {
        assert_eq!(field_line(EVENT, "phone"), None);
        assert_eq!(field_line(EVENT, "event"), None);
        assert_eq!(field_line("", "email"), None);
    }
}
