//! Placeholder, filled in by the quickstart commit.
fn main() {}
