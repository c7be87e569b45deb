//! JSON text the engine writes by hand on its hot paths (result rows, an
//! aggregator's fields): a leaf module, so that the aggregators and the
//! JSON sinks both use it without depending on each other.

/// Appends `s` as a JSON string.
pub(crate) fn push_json_string(s: &str, out: &mut String) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        // Nothing to escape (the common case): no allocation.
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        // serde_json escapes exactly as JSON requires; a String never fails.
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
    }
}
