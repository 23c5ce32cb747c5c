//! Postback Desk engine: canonical conversion events to ad-network postbacks.
//!
//! Tauri-free: the desktop shell (`src-tauri`) and the `postback` CLI both drive this crate.

pub mod cli;
pub mod connect;
pub mod delivery;
pub mod identity;
pub mod ingest;
pub mod model;
pub mod networks;
pub mod oauth;
pub mod sandbox;
pub mod secrets;
pub mod setup;
pub mod store;
pub mod watch;

/// Port of the built-in sandbox networks on loopback; the demo configs point here.
pub const SANDBOX_DEFAULT_PORT: u16 = 47811;

/// `credential_ref` of configs that use the sandbox's public demo credentials (no keychain).
pub const SANDBOX_CREDENTIAL_REF: &str = "sandbox";

/// The sandbox base URL the demo configs use.
pub fn sandbox_base_url() -> String {
    format!("http://127.0.0.1:{SANDBOX_DEFAULT_PORT}")
}
