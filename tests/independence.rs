//! One config never waits for another, and stopping is prompt: X waiting for its rate-limit
//! window holds up neither TikTok's deliveries nor Ctrl-C; a limiter on the monotonic clock
//! does not stall when the wall clock steps back; retries after `Retry-After: 1` back off.
//! Real SQLite files, real loopback HTTP to the sandbox, `postback serve` as a child process.

#[macro_use]
mod support;
use support::{events, events_at, fast_options, rig, rig_on, x_goals, Rig};

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use postback::delivery::{Clock, Dispatcher, DispatcherOptions};
use postback::ingest::import_ndjson;
use postback::model::{DeliveryStatus, Network};
use postback::sandbox::Faults;

/// Polls until `done` holds, for `within` at most.
async fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

fn delivered(rig: &Rig, network: Network) -> u64 {
    rig.stats(network).distinct_event_ids
}

on_both_engines_rig! {
    /// X at 2 events per 40-second window with more X events queued: TikTok's next events are
    /// delivered within seconds, not after X's window.
    async fn a_config_waiting_for_its_rate_limit_never_delays_another(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        rig.import(&events(4, "game_launch", "first")).await;
        let mut options = fast_options();
        options.rates.x_events_per_window = 2;
        options.rates.x_window = Duration::from_secs(40);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut dispatcher = Dispatcher::new(rig.store.clone(), rig.tokens.clone(), options);
        let running = tokio::spawn(async move { dispatcher.run(stopped).await });

        assert!(eventually(Duration::from_secs(10), || delivered(&rig, Network::X) == 2).await, "X sent its budget");
        assert!(eventually(Duration::from_secs(5), || delivered(&rig, Network::TikTok) == 4).await);
        // X now waits ~40 s for its window with two events in hand. TikTok's next events go now.
        rig.import(&events(3, "game_launch", "second")).await;
        let imported = Instant::now();
        assert!(
            eventually(Duration::from_secs(5), || delivered(&rig, Network::TikTok) == 7).await,
            "TikTok delivered {} of 7 while X waited",
            delivered(&rig, Network::TikTok)
        );
        assert!(eventually(Duration::from_secs(5), || delivered(&rig, Network::Reddit) == 7).await);
        let waited = imported.elapsed();
        assert_eq!(delivered(&rig, Network::X), 2, "X still within its budget");
        // Sent is not yet settled: wait until only X's five conversions are left in the queue.
        let settled = eventually(Duration::from_secs(5), || {
            let store = rig.store.clone();
            let counts = tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async move { store.queue_counts().await })
            });
            matches!(counts, Ok((ready, leased, 0)) if ready + leased == 5)
        })
        .await;
        assert!(settled, "TikTok's and Reddit's deliveries settled: {:?}", rig.store.queue_counts().await);

        // Stop while X waits: prompt, and X's batch goes back to the queue at once.
        let stopping = Instant::now();
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(2), running).await.expect("stopped within 2 s").unwrap();
        let (ready, leased, dead) = rig.store.queue_counts().await.unwrap();
        assert_eq!((ready, leased, dead), (5, 0, 0), "X's five conversions wait, none leased");
        eprintln!("TikTok's second events delivered {waited:?} after import; stop took {:?}", stopping.elapsed());
    }
}

/// `postback serve` interrupted (SIGINT) while X waits for its window exits within 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_a_rate_limit_wait_stops_serve_within_two_seconds() {
    let rig = rig("sandbox").await;
    rig.import(&events(4, "game_launch", "p")).await;
    let mut serve = Command::new(env!("CARGO_BIN_EXE_postback"))
        .args(["serve", "--x-events-per-window", "2", "--x-window", "40s", "--data-dir"])
        .arg(rig.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("postback serve starts");
    let waiting = eventually(Duration::from_secs(15), || {
        delivered(&rig, Network::X) == 2 && delivered(&rig, Network::TikTok) == 4
    })
    .await;
    if !waiting {
        let _ = serve.kill();
        panic!("serve did not deliver: {:?}", rig.sandbox.state.stats());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let interrupted = Instant::now();
    // SAFETY: a signal to our own child process, which we still own.
    assert_eq!(unsafe { libc::kill(serve.id() as libc::pid_t, libc::SIGINT) }, 0);
    let status = loop {
        if let Some(status) = serve.try_wait().unwrap() {
            break status;
        }
        if interrupted.elapsed() > Duration::from_secs(10) {
            let _ = serve.kill();
            panic!("serve still running 10 s after SIGINT");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = interrupted.elapsed();
    eprintln!("serve exited {took:?} after SIGINT ({status})");
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(2), "serve took {took:?} to stop");
    let (_, leased, _) = rig.store.queue_counts().await.unwrap();
    assert_eq!(leased, 0, "the waiting batch was released for the next run");
}

on_both_engines_rig! {
    /// The wall clock steps back an hour between two batches: the rate limiters count on the
    /// monotonic clock, so the second batch goes at once instead of an hour later.
    async fn a_wall_clock_stepping_back_stalls_no_limiter(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        let start = postback::delivery::now_ms();
        let clock = Clock::manual(start);
        let options = DispatcherOptions { clock: clock.clone(), ..fast_options() };
        let mut dispatcher = Dispatcher::new(rig.store.clone(), rig.tokens.clone(), options);
        import_ndjson(&rig.store, rig.game_id, events(3, "game_launch", "before").as_bytes(), clock.now_ms())
            .await
            .unwrap();
        assert_eq!(dispatcher.run_until_idle().await.unwrap().success, 9);

        clock.step_wall(-3_600_000);
        let stepped = clock.now_ms();
        // Events stamped on the stepped clock (else they would come from its future).
        let occurred = clock.now().to_rfc3339();
        let after = events_at(3, "game_launch", "after", Some(&occurred));
        import_ndjson(&rig.store, rig.game_id, after.as_bytes(), stepped).await.unwrap();
        // The same dispatcher: its limiters remember the first batch.
        assert_eq!(dispatcher.run_until_idle().await.unwrap().success, 9);
        let waited = clock.now_ms() - stepped;
        assert!(waited < 60_000, "delivery waited {waited} ms of (simulated) time after the clock stepped back");
        assert_eq!(delivered(&rig, Network::TikTok), 6);
    }
}

on_both_engines_rig! {
    /// A network answering 503 with `Retry-After: 1`: each retry waits the larger of our backoff
    /// and the network's second, so attempts grow apart (2 s, 4 s, 8 s … up to 15 min).
    async fn retries_after_a_short_retry_after_grow_apart(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        rig.import(&events(1, "game_launch", "p")).await;
        rig.faults(Faults { error_rate: 1.0, status: 503, retry_after: Some("1".into()), ..Faults::default() });
        let clock = Clock::manual(postback::delivery::now_ms());
        let mut options = DispatcherOptions { clock: clock.clone(), ..DispatcherOptions::default() };
        options.retry.give_up_after = Duration::from_secs(3600);
        options.rates.enabled = false;
        let run = rig.dispatch(options).await;
        assert_eq!(run.given_up, 3, "{run:?}");

        let mut attempts: Vec<i64> = rig.log(0, None).await.iter().map(|e| e.at).collect();
        attempts.sort_unstable();
        let gaps: Vec<i64> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(attempts.len() <= 15, "{} attempts in an hour: {gaps:?}", attempts.len());
        // ±20 % jitter around 2, 4, 8, 16, 32 … s.
        for (i, gap) in gaps.iter().take(8).enumerate() {
            let backoff = 2_000 * (1i64 << i);
            assert!(*gap >= backoff * 8 / 10, "attempt {} came {gap} ms after the previous: {gaps:?}", i + 2);
        }
        let given_up = rig.log(0, Some(DeliveryStatus::GivenUp)).await;
        assert_eq!(given_up.len(), 1);
    }
}
