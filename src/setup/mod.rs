//! The set-up side: games, Conversion Goals, X event tag mappings, trigger events and
//! enable/disable — rules as pure functions (`rules`), a thin service over the store and the
//! keychain (`Setup`).

pub mod rules;
mod service;

pub use rules::{GoalInput, TagCheck, TagInput};
pub use service::{Setup, SetupError, TagMapping, TagMappingRow};
