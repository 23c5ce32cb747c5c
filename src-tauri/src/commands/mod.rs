//! `#[tauri::command]`s: each a few lines that call the engine. Registered by full path in
//! `lib.rs` (the macro needs the module the command was defined in).

pub mod credentials;
pub mod engine;
pub mod formats;
pub mod games;
pub mod goals;
pub mod integrations;
pub mod log;
pub mod sandbox;
pub mod sources;
pub mod tester;
pub mod workspace;
