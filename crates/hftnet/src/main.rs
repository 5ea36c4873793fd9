//! The `hftnet` command.
fn main() {}
