//! The delivery engine against the sandbox networks over real loopback HTTP, on a real SQLite
//! file: happy path, fault classes, partial rejections, credential pause, dedup, erasure.

#[macro_use]
mod support;
use support::{events, fast_options, rig_on, x_goals, Rig};

use std::time::Duration;

use postback::delivery::{now_ms, Clock, Dispatcher, DispatcherOptions, RunReport};
use postback::model::{DeliveryStatus, Health, Network};
use postback::sandbox::{self, Faults};
use postback::store::{LogFilter, Replay};

on_both_engines_rig! {
    async fn happy_path_for_all_three_networks(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        let report = rig.import(&events(250, "game_launch", "p1")).await;
        assert_eq!((report.events, report.enqueued, report.duplicates), (250, 750, 0));
        let run = rig.dispatch(fast_options()).await;
        assert_eq!((run.success, run.failed, run.retried), (750, 0, 0));
        for network in Network::ALL {
            let s = rig.stats(network);
            assert_eq!((s.accepted, s.distinct_event_ids, s.duplicates, s.rejected), (250, 250, 0, 0), "{network}");
        }
        assert_eq!(rig.stats(Network::TikTok).requests, 1, "250 events fit in one TikTok request");
        let log = rig.log(0, Some(DeliveryStatus::Success)).await;
        assert_eq!(log.len(), 250);
        assert!(log.iter().all(|e| e.http_status == Some(200) && e.attempt == 1 && e.request_id.is_some()));
        assert_eq!(rig.store.queue_counts().await.unwrap(), (0, 0, 0));
        assert_eq!(rig.store.health(rig.config_ids[0], now_ms()).await.unwrap(), Health::Normal);
    }
}

on_both_engines_rig! {
    /// Server errors are retried with backoff (capped at 15 min) and given up by age — 24 h after
    /// the first failed answer — not after a few attempts; given-up events come back by replay.
    async fn server_errors_are_retried_for_a_day_then_given_up_and_replayed(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        rig.import(&events(5, "game_launch", "p1")).await;
        rig.faults(Faults { error_rate: 1.0, status: 503, ..Faults::default() });
        let started = now_ms();
        let clock = Clock::manual(started);
        let options = DispatcherOptions { clock: clock.clone(), ..DispatcherOptions::default() };
        let run = rig.dispatch(options.clone()).await;
        assert_eq!((run.success, run.given_up, run.failed), (0, 15, 0), "{run:?}");
        let tiktok = rig.log(0, None).await;
        let attempts: Vec<(i64, i64, DeliveryStatus)> =
            tiktok.iter().filter(|e| e.event_id.ends_with("-0")).map(|e| (e.at, e.attempt, e.status)).collect();
        let (last_at, last_attempt, last_status) = attempts[0];
        assert_eq!(last_status, DeliveryStatus::GivenUp);
        assert!(attempts[1..].iter().all(|(_, _, s)| *s == DeliveryStatus::Retried));
        assert!(last_at - started >= 24 * 3600 * 1000, "given up only after 24 h");
        // 2 s doubling to the 15 min cap: about a hundred attempts in a day, not eight.
        assert!((80..=130).contains(&last_attempt), "{last_attempt} attempts");
        let gaps: Vec<i64> = attempts.windows(2).map(|w| w[0].0 - w[1].0).collect();
        assert!(gaps.iter().all(|g| *g <= 15 * 60 * 1000 * 12 / 10), "backoff capped at 15 min (+jitter)");
        assert!(tiktok[0].error.as_deref().unwrap_or_default().contains("gave up after 24 h"), "{:?}", tiktok[0].error);
        assert_eq!(rig.store.queue_counts().await.unwrap().2, 15, "given-up events wait for replay");

        // After the outage, replay delivers them under the same event ids.
        rig.faults(Faults::default());
        for id in &rig.config_ids {
            let requeued = rig.store.replay(&Replay { config_id: *id, ..Replay::default() }, clock.now_ms()).await;
            assert_eq!(requeued.unwrap(), Ok(5));
        }
        assert_eq!(rig.dispatch(options).await.success, 15);
        assert_eq!(rig.stats(Network::TikTok).distinct_event_ids, 5);
    }
}

on_both_engines_rig! {
    async fn tiktok_errors_inside_http_200_are_read_from_the_code(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        rig.import(&events(3, "game_launch", "p1")).await;
        // 429 is answered by TikTok as HTTP 200 with code 40100.
        rig.faults(Faults { error_rate: 1.0, status: 429, ..Faults::default() });
        let mut d = Dispatcher::new(rig.store.clone(), rig.tokens.clone(), fast_options());
        d.turn(&mut RunReport::default()).await.unwrap();
        let log = rig.log(0, None).await;
        assert_eq!(log.len(), 3);
        assert!(log.iter().all(|e| e.http_status == Some(200) && e.status == DeliveryStatus::Retried), "{log:?}");
        assert!(log[0].error.as_deref().unwrap_or_default().contains("40100"), "{:?}", log[0].error);
    }
}

on_both_engines_rig! {
    async fn x_rate_limit_answer_waits_for_the_reset(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        rig.import(&events(2, "game_launch", "p1")).await;
        rig.faults(Faults { error_rate: 1.0, status: 429, ..Faults::default() });
        let started = now_ms();
        let mut d = Dispatcher::new(rig.store.clone(), rig.tokens.clone(), fast_options());
        // One turn only: the retry is scheduled, not yet due.
        let _ = tokio::time::timeout(Duration::from_millis(1500), d.run_until_idle()).await;
        // This process's one worker goes (on PostgreSQL it held the configs).
        drop(d);
        let x_log = rig.log(2, Some(DeliveryStatus::Retried)).await;
        assert!(!x_log.is_empty());
        assert_eq!(x_log[0].http_status, Some(429));
        rig.faults(Faults::default());
        rig.dispatch(fast_options()).await;
        let delivered = rig.log(2, Some(DeliveryStatus::Success)).await;
        assert_eq!(delivered.len(), 2);
        // x-rate-limit-reset is at least the next second: nothing was re-sent before it.
        assert!(delivered.iter().all(|e| e.at >= started + 900), "re-sent too early");
    }
}

on_both_engines_rig! {
    async fn x_partial_rejections_fail_only_the_bad_conversions(engine: Engine) {
        for partial in [false, true] {
            let rig = rig_on(engine, "sandbox", x_goals()).await;
            rig.faults(Faults { x_partial_success: partial, ..Faults::default() });
            rig.import(&format!("{}\n{}", events(4, "game_launch", "p1"), events(3, "purchase", "p1"))).await;
            rig.dispatch(fast_options()).await;
            let ok = rig.log(2, Some(DeliveryStatus::Success)).await;
            let failed = rig.log(2, Some(DeliveryStatus::Failed)).await;
            assert_eq!((ok.len(), failed.len()), (4, 3), "partial={partial}");
            assert!(
                failed
                    .iter()
                    .all(|e| e.event_name == "purchase"
                        && e.error.as_deref().unwrap_or_default().contains("single event tag"))
            );
            assert_eq!(rig.stats(Network::X).distinct_event_ids, 4);
            assert_eq!(rig.store.queue_counts().await.unwrap().2, 3, "refused conversions are not retried");
        }
    }
}

on_both_engines_rig! {
    async fn a_credential_failure_pauses_the_config_until_rotation(engine: Engine) {
        let rig = rig_on(engine, "studio-token", x_goals()).await;
        rig.tokens.set_token("studio-token", "wrong-token");
        rig.import(&events(20, "game_launch", "p1")).await;
        let run = rig.dispatch(fast_options()).await;
        assert_eq!(run.success, 0);
        // One attempt per config, then paused: nothing burned, nothing counted as Failed.
        assert_eq!((run.held, run.failed), (3 * 20, 0), "{run:?}");
        let (ready, leased, dead) = rig.store.queue_counts().await.unwrap();
        assert_eq!((ready, leased, dead), (60, 0, 0));
        for (i, id) in rig.config_ids.iter().enumerate() {
            assert_eq!(rig.store.health(*id, now_ms()).await.unwrap(), Health::CredentialFailures, "config {i}");
            let held = rig.log(i, Some(DeliveryStatus::Held)).await;
            assert_eq!(held.len(), 20, "config {i}");
            assert_eq!(held[0].http_status.map(|s| s == 401 || s == 200), Some(true), "the refusal's status is kept");
            assert!(rig.log(i, Some(DeliveryStatus::Failed)).await.is_empty());
        }
        // Rotate: the right tokens, then un-pause.
        for (network, token) in [
            (Network::TikTok, sandbox::TIKTOK_TOKEN),
            (Network::Reddit, sandbox::REDDIT_TOKEN),
            (Network::X, sandbox::X_TOKEN),
        ] {
            rig.tokens.set_token("studio-token", token);
            let index = Network::ALL.iter().position(|n| *n == network).unwrap();
            rig.store.unpause(rig.config_ids[index]).await.unwrap();
            let run = rig.dispatch(fast_options()).await;
            assert_eq!(run.success, 20, "{network}");
        }
        assert_eq!(rig.store.health(rig.config_ids[0], now_ms()).await.unwrap(), Health::Normal);
    }
}

on_both_engines_rig! {
    async fn the_same_event_is_never_enqueued_twice(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        let text = events(10, "game_launch", "p1");
        assert_eq!(rig.import(&text).await.enqueued, 30);
        let again = rig.import(&format!("{text}\n{text}")).await;
        assert_eq!((again.enqueued, again.duplicates), (0, 60));
        rig.dispatch(fast_options()).await;
        assert_eq!(rig.stats(Network::Reddit).accepted, 10);
        // Delivered events are remembered too.
        assert_eq!(rig.import(&text).await.enqueued, 0);
    }
}

on_both_engines_rig! {
    async fn erased_players_are_never_forwarded_again(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        rig.import(&format!("{}\n{}", events(5, "game_launch", "alice"), events(5, "game_launch", "bob"))).await;
        rig.dispatch(fast_options()).await;
        rig.import(&events(3, "purchase", "alice")).await;
        let (queued, scrubbed) = rig.store.erase_player("alice", now_ms()).await.unwrap();
        assert_eq!(queued, 3 * 3, "alice's purchases queued for all three configs");
        assert!(scrubbed >= 15);
        let later = rig.import(&events(2, "game_launch", "alice")).await;
        assert_eq!(later.enqueued, 0);
        assert_eq!(later.skipped.get("player_erased"), Some(&6));
        rig.dispatch(fast_options()).await;
        assert_eq!(rig.stats(Network::TikTok).accepted, 10, "only the events delivered before the erasure");
    }
}

on_both_engines_rig! {
    async fn bad_lines_are_reported_and_never_stop_the_good_ones(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        let text = format!(
            "{}\n{{not json\n\n{}\n{}",
            events(1, "game_launch", "p"),
            r#"{"event_id": "x", "name": "purchase"}"#,
            events(1, "purchase", "q")
        );
        let report = rig.import(&text).await;
        assert_eq!(report.events, 2);
        let lines: Vec<(u64, &str)> = report.errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(lines, [(2, "event"), (4, "occurred_at")]);
    }
}

on_both_engines_rig! {
    /// No answer at all — a timeout, a refused connection — is not an attempt: the config shows
    /// Offline and probes with backoff, the event keeps its attempts and is never given up for it.
    async fn no_answer_is_not_an_attempt_timeouts_and_refused_connections(engine: Engine) {
        let slow = rig_on(engine, "sandbox", x_goals()).await;
        slow.import(&events(2, "game_launch", "p1")).await;
        slow.faults(Faults { latency_ms: 1500, ..Faults::default() });
        let mut options = fast_options();
        options.request_timeout = Duration::from_millis(200);
        let mut d = Dispatcher::new(slow.store.clone(), slow.tokens.clone(), options.clone());
        let mut run = RunReport::default();
        d.turn(&mut run).await.unwrap();
        assert_eq!((run.offline, run.failed, run.retried), (6, 0, 0), "{run:?}");
        let log = slow.log(1, None).await;
        assert!(
            log.iter().all(|e| e.status == DeliveryStatus::Offline
                && e.http_status.is_none()
                && e.error.as_deref().unwrap_or_default().contains("timed out")),
            "{log:?}"
        );
        let reddit = slow.store.integrations(slow.game_id).await.unwrap().remove(1);
        assert!(
            reddit.offline_since.is_some() && reddit.offline_reason.as_deref().unwrap_or_default().contains("timed out")
        );
        assert_eq!(slow.store.queue_counts().await.unwrap(), (6, 0, 0), "back in the queue, not dead");
        // The network answers again: delivered, as the first attempt, and the config is online.
        drop(d);
        slow.faults(Faults::default());
        let run = slow.dispatch(options).await;
        assert_eq!(run.success, 6);
        let delivered = slow.log(1, Some(DeliveryStatus::Success)).await;
        assert!(delivered.iter().all(|e| e.attempt == 1), "{delivered:?}");
        assert!(slow.store.integrations(slow.game_id).await.unwrap().iter().all(|r| r.offline_since.is_none()));

        // A network that is not there at all: connection refused, offline too.
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        rig.import(&events(1, "game_launch", "p1")).await;
        let Rig { sandbox, store, tokens, config_ids, dir: _dir, .. } = rig;
        sandbox.stop().await;
        let mut dispatcher = Dispatcher::new(store.clone(), tokens, fast_options());
        let mut run = RunReport::default();
        dispatcher.turn(&mut run).await.unwrap();
        assert_eq!((run.offline, run.failed), (3, 0));
        let filter = LogFilter { config_id: Some(config_ids[0]), limit: 10, ..LogFilter::default() };
        let log = store.log_page(&filter).await.unwrap();
        assert!(
            log[0].status == DeliveryStatus::Offline && log[0].error.as_deref().unwrap_or_default().contains("no answer"),
            "{log:?}"
        );
        // Probing again while offline adds no log rows: one Offline row per outage, not per probe.
        tokio::time::sleep(Duration::from_millis(100)).await;
        dispatcher.turn(&mut RunReport::default()).await.unwrap();
        assert_eq!(store.log_page(&filter).await.unwrap().len(), 1);
    }
}

on_both_engines_rig! {
    async fn a_long_rate_limit_wait_keeps_the_batch_leased(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        let mut limited = fast_options();
        limited.owner = "limited".into();
        limited.lease = Duration::from_secs(1);
        limited.rates.x_events_per_window = 2;
        limited.rates.x_window = Duration::from_secs(3);
        // Fill X's window, then queue one more event.
        rig.import(&events(2, "game_launch", "a")).await;
        rig.dispatch(limited.clone()).await;
        rig.import(&events(1, "game_launch", "b")).await;

        let started = std::time::Instant::now();
        let mut waiting = Dispatcher::new(rig.store.clone(), rig.tokens.clone(), limited);
        let first = tokio::spawn(async move { waiting.run_until_idle().await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        // A second dispatcher without limits must not take the batch while the first one waits.
        let mut other = fast_options();
        other.owner = "other".into();
        other.rates.enabled = false;
        rig.dispatch(other).await;
        first.await.unwrap().unwrap();

        assert!(started.elapsed() >= Duration::from_millis(1500), "the window was respected");
        let x = rig.stats(Network::X);
        assert_eq!((x.accepted, x.duplicates), (3, 0), "sent once, by the dispatcher that held the lease");
    }
}

/// A reader that yields some lines and then fails on every read, as a dying disk does.
struct FailingAfter {
    text: std::io::Cursor<Vec<u8>>,
}

impl std::io::Read for FailingAfter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.text.read(buf)? {
            0 => Err(std::io::Error::other("input/output error")),
            n => Ok(n),
        }
    }
}

impl std::io::BufRead for FailingAfter {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        let buf = self.text.fill_buf()?;
        if buf.is_empty() {
            return Err(std::io::Error::other("input/output error"));
        }
        Ok(buf)
    }
    fn consume(&mut self, n: usize) {
        self.text.consume(n)
    }
}

on_both_engines_rig! {
    /// A read error ends the import at once with the line it happened on; what the lines before
    /// it queued stays queued (it used to repeat the error on every line, forever).
    async fn a_read_error_ends_the_import_with_its_line(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        let text = format!("{}\n", events(2, "game_launch", "p1"));
        let input = FailingAfter { text: std::io::Cursor::new(text.into_bytes()) };
        let outcome = tokio::time::timeout(
            Duration::from_secs(10),
            postback::ingest::import_ndjson(&rig.store, rig.game_id, input, now_ms()),
        )
        .await
        .expect("no endless loop");
        match outcome {
            Err(postback::ingest::ImportError::Read { line, report, message }) => {
                assert_eq!(line, 3);
                assert_eq!((report.events, report.enqueued), (2, 6));
                assert!(message.contains("input/output error"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(rig.store.queue_counts().await.unwrap().0, 6, "acknowledged lines stay queued");
    }
}
