//! The three ad networks: turning prepared events into HTTP requests and answers into outcomes.
//!
//! Everything here is pure: the request builders take plain data and return plain data, the
//! classifiers take a status, headers and body. I/O lives in `delivery`.

mod classify;
pub mod money;
mod reddit;
mod request;
mod tiktok;
mod x;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

pub use classify::{Classification, HttpResponse, ItemOutcome, MAX_WAIT};
pub use request::{items_pointer, redact_items, Header, HeaderValue, Request, REDACTED};

use crate::identity::{self, EmailRule, PhoneCountry, PhoneProblem};
use crate::model::{Consent, ConversionEvent, Network, PostbackConfig};
use crate::quality::{KeySet, MatchKey as QualityKey};

/// Why an event is not forwarded to a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    ConsentNone,
    NoIdentifier,
    EventNotTriggered,
    NoMappedGoal,
    PlayerErased,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::ConsentNone => "consent_none",
            SkipReason::NoIdentifier => "no_identifier",
            SkipReason::EventNotTriggered => "event_not_triggered",
            SkipReason::NoMappedGoal => "no_mapped_goal",
            SkipReason::PlayerErased => "player_erased",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skip {
    pub reason: SkipReason,
    pub message: String,
}

impl Skip {
    fn new(reason: SkipReason, message: impl Into<String>) -> Self {
        Self { reason, message: message.into() }
    }
}

/// One event made ready for one config: the network's items (one per event for TikTok and
/// Reddit, one per mapped Goal for X) and what weakened it.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedEvent {
    pub event_id: String,
    pub items: Vec<Value>,
    /// For each item, the X goal it reports (`""` for TikTok and Reddit): the queue keeps one
    /// row per conversion so that each has its own outcome.
    pub goals: Vec<String>,
    pub warnings: Vec<String>,
}

/// The most items one request may carry.
pub fn batch_limit(network: Network) -> usize {
    match network {
        Network::TikTok => tiktok::MAX_EVENTS,
        Network::Reddit => reddit::MAX_EVENTS,
        Network::X => x::MAX_CONVERSIONS,
    }
}

/// Decides whether `event` goes to `config` and builds its items.
///
/// Order of the checks: erasure, then routing (trigger events / goals), then consent, then the
/// network's minimum identifier.
///
/// A phone number without its country code is not read (see [`prepare_for_game`]).
pub fn prepare(config: &PostbackConfig, event: &ConversionEvent, player_erased: bool) -> Result<PreparedEvent, Skip> {
    prepare_conversion(config, event, "", player_erased, None)
}

/// [`prepare`] for an event of a game whose phone numbers without a country code are read in
/// `default_country` (the game's setting; `postback preview --default-country`).
pub fn prepare_for_game(
    config: &PostbackConfig,
    event: &ConversionEvent,
    player_erased: bool,
    default_country: Option<PhoneCountry>,
) -> Result<PreparedEvent, Skip> {
    prepare_conversion(config, event, "", player_erased, default_country)
}

/// [`prepare`] for one queued conversion: for X, only the goal `goal_key` (every mapped goal
/// when it is empty); TikTok and Reddit ignore it. No default country is needed: a queued
/// event's national phone number was read in its game's country when it was accepted
/// ([`identity::localise_phone`]).
pub fn prepare_goal(
    config: &PostbackConfig,
    event: &ConversionEvent,
    goal_key: &str,
    player_erased: bool,
) -> Result<PreparedEvent, Skip> {
    prepare_conversion(config, event, goal_key, player_erased, None)
}

fn prepare_conversion(
    config: &PostbackConfig,
    event: &ConversionEvent,
    goal_key: &str,
    player_erased: bool,
    default_country: Option<PhoneCountry>,
) -> Result<PreparedEvent, Skip> {
    let mut money_warnings = Vec::new();
    let money = checks_before_identity(config, event, goal_key, player_erased, &mut money_warnings)?;
    let mut warnings = Vec::new();
    let id = identity::resolve(event, email_rule(config), default_country, &mut warnings);
    let network = config.network();
    // Consent is not none here, so the identity carries the event's click ids.
    let click_id = event.click_ids.for_network(network).is_some();
    let has = |key| match key {
        PersonKey::Email => id.email_sha256.is_some(),
        PersonKey::Phone => id.phone_sha256.is_some(),
    };
    if !has_minimum_identifier(network, click_id, has) {
        // The skip path only: reading the number again to say why it did not count (X only
        // matches on phones).
        let phone = if network == Network::X { identity::phone_reading(event, default_country).err() } else { None };
        return Err(no_identifier(network, event.consent, phone));
    }
    warnings.extend(money_warnings);
    let (items, goals) = match config {
        PostbackConfig::TikTok(_) => (vec![tiktok::event_item(event, &id, money.as_ref())], vec![String::new()]),
        PostbackConfig::Reddit(_) => (vec![reddit::event_item(event, &id, money.as_ref())], vec![String::new()]),
        PostbackConfig::X(c) => {
            x::conversions(c, event, goal_key, &id, money.as_ref(), &mut warnings).into_iter().unzip()
        }
    };
    Ok(PreparedEvent { event_id: event.event_id.clone(), items, goals, warnings })
}

/// Which identifiers of one event a network could match on, each worked out at most once
/// while the event meets several configs, and only when no cheaper one already decided: reading
/// a phone number costs more than routing the event everywhere else.
#[derive(Debug, Default)]
pub struct Matchability {
    /// The game's country for phone numbers written without one.
    default_country: Option<PhoneCountry>,
    email_plain: Option<bool>,
    email_reddit: Option<bool>,
    phone: Option<Result<bool, PhoneProblem>>,
}

impl Matchability {
    /// For an event of a game whose phone numbers without a country code are read in
    /// `default_country`.
    pub fn new(default_country: Option<PhoneCountry>) -> Self {
        Self { default_country, ..Self::default() }
    }

    fn email(&mut self, event: &ConversionEvent, rule: EmailRule) -> bool {
        let slot = if rule == EmailRule::Reddit { &mut self.email_reddit } else { &mut self.email_plain };
        *slot.get_or_insert_with(|| identity::has_email(event, rule))
    }

    fn phone(&mut self, event: &ConversionEvent) -> bool {
        let country = self.default_country;
        *self.phone.get_or_insert_with(|| identity::phone_reading(event, country)) == Ok(true)
    }

    /// The match keys the event carries to `config`'s network: what [`identity::resolve`] lets
    /// leave (click ids unless consent is none; the rest only at full consent).
    pub fn keys(&mut self, config: &PostbackConfig, event: &ConversionEvent) -> KeySet {
        let mut keys = KeySet::default();
        if event.consent == Consent::None {
            return keys;
        }
        if event.click_ids.for_network(config.network()).is_some() {
            keys.insert(QualityKey::ClickId);
        }
        if event.consent != Consent::Full {
            return keys;
        }
        if self.email(event, email_rule(config)) {
            keys.insert(QualityKey::Email);
        }
        if self.phone(event) {
            keys.insert(QualityKey::Phone);
        }
        if config.network() != Network::X {
            // X's request has no external id.
            keys.insert(QualityKey::ExternalId);
        }
        if event.ip.is_some() && event.user_agent.is_some() {
            keys.insert(QualityKey::IpAndUserAgent);
        }
        keys
    }

    /// Why the event's phone number did not count, when it was read and did not.
    fn phone_problem(&self) -> Option<PhoneProblem> {
        self.phone.and_then(Result::err)
    }
}

/// What [`prepare`] decides, without building the request items: the goal keys the event counts
/// for at this config (`""` for TikTok and Reddit), or why it is not sent. Accepting an event
/// asks this of every config of its game; the items are built when the event is sent.
pub fn admit(
    config: &PostbackConfig,
    event: &ConversionEvent,
    player_erased: bool,
    matchability: &mut Matchability,
) -> Result<Vec<String>, Skip> {
    let money = checks_before_identity(config, event, "", player_erased, &mut Vec::new())?;
    let network = config.network();
    let click_id = event.consent != Consent::None && event.click_ids.for_network(network).is_some();
    let matchable = has_minimum_identifier(network, click_id, |key| match key {
        PersonKey::Email => matchability.email(event, email_rule(config)),
        PersonKey::Phone => matchability.phone(event),
    });
    if !matchable {
        return Err(no_identifier(network, event.consent, matchability.phone_problem()));
    }
    Ok(match config {
        PostbackConfig::X(c) => x::counting_goals(c, &event.name, "", money.as_ref())
            .filter(|goal| goal.event_tag.is_some())
            .map(|goal| goal.id.clone())
            .collect(),
        _ => vec![String::new()],
    })
}

/// The checks [`prepare_goal`] and [`admit`] share, in the documented order: erasure, routing
/// (money first: a goal's value filter decides whether the event counts at all), consent.
/// Returns the event's value, when it has a readable one.
fn checks_before_identity(
    config: &PostbackConfig,
    event: &ConversionEvent,
    goal_key: &str,
    player_erased: bool,
    money_warnings: &mut Vec<String>,
) -> Result<Option<money::Money>, Skip> {
    if player_erased {
        return Err(Skip::new(
            SkipReason::PlayerErased,
            "this player asked to be erased; their events are never forwarded",
        ));
    }
    let money = money::resolve(event, money_warnings);
    route(config, event, goal_key, money.as_ref())?;
    if event.consent == Consent::None {
        return Err(Skip::new(
            SkipReason::ConsentNone,
            "the player gave no consent (consent: none); nothing is forwarded",
        ));
    }
    Ok(money)
}

/// Reddit normalises emails its own way (advanced matching); the others plainly.
fn email_rule(config: &PostbackConfig) -> EmailRule {
    if config.network() == Network::Reddit {
        EmailRule::Reddit
    } else {
        EmailRule::Plain
    }
}

fn route(
    config: &PostbackConfig,
    event: &ConversionEvent,
    goal_key: &str,
    money: Option<&money::Money>,
) -> Result<(), Skip> {
    let triggers = match config {
        PostbackConfig::TikTok(c) => &c.trigger_events,
        PostbackConfig::Reddit(c) => &c.trigger_events,
        PostbackConfig::X(c) => {
            let mut named = x::mapped_goals(c, &event.name, goal_key).peekable();
            let first = named.peek().copied();
            return if x::counting_goals(c, &event.name, goal_key, money).next().is_some() {
                Ok(())
            } else if let Some(goal) = first {
                // Goals count this event name, but their value filters do not let it through.
                let why = goal
                    .value_filter
                    .as_ref()
                    .and_then(|f| money::meets(f, money).err())
                    .unwrap_or_else(|| "it does not meet the goal's filter".into());
                Err(Skip::new(
                    SkipReason::EventNotTriggered,
                    format!("'{}' does not count for X Conversion Goal '{}': {why}", event.name, goal.name),
                ))
            } else if goal_key.is_empty() {
                Err(Skip::new(
                    SkipReason::NoMappedGoal,
                    format!("no active X Conversion Goal with an event tag counts '{}'; map a goal to it", event.name),
                ))
            } else {
                Err(Skip::new(
                    SkipReason::NoMappedGoal,
                    format!(
                        "X Conversion Goal '{goal_key}' no longer counts '{}' with an event tag (deactivated, unmapped or changed); map it again and replay",
                        event.name
                    ),
                ))
            };
        }
    };
    if triggers.iter().any(|t| t == &event.name) {
        Ok(())
    } else {
        Err(Skip::new(
            SkipReason::EventNotTriggered,
            format!("'{}' is not one of this config's trigger events ({})", event.name, triggers.join(", ")),
        ))
    }
}

/// Whether a network can match the player: on its own click id, or on what else it takes
/// (asked lazily, cheapest first). IP address and user agent alone never are enough.
fn has_minimum_identifier(network: Network, click_id: bool, mut has: impl FnMut(PersonKey) -> bool) -> bool {
    match network {
        Network::TikTok => click_id,
        Network::Reddit => click_id || has(PersonKey::Email),
        Network::X => click_id || has(PersonKey::Email) || has(PersonKey::Phone),
    }
}

/// Identifiers besides click ids that a network matches players on.
#[derive(Clone, Copy)]
enum PersonKey {
    Email,
    Phone,
}

/// `phone`: why the event's phone number was not read, if it was asked (X only matches on it).
fn no_identifier(network: Network, consent: Consent, phone: Option<PhoneProblem>) -> Skip {
    let needed = match network {
        Network::TikTok => "a TikTok click id (ttclid)",
        Network::Reddit => "a Reddit click id (rdt_cid) or an email",
        Network::X => "an X click id (twclid), an email or a phone number",
    };
    let consent_note = if consent == Consent::Anonymous { " (at anonymous consent only click ids count)" } else { "" };
    let phone_note = match phone {
        Some(problem) if network == Network::X => format!("; {}", problem.warning()),
        _ => String::new(),
    };
    Skip::new(
        SkipReason::NoIdentifier,
        format!(
            "{} needs {needed}{consent_note}; IP address and user agent alone are not enough{phone_note}",
            network.display_name()
        ),
    )
}

/// Groups prepared events into the fewest requests within the network's batch limit.
/// An event's items always travel together; a validation request (test code) carries one event.
pub fn build_requests(config: &PostbackConfig, events: &[PreparedEvent]) -> Vec<Request> {
    let refs: Vec<&PreparedEvent> = events.iter().collect();
    build_requests_within(config, &refs, batch_limit(config.network()))
}

/// [`build_requests`] with at most `max_items` items per request (fewer than the network takes
/// when a rate limit's budget is smaller); `item_events` index into `events`.
pub fn build_requests_within(config: &PostbackConfig, events: &[&PreparedEvent], max_items: usize) -> Vec<Request> {
    let limit = max_items.clamp(1, batch_limit(config.network()));
    let mut requests = Vec::new();
    let mut items: Vec<Value> = Vec::new();
    let mut owners: Vec<usize> = Vec::new();
    let mut events_in_chunk = 0;
    for (index, event) in events.iter().enumerate() {
        let full = if has_test_code(config) { events_in_chunk >= 1 } else { items.len() + event.items.len() > limit };
        if full && !items.is_empty() {
            requests.push(request_for(config, std::mem::take(&mut items), std::mem::take(&mut owners)));
            events_in_chunk = 0;
        }
        items.extend(event.items.iter().cloned());
        owners.extend(std::iter::repeat_n(index, event.items.len()));
        events_in_chunk += 1;
    }
    if !items.is_empty() {
        requests.push(request_for(config, items, owners));
    }
    requests
}

fn has_test_code(config: &PostbackConfig) -> bool {
    match config {
        PostbackConfig::TikTok(c) => c.test_event_code.is_some(),
        PostbackConfig::Reddit(c) => c.test_id.is_some(),
        PostbackConfig::X(_) => false,
    }
}

fn request_for(config: &PostbackConfig, items: Vec<Value>, item_events: Vec<usize>) -> Request {
    let (url, headers, body) = match config {
        PostbackConfig::TikTok(c) => tiktok::request(c, items),
        PostbackConfig::Reddit(c) => reddit::request(c, items),
        PostbackConfig::X(c) => x::request(c, items),
    };
    Request { method: "POST", url, headers, body, item_events }
}

/// Reads one answer of `network` to `request`: one outcome per item the request carried.
/// `now` is the caller's clock (epoch seconds), used only to turn a reset time into a wait.
pub fn classify(network: Network, request: &Request, response: &HttpResponse, now: i64) -> Classification {
    let items_sent = request.item_events.len();
    match network {
        Network::TikTok => tiktok::classify(response, items_sent, now),
        Network::Reddit => reddit::classify(&request.body, response, items_sent, now),
        Network::X => x::classify(response, items_sent, now),
    }
}

/// The outcome of a request that got no answer (connection refused, reset, timed out).
pub fn transport_failure(message: &str, items_sent: usize) -> Classification {
    Classification::all(ItemOutcome::Unanswered { reason: format!("no answer: {message}") }, items_sent, None)
}

/// How old (and how far ahead) an event may be for a network to take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptanceWindow {
    pub max_age: chrono::Duration,
    pub max_ahead: Option<chrono::Duration>,
    /// Whether the network documents the limit, or it is the product's own choice.
    pub documented: bool,
}

/// Reddit documents 7 days (168 h) back and 5 minutes ahead. TikTok and X document no limit:
/// we stop at their longest click attribution windows (TikTok 28 days, X 30 days), since an
/// older conversion can no longer be attributed to an ad.
pub fn acceptance_window(network: Network) -> AcceptanceWindow {
    match network {
        Network::Reddit => AcceptanceWindow {
            max_age: chrono::Duration::hours(168),
            max_ahead: Some(chrono::Duration::minutes(5)),
            documented: true,
        },
        Network::TikTok => AcceptanceWindow { max_age: chrono::Duration::days(28), max_ahead: None, documented: false },
        Network::X => AcceptanceWindow { max_age: chrono::Duration::days(30), max_ahead: None, documented: false },
    }
}

/// How long a failed event's data is kept for replay by default: the longest acceptance window
/// of any network (an older event is refused by every network, so replaying it cannot help).
pub fn longest_acceptance_window() -> std::time::Duration {
    Network::ALL.iter().map(|n| acceptance_window(*n).max_age.to_std().unwrap_or_default()).max().unwrap_or_default()
}

/// Why the network would refuse this event at send time because of its age, if it would.
pub fn send_window_problem(network: Network, occurred_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<String> {
    let window = acceptance_window(network);
    let name = network.display_name();
    let days = |d: chrono::Duration| {
        if d.num_hours() % 24 == 0 {
            format!("{} days", d.num_days())
        } else {
            format!("{} h", d.num_hours())
        }
    };
    if occurred_at < now - window.max_age {
        let age = now - occurred_at;
        Some(format!(
            "too old for {name}: the event is {} old and {name} takes events up to {} old; it is marked Failed instead of sent",
            days(chrono::Duration::hours(age.num_hours().max(1))),
            days(window.max_age)
        ))
    } else if window.max_ahead.is_some_and(|ahead| occurred_at > now + ahead) {
        Some(format!(
            "event time is more than 5 minutes in the future; {name} refuses it — check the clock of the event source"
        ))
    } else {
        None
    }
}

/// The JSON document `postback preview` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Preview {
    Forwarded {
        requests: Vec<Value>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
    },
    Skipped {
        skipped: Skip,
    },
}

/// What would be sent for one event, credentials redacted. `now` only adds warnings.
pub fn preview(config: &PostbackConfig, event: &ConversionEvent, player_erased: bool, now: DateTime<Utc>) -> Preview {
    preview_for_game(config, event, player_erased, None, now)
}

/// [`preview`] with phone numbers without a country code read in `default_country`.
pub fn preview_for_game(
    config: &PostbackConfig,
    event: &ConversionEvent,
    player_erased: bool,
    default_country: Option<PhoneCountry>,
    now: DateTime<Utc>,
) -> Preview {
    match prepare_for_game(config, event, player_erased, default_country) {
        Err(skipped) => Preview::Skipped { skipped },
        Ok(prepared) => {
            let mut warnings = prepared.warnings.clone();
            warnings.extend(send_window_problem(config.network(), event.occurred_at, now));
            let requests =
                build_requests(config, std::slice::from_ref(&prepared)).iter().map(Request::redacted_json).collect();
            Preview::Forwarded { requests, warnings }
        }
    }
}

/// Joins a base URL override (or the network's real host) with an API path.
fn endpoint(base_url: Option<&str>, default_base: &str, path: &str) -> String {
    format!("{}{path}", base_url.unwrap_or(default_base).trim_end_matches('/'))
}

/// Inserts `key: value` into a JSON object when the value is present.
fn put(obj: &mut serde_json::Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        obj.insert(key.to_owned(), v.into());
    }
}
