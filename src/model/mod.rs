//! Plain domain types shared by every part of the engine and exported to the UI as TypeScript.

mod config;
mod engine;
mod error;
mod event;
mod event_fields;
pub mod formats;
mod game;
pub mod limits;
mod log;
mod network;

pub use config::{Goal, PostbackConfig, RedditConfig, TikTokConfig, TriggerRule, ValueFilter, XConfig};
pub use engine::EngineState;
pub use error::{ApiError, InputError};
pub use event::{ClickIds, Consent, ConversionEvent, Item};
pub use event_fields::{BodyError, ClickIdFields, EventFields, ItemFields, ItemsField, Scalar, SentBody, SentItem};
pub use game::{
    AppInfo, ConfigSummary, DeliveryStatus, Game, GameUsage, Health, IntegrationStatus, SandboxDemo, SetupGap,
    WorkerHold, WorkspaceView,
};
pub use log::{
    BatchItem, ChartBucket, Explanation, LogDetail, LogEntry, LogFilter, LogSummary, LogTotals, NetworkAnswer,
    SentRequest,
};
pub use network::Network;
