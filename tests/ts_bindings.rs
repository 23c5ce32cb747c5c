//! The TypeScript types in `ui/src/lib/bindings/` are generated from the Rust types that cross
//! IPC. This test fails when they are stale; `UPDATE_BINDINGS=1 cargo test --test ts_bindings`
//! rewrites them.

use std::path::{Path, PathBuf};

use postback::connect::{Saved, TokenIntegrationInput, Validation, XAuthMethod};
use postback::deadline::QueueDeadline;
use postback::freshness::Freshness;
use postback::ingest::demo::DemoStats;
use postback::ingest::server::IngestStatus;
use postback::ingest::{FileFormat, ImportProgress, ImportReport, LineError};
use postback::model::formats::IdKind;
use postback::model::{
    ApiError, AppInfo, ConfigSummary, Game, Goal, Health, IntegrationStatus, Network, PostbackConfig, RedditConfig,
    TikTokConfig, XConfig,
};
use postback::model::{
    BatchItem, ChartBucket, Explanation, LogDetail, LogFilter, LogSummary, LogTotals, NetworkAnswer, SentRequest,
};
use postback::model::{
    DeliveryStatus, EngineState, GameUsage, LogEntry, SandboxDemo, SetupGap, TriggerRule, ValueFilter,
};
use postback::model::{WorkerHold, WorkspaceView};
use postback::quality::{ConfigQuality, KeyShare, MatchKey, NamedQuality, Quality};
use postback::sandbox::{Faults, PixelView, SandboxOverview};
use postback::setup::{GoalInput, TagCheck, TagInput, TagMapping, TagMappingRow};
use postback::team::known::{KnownTeam, WorkspaceList};
use postback::tester::{ConfigCheck, EventCheck, EventProblem, TestAnswer};
use postback::watch::attribution::{NetworkTraffic, SourceTraffic};
use postback::watch::diagnose::{DiagnosticItem, Level};
use postback::watch::export::{ExportFormat, ExportProgress, ExportTarget};
use ts_rs::{Config, TS};

fn bindings_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/src/lib/bindings")
}

/// Compares (or, when updating, writes) one type's file; returns a complaint when stale.
fn check<T: TS + 'static>(cfg: &Config, update: bool) -> Option<String> {
    let text = T::export_to_string(cfg).expect("type exports");
    let path = bindings_dir().join(format!("{}.ts", T::name(cfg)));
    if update {
        std::fs::create_dir_all(bindings_dir()).expect("bindings dir");
        std::fs::write(&path, &text).expect("write binding");
        return None;
    }
    match std::fs::read_to_string(&path) {
        Ok(existing) if existing == text => None,
        Ok(_) => Some(format!("{} is stale", path.display())),
        Err(_) => Some(format!("{} is missing", path.display())),
    }
}

#[test]
fn typescript_bindings_are_fresh() {
    // i64 ids are far below 2^53: JSON numbers, not bigint.
    let cfg = Config::new().with_large_int("number");
    let update = std::env::var_os("UPDATE_BINDINGS").is_some();
    let stale: Vec<String> = [
        check::<ApiError>(&cfg, update),
        check::<AppInfo>(&cfg, update),
        check::<ConfigSummary>(&cfg, update),
        check::<WorkerHold>(&cfg, update),
        check::<WorkspaceView>(&cfg, update),
        check::<KnownTeam>(&cfg, update),
        check::<WorkspaceList>(&cfg, update),
        check::<Game>(&cfg, update),
        check::<Goal>(&cfg, update),
        check::<DeliveryStatus>(&cfg, update),
        check::<EngineState>(&cfg, update),
        check::<GameUsage>(&cfg, update),
        check::<SetupGap>(&cfg, update),
        check::<TriggerRule>(&cfg, update),
        check::<ValueFilter>(&cfg, update),
        check::<GoalInput>(&cfg, update),
        check::<TagCheck>(&cfg, update),
        check::<TagInput>(&cfg, update),
        check::<TagMapping>(&cfg, update),
        check::<TagMappingRow>(&cfg, update),
        check::<LogFilter>(&cfg, update),
        check::<LogSummary>(&cfg, update),
        check::<ChartBucket>(&cfg, update),
        check::<LogTotals>(&cfg, update),
        check::<LogDetail>(&cfg, update),
        check::<SentRequest>(&cfg, update),
        check::<NetworkAnswer>(&cfg, update),
        check::<BatchItem>(&cfg, update),
        check::<Explanation>(&cfg, update),
        check::<DiagnosticItem>(&cfg, update),
        check::<Level>(&cfg, update),
        check::<ExportFormat>(&cfg, update),
        check::<ExportProgress>(&cfg, update),
        check::<ExportTarget>(&cfg, update),
        check::<DemoStats>(&cfg, update),
        check::<IngestStatus>(&cfg, update),
        check::<FileFormat>(&cfg, update),
        check::<ImportProgress>(&cfg, update),
        check::<ImportReport>(&cfg, update),
        check::<LineError>(&cfg, update),
        check::<Faults>(&cfg, update),
        check::<PixelView>(&cfg, update),
        check::<SandboxOverview>(&cfg, update),
        check::<NetworkTraffic>(&cfg, update),
        check::<SourceTraffic>(&cfg, update),
        check::<Health>(&cfg, update),
        check::<IdKind>(&cfg, update),
        check::<LogEntry>(&cfg, update),
        check::<IntegrationStatus>(&cfg, update),
        check::<Network>(&cfg, update),
        check::<PostbackConfig>(&cfg, update),
        check::<RedditConfig>(&cfg, update),
        check::<TikTokConfig>(&cfg, update),
        check::<XConfig>(&cfg, update),
        check::<Saved>(&cfg, update),
        check::<SandboxDemo>(&cfg, update),
        check::<Validation>(&cfg, update),
        check::<TokenIntegrationInput>(&cfg, update),
        check::<XAuthMethod>(&cfg, update),
        check::<ConfigQuality>(&cfg, update),
        check::<NamedQuality>(&cfg, update),
        check::<Quality>(&cfg, update),
        check::<KeyShare>(&cfg, update),
        check::<MatchKey>(&cfg, update),
        check::<Freshness>(&cfg, update),
        check::<QueueDeadline>(&cfg, update),
        check::<EventCheck>(&cfg, update),
        check::<ConfigCheck>(&cfg, update),
        check::<EventProblem>(&cfg, update),
        check::<TestAnswer>(&cfg, update),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(
        stale.is_empty(),
        "TypeScript bindings out of date:\n{}\nrun: UPDATE_BINDINGS=1 cargo test --test ts_bindings",
        stale.join("\n")
    );
}
