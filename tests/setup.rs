//! The set-up side on a real SQLite file: games (create, rename, switch, delete with what
//! belongs to them), goals (CRUD, order, rules), X event tag mappings, trigger events,
//! enable/disable, and the once-per-player memory with its erasure — delivered to the sandbox.

#[macro_use]
mod support;
use support::{events, fast_options, rig_on, rig_with};

use std::sync::Arc;

use postback::delivery::{now_ms, Credentials};
use postback::model::{DeliveryStatus, Goal, Network, SetupGap, TriggerRule};
use postback::setup::{GoalInput, Setup, SetupError, TagInput};
use postback::store::Store;
use serde_json::json;

async fn setup_on(store: &Store) -> Setup {
    Setup::new(store.clone(), Arc::new(Credentials::without_keychain()))
}

/// The goal "First purchase", counted once per player.
async fn first_purchase_goal(setup: &Setup, game_id: i64) -> Goal {
    setup
        .save_goal(game_id, &GoalInput { rule: TriggerRule::OncePerPlayer, ..goal_form("First purchase", "purchase") })
        .await
        .unwrap()
}

fn goal_form(name: &str, event: &str) -> GoalInput {
    GoalInput { name: name.into(), event: event.into(), active: true, ..GoalInput::default() }
}

#[tokio::test]
async fn games_are_created_renamed_switched_and_deleted_with_everything_of_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let demo = postback::sandbox::ensure_demo_game(&store, "http://127.0.0.1:9").await.unwrap();
    assert!(demo.demo);
    let setup = setup_on(&store).await;
    let game = setup.create_game("  Space Miner ").await.unwrap();
    assert_eq!(game.name, "Space Miner");
    let duplicate = setup.create_game("Space Miner").await.unwrap_err();
    assert_eq!(postback::model::ApiError::from(duplicate).field.as_deref(), Some("name"));
    assert_eq!(setup.rename_game(game.id, "Space Miner 2").await.unwrap().name, "Space Miner 2");

    // The current game is remembered (the window and the CLI open on it).
    assert_eq!(store.current_game().await.unwrap().unwrap().id, demo.id);
    store.set_current_game(game.id).await.unwrap();
    store.close().await;
    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(
        postback::sandbox::ensure_demo_game(&store, "http://127.0.0.1:9").await.unwrap().id,
        game.id,
        "after a restart too"
    );

    // Give the game a config, goals, a queued event and a log row, then delete it.
    let setup = setup_on(&store).await;
    let configs = postback::sandbox::demo_configs("http://127.0.0.1:9", &["purchase"], vec![]);
    for c in &configs {
        store.create_config(game.id, c, Some("sandbox")).await.unwrap();
    }
    setup.save_goal(game.id, &goal_form("First purchase", "purchase")).await.unwrap();
    let line = json!({"event_id": "e1", "name": "purchase", "occurred_at": chrono::Utc::now().to_rfc3339(),
        "player_id": "p", "consent": "full", "click_ids": {"ttclid": "t"}})
    .to_string();
    postback::ingest::import_ndjson(&store, game.id, line.as_bytes(), now_ms()).await.unwrap();
    let usage = store.game_usage(game.id).await.unwrap();
    assert_eq!((usage.configs, usage.goals, usage.queued), (3, 1, 1));
    assert!(matches!(setup.delete_game(demo.id).await, Err(SetupError::DemoGame)), "the demo game stays");
    setup.delete_game(game.id).await.unwrap();
    assert!(store.game(game.id).await.is_err());
    assert_eq!(store.queue_counts().await.unwrap(), (0, 0, 0), "its queue went with it");
    assert_eq!(store.current_game().await.unwrap().unwrap().id, demo.id, "back on the demo game");
}

#[tokio::test]
async fn goals_are_created_edited_reordered_deactivated_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let game = store.create_game("Goals").await.unwrap();
    let setup = setup_on(&store).await;
    let first = setup
        .save_goal(game.id, &GoalInput { rule: TriggerRule::OncePerPlayer, ..goal_form("First purchase", "purchase") })
        .await
        .unwrap();
    let launch = setup.save_goal(game.id, &goal_form("Any launch", "game_launch")).await.unwrap();
    let custom = setup.save_goal(game.id, &goal_form("Level 10", "level_ten")).await.unwrap();
    assert_eq!(
        [first.id.as_str(), launch.id.as_str(), custom.id.as_str()],
        ["first-purchase", "any-launch", "level-10"]
    );
    let keys = |goals: Vec<Goal>| goals.into_iter().map(|g| g.id).collect::<Vec<_>>();
    assert_eq!(keys(store.goals(game.id).await.unwrap()), ["first-purchase", "any-launch", "level-10"]);

    // Edit in place: the key and position stay.
    let edited = GoalInput {
        key: Some(first.id.clone()),
        min_value: Some("4.99".into()),
        currency: Some("EUR".into()),
        ..goal_form("First big purchase", "purchase")
    };
    setup.save_goal(game.id, &edited).await.unwrap();
    let goals = store.goals(game.id).await.unwrap();
    assert_eq!(goals[0].name, "First big purchase");
    assert_eq!(
        goals[0].value_filter.as_ref().map(|f| (f.min_value.as_str(), f.currency.as_str())),
        Some(("4.99", "EUR"))
    );
    assert_eq!(goals[0].rule, TriggerRule::EveryTime, "the form's rule replaces the old one");

    let order = vec!["level-10".to_owned(), "first-purchase".to_owned(), "any-launch".to_owned()];
    assert_eq!(keys(setup.reorder_goals(game.id, &order).await.unwrap()), order);
    assert!(setup.reorder_goals(game.id, &order[..2]).await.is_err(), "every goal once");

    store.set_goal_active(game.id, "any-launch", false).await.unwrap();
    assert!(!store.goals(game.id).await.unwrap()[2].active);
    store.delete_goal(game.id, "level-10").await.unwrap();
    assert_eq!(keys(store.goals(game.id).await.unwrap()), ["first-purchase", "any-launch"]);
    assert!(store.delete_goal(game.id, "level-10").await.is_err());
}

/// The e2e flow's engine half: goals "First purchase" (once per player) and "Any launch",
/// mapped on the X sandbox config; two purchases of one player → X gets the first once.
#[tokio::test]
async fn once_per_player_sends_a_players_first_purchase_once_and_erasure_forgets_it() {
    let rig = rig_with("sandbox", vec![]).await;
    let setup = setup_on(&rig.store).await;
    let x = rig.config_ids[2];
    let first = first_purchase_goal(&setup, rig.game_id).await;
    let launch = setup.save_goal(rig.game_id, &goal_form("Any launch", "game_launch")).await.unwrap();
    let rows = rig.store.integrations(rig.game_id).await.unwrap();
    assert_eq!(rows[2].gaps, [SetupGap::NoMappedGoals]);
    assert_eq!(rows[2].unmapped_goals, ["First purchase", "Any launch"]);
    let checks = setup
        .save_tags(
            x,
            &[
                TagInput { goal_key: first.id.clone(), tag: "tw-sbx01-first".into() },
                TagInput { goal_key: launch.id.clone(), tag: "tw-sbx01-launch".into() },
            ],
        )
        .await
        .unwrap();
    assert!(checks.iter().all(|c| c.warnings.is_empty()));
    assert!(rig.store.integrations(rig.game_id).await.unwrap()[2].gaps.is_empty());

    let purchases = events(2, "purchase", "p1");
    let report = rig.import(&purchases).await;
    assert_eq!(report.skipped.get("already_converted"), Some(&1), "{report:?}");
    rig.dispatch(fast_options()).await;
    let x_log = rig.log(2, Some(DeliveryStatus::Success)).await;
    assert_eq!(x_log.len(), 1);
    assert_eq!((x_log[0].goal_key.as_str(), x_log[0].event_id.as_str()), ("first-purchase", "purchase-p1-0"));
    assert_eq!(rig.stats(Network::X).distinct_event_ids, 1);
    assert_eq!(rig.stats(Network::TikTok).distinct_event_ids, 2, "TikTok forwards its trigger events every time");

    // Re-importing the first purchase is a duplicate, not a second conversion.
    let again = rig.import(&purchases).await;
    assert_eq!(again.enqueued, 0);
    // An erased player's memory goes too: if they came back under the same id, nothing of the
    // old conversion would stop (or identify) them.
    rig.store.erase_player("p1", now_ms()).await.unwrap();
    let memory: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM goal_conversions")
        .fetch_one(
            &mut <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
                "sqlite://{}",
                rig.dir.path().join(postback::store::DB_FILE).display()
            ))
            .await
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(memory, 0);
}

on_both_engines_rig! {
    async fn tag_mapping_rules_and_a_pixel_change(engine: Engine) {
        let rig = rig_on(engine, "sandbox", vec![Goal::mapped("buy", "Purchase", "purchase", "tw-sbx01-buy01")]).await;
        let setup = setup_on(&rig.store).await;
        let x = rig.config_ids[2];
        let bad = setup.save_tags(x, &[TagInput { goal_key: "buy".into(), tag: "tw-nope".into() }]).await.unwrap_err();
        let api = postback::model::ApiError::from(bad);
        assert_eq!(api.field.as_deref(), Some("tags.buy"));
        assert_eq!(
            setup.tag_mapping(x).await.unwrap().rows[0].tag.as_deref(),
            Some("tw-sbx01-buy01"),
            "an invalid tag saves nothing"
        );
        let warned =
            setup.save_tags(x, &[TagInput { goal_key: "buy".into(), tag: "tw-other-buy01".into() }]).await.unwrap();
        assert!(warned[0].warnings[0].contains("another pixel"));
        setup.save_tags(x, &[TagInput { goal_key: "buy".into(), tag: String::new() }]).await.unwrap();
        let rows = rig.store.integrations(rig.game_id).await.unwrap();
        assert_eq!(
            (rows[2].gaps.as_slice(), rows[2].unmapped_goals.as_slice()),
            ([SetupGap::NoMappedGoals].as_slice(), ["Purchase".to_owned()].as_slice())
        );

        // Moving to another pixel clears the old pixel's tags (they could only be refused).
        setup.save_tags(x, &[TagInput { goal_key: "buy".into(), tag: "tw-sbx01-buy01".into() }]).await.unwrap();
        assert_eq!(rig.store.clear_foreign_tags(x, "real42").await.unwrap(), 1);
        assert_eq!(setup.tag_mapping(x).await.unwrap().rows[0].tag, None);
    }
}

on_both_engines_rig! {
    async fn a_disabled_config_queues_nothing_and_its_queue_waits(engine: Engine) {
        let rig = rig_on(engine, "sandbox", vec![]).await;
        let tiktok = rig.config_ids[0];
        rig.import(&events(2, "purchase", "p1")).await;
        rig.store.set_enabled(tiktok, false).await.unwrap();
        let later = rig.import(&events(3, "game_launch", "p2")).await;
        assert_eq!(later.enqueued, 3, "Reddit only: TikTok is off and X has no goals");
        rig.dispatch(fast_options()).await;
        assert_eq!(rig.stats(Network::TikTok).requests, 0);
        assert_eq!(rig.store.pending_count(tiktok).await.unwrap(), 2, "queued before: waiting");
        rig.store.set_enabled(tiktok, true).await.unwrap();
        assert_eq!(rig.dispatch(fast_options()).await.success, 2);

        // Trigger events are edited after connecting; at least one.
        let setup = setup_on(&rig.store).await;
        assert_eq!(setup.set_trigger_events(tiktok, &["purchase".into(), " purchase".into()]).await.unwrap(), ["purchase"]);
        let none = setup.set_trigger_events(tiktok, &[" ".into()]).await.unwrap_err();
        assert_eq!(postback::model::ApiError::from(none).field.as_deref(), Some("trigger_events"));
        let skipped = rig.import(&events(1, "game_launch", "p3")).await;
        assert_eq!(skipped.skipped.get("event_not_triggered"), Some(&1), "TikTok no longer: {skipped:?}");
        assert_eq!(skipped.skipped.get("no_mapped_goal"), Some(&1), "X has no goal: {skipped:?}");
    }
}

on_both_engines_rig! {
    /// The "once per player" rule, table-driven: which imports of which players' purchases reach
    /// the queue for a once-per-player goal (the memory lives in the database, per goal).
    async fn once_per_player_table(engine: Engine) {
        let rig = rig_on(engine, "sandbox", vec![]).await;
        let setup = setup_on(&rig.store).await;
        let first = first_purchase_goal(&setup, rig.game_id).await;
        let every = setup.save_goal(rig.game_id, &goal_form("Every purchase", "purchase")).await.unwrap();
        setup
            .save_tags(
                rig.config_ids[2],
                &[
                    TagInput { goal_key: first.id.clone(), tag: "tw-sbx01-first".into() },
                    TagInput { goal_key: every.id.clone(), tag: "tw-sbx01-every".into() },
                ],
            )
            .await
            .unwrap();
        let purchase = |id: &str, player: &str| {
            json!({"event_id": id, "name": "purchase", "occurred_at": chrono::Utc::now().to_rfc3339(), "player_id": player,
                   "consent": "anonymous", "click_ids": {"twclid": "w"}})
            .to_string()
        };
        // (lines of one import, X conversions of the once-per-player goal it queues)
        let steps: [(Vec<String>, u64); 5] = [
            (vec![purchase("a1", "alice"), purchase("a2", "alice")], 1), // two in one import: the first
            (vec![purchase("a3", "alice")], 0),                          // a later one: no
            (vec![purchase("a1", "alice")], 0),                          // the same event again: a duplicate
            (vec![purchase("b1", "bob")], 1),                            // another player: yes
            (vec![purchase("b2", "bob"), purchase("c1", "carol")], 1),   // carol's first only
        ];
        for (i, (lines, once)) in steps.iter().enumerate() {
            let before = rig.store.pending_count(rig.config_ids[2]).await.unwrap();
            let report = rig.import(&lines.join("\n")).await;
            let after = rig.store.pending_count(rig.config_ids[2]).await.unwrap();
            let new_every = lines.iter().filter(|l| !l.contains("\"a1\"") || i == 0).count() as u64;
            assert_eq!(after - before, once + new_every, "step {i}: {report:?}");
        }
        // Erasing alice forgets her conversion: were she to come back under that id, she would count anew.
        rig.store.erase_player("alice", now_ms()).await.unwrap();
        let erased = rig.import(&purchase("a9", "alice")).await;
        assert_eq!(erased.skipped.get("player_erased"), Some(&3), "but an erased player is never forwarded again");
    }
}

on_both_engines_rig! {
    /// Through the ingest API, a player's second purchase for a once-per-player goal is accepted
    /// and said not to be forwarded to X for that reason: its event id is new, so it is never
    /// answered as a duplicate (which would tell a game server its event was a resend).
    async fn the_ingest_answers_an_already_converted_player_as_accepted_not_duplicate(engine: Engine) {
        let rig = rig_on(engine, "sandbox", vec![]).await;
        let setup = setup_on(&rig.store).await;
        let first = first_purchase_goal(&setup, rig.game_id).await;
        setup.save_tags(rig.config_ids[2], &[TagInput { goal_key: first.id, tag: "tw-sbx01-first".into() }]).await.unwrap();
        // X alone, so that the second purchase has no other network to be queued for.
        for config in &rig.config_ids[..2] {
            rig.store.set_enabled(*config, false).await.unwrap();
        }
        let ingest = postback::ingest::server::start(
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            rig.store.clone(),
            postback::secrets::Secret::new("pbd_setup_token"),
        )
        .await
        .unwrap();
        let url = format!("{}/v1/events?game={}", ingest.base_url, rig.game_id);
        let http = postback::delivery::http_client(std::time::Duration::from_secs(10)).expect("HTTP client");
        let mut answers = Vec::new();
        for event in events(2, "purchase", "p1").lines() {
            let response = http
                .post(&url)
                .bearer_auth("pbd_setup_token")
                .header("content-type", "application/json")
                .body(event.to_owned())
                .send()
                .await
                .unwrap();
            answers.push(serde_json::from_str::<serde_json::Value>(&response.text().await.unwrap()).unwrap());
        }
        assert_eq!(answers[0]["accepted"], 1, "{}", answers[0]);
        assert_eq!(answers[1]["accepted"], 1, "{}", answers[1]);
        assert_eq!(answers[1]["duplicates"], 0, "{}", answers[1]);
        let reasons = answers[1]["results"][0]["not_forwarded"].to_string();
        assert!(reasons.contains("already converted"), "{}", answers[1]);
        ingest.stop().await;
    }
}

/// A game's default country for phone numbers: checked (an ISO 3166-1 alpha-2 code, any case),
/// saved with the game form's name in one go, kept across restarts, cleared.
#[tokio::test]
async fn a_games_default_country_is_checked_saved_and_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let setup = setup_on(&store).await;
    let game = setup.create_game_with_country("Moon Miner", "gb").await.unwrap();
    assert_eq!(game.default_country.as_deref(), Some("GB"));
    assert_eq!(setup.create_game("Plain").await.unwrap().default_country, None, "none by default");
    let refused = setup.create_game_with_country("Sun Miner", "UK").await.unwrap_err();
    assert_eq!(postback::model::ApiError::from(refused).field.as_deref(), Some("default_country"));

    // The game form: both fields are checked before either is saved.
    let bad = postback::model::ApiError::from(setup.update_game(game.id, "Moon Miner 2", "UK").await.unwrap_err());
    assert_eq!(bad.field.as_deref(), Some("default_country"));
    assert!(bad.message.contains("GB"), "says what to use: {}", bad.message);
    let bad = postback::model::ApiError::from(setup.update_game(game.id, "", "US").await.unwrap_err());
    assert_eq!(bad.field.as_deref(), Some("name"));
    assert_eq!(store.game(game.id).await.unwrap(), game, "nothing saved");
    let updated = setup.update_game(game.id, "Moon Miner 2", " us ").await.unwrap();
    assert_eq!((updated.name.as_str(), updated.default_country.as_deref()), ("Moon Miner 2", Some("US")));

    store.close().await;
    let store = Store::open(dir.path()).await.unwrap();
    let games = store.games().await.unwrap();
    let listed = games.iter().find(|g| g.id == game.id).unwrap();
    assert_eq!(listed.default_country.as_deref(), Some("US"), "after a restart");
    assert_eq!(games.iter().find(|g| g.name == "Plain").unwrap().default_country, None);

    let setup = setup_on(&store).await;
    assert_eq!(setup.set_default_country(game.id, "").await.unwrap().default_country, None, "cleared");
    assert_eq!(store.game(game.id).await.unwrap().default_country, None);
    assert_eq!(setup.set_default_country(game.id, "jp").await.unwrap().default_country.as_deref(), Some("JP"));
    assert!(setup.set_default_country(game.id + 100, "US").await.is_err(), "no such game");
    // The column holds nothing but two upper-case letters, whoever writes it.
    assert!(store.set_default_country(game.id, Some("usa")).await.is_err());
    assert_eq!(store.game(game.id).await.unwrap().default_country.as_deref(), Some("JP"));
}

on_both_engines_rig! {
    /// Through the ingest API on loopback to the sandbox, an X-only game and a national number
    /// (`(650) 555-1212 x450`): without a default country the event is accepted, not forwarded, and
    /// the answer says why; with the game's default country (US) the number is read there, queued
    /// as E.164 (clearing the setting afterwards changes nothing), and X receives its SHA-256.
    async fn a_national_phone_number_reaches_x_hashed_in_the_games_default_country(engine: Engine) {
        let rig = rig_on(engine, "sandbox", vec![Goal::mapped("buy", "Purchase", "purchase", "tw-sbx01-buy01")]).await;
        for config in &rig.config_ids[..2] {
            rig.store.set_enabled(*config, false).await.unwrap();
        }
        let setup = setup_on(&rig.store).await;
        let ingest = postback::ingest::server::start(
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            rig.store.clone(),
            postback::secrets::Secret::new("pbd_phone_token"),
        )
        .await
        .unwrap();
        let url = format!("{}/v1/events?game={}", ingest.base_url, rig.game_id);
        let http = postback::delivery::http_client(std::time::Duration::from_secs(10)).expect("HTTP client");
        let send = |id: &str| {
            let body = json!({"event_id": id, "name": "purchase", "occurred_at": chrono::Utc::now().to_rfc3339(),
                "player_id": "p", "consent": "full", "phone": "(650) 555-1212 x450"})
            .to_string();
            let request = http.post(&url).bearer_auth("pbd_phone_token").header("content-type", "application/json");
            async move {
                let response = request.body(body).send().await.unwrap();
                serde_json::from_str::<serde_json::Value>(&response.text().await.unwrap()).unwrap()
            }
        };

        let answer = send("no-country").await;
        assert_eq!(answer["accepted"], 1, "{answer}");
        let why = answer["results"][0]["not_forwarded"].to_string();
        assert!(why.contains("phone: no country code (+ or 00) and the game has no default country"), "{answer}");
        assert!(!why.contains("555"), "never the number: {why}");

        setup.set_default_country(rig.game_id, "US").await.unwrap();
        let answer = send("in-us").await;
        assert_eq!(answer["accepted"], 1, "{answer}");
        assert!(answer["results"][0].get("not_forwarded").is_none(), "{answer}");
        ingest.stop().await;

        // What was queued was read when accepted.
        setup.set_default_country(rig.game_id, "").await.unwrap();
        rig.dispatch(fast_options()).await;
        let sent = rig.log(2, Some(DeliveryStatus::Success)).await;
        assert_eq!(sent.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), ["in-us"]);
        let detail = postback::watch::Watch::new(rig.store.clone()).detail(sent[0].id).await.unwrap();
        let body = detail.request.expect("the stored request").body;
        let want = postback::identity::sha256_hex("+16505551212");
        assert_eq!(body["conversions"][0]["identifiers"], json!([{"hashed_phone_number": want}]), "{body}");
    }
}
