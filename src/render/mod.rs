//! Renderers turn a checked [`crate::facts::Facts`] and its [`crate::diagnosis::Diagnosis`] into
//! bytes on any `io::Write`. They decide nothing and never touch the network.

pub mod json;
pub mod markdown;
pub mod nagios;
pub mod table;
pub mod text;

#[cfg(test)]
mod tests;
