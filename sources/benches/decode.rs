//! Decode benches (placeholder).
fn main() {}
