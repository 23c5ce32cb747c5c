//! Store code whose SQL is the same on both engines, written once as macros that each engine
//! instantiates (`sqlite/games.rs`, `postgres/games.rs`, …). What differs between the engines
//! (placeholders are not among it: SQLite reads `$1` as PostgreSQL does) is a macro argument.

pub(crate) mod configs;
pub(crate) mod games;
pub(crate) mod goals;
pub(crate) mod log;
pub(crate) mod settle;
pub(crate) mod traffic;
