//! Plain domain types shared by every part of the engine and exported to the UI as TypeScript.

mod config;
mod error;
mod event;
pub mod formats;
mod game;
mod network;

pub use config::{Goal, PostbackConfig, RedditConfig, TikTokConfig, XConfig};
pub use error::InputError;
pub use event::{ClickIds, Consent, ConversionEvent, Item};
pub use game::{ConfigSummary, Game, Health, IntegrationStatus};
pub use network::Network;
