use std::time::Duration;

/// A network's answer, as plain data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Self { status, headers: Vec::new(), body: body.into() }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The headers worth keeping with a stored answer: content type, waits, rate limits and
    /// request ids (never cookies or anything else).
    pub fn headers_that_matter(&self) -> std::collections::BTreeMap<String, String> {
        const KEEP: [&str; 8] = [
            "content-type",
            "retry-after",
            "x-rate-limit-limit",
            "x-rate-limit-remaining",
            "x-rate-limit-reset",
            "x-request-id",
            "x-tt-logid",
            "date",
        ];
        self.headers
            .iter()
            .filter(|(n, _)| KEEP.contains(&n.to_ascii_lowercase().as_str()))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect()
    }
}

/// What happened to one item of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    Success,
    /// Refused for good; never retried. `credential` marks 401/403-class refusals that pause
    /// the config until its credentials change.
    Rejected {
        reason: String,
        credential: bool,
    },
    /// Worth another attempt later; `retry_after` is the wait the network asked for.
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Not judged on its own: the batch failed because of other items, send it again alone.
    Resend,
    /// No HTTP answer at all (connection refused, DNS, timeout): not an attempt; the network
    /// is offline for now.
    Unanswered {
        reason: String,
    },
}

impl ItemOutcome {
    pub fn rejected(reason: impl Into<String>) -> Self {
        ItemOutcome::Rejected { reason: reason.into(), credential: false }
    }

    pub fn credential(reason: impl Into<String>) -> Self {
        ItemOutcome::Rejected { reason: reason.into(), credential: true }
    }

    pub fn transient(reason: impl Into<String>, retry_after: Option<Duration>) -> Self {
        ItemOutcome::Transient { reason: reason.into(), retry_after }
    }
}

/// The reading of one answer: an outcome per item sent, plus the network's request/debug id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub items: Vec<ItemOutcome>,
    pub request_id: Option<String>,
}

impl Classification {
    /// Every item shares one outcome.
    pub fn all(outcome: ItemOutcome, items_sent: usize, request_id: Option<String>) -> Self {
        Self { items: vec![outcome; items_sent], request_id }
    }

    /// A payload refusal of a whole batch: a single item is rejected, a larger batch is split
    /// and re-sent item by item so that one bad event never fails the good ones.
    pub fn refused_batch(reason: String, items_sent: usize, request_id: Option<String>) -> Self {
        if items_sent <= 1 {
            Self::all(ItemOutcome::rejected(reason), items_sent, request_id)
        } else {
            Self::all(ItemOutcome::Resend, items_sent, request_id)
        }
    }
}

impl ItemOutcome {
    /// Which of two outcomes of the same event counts: a refusal beats a retry beats a re-send
    /// beats a success, so an event is Success only when all its items are.
    fn severity(&self) -> u8 {
        match self {
            ItemOutcome::Success => 0,
            ItemOutcome::Resend => 1,
            ItemOutcome::Unanswered { .. } | ItemOutcome::Transient { .. } => 2,
            ItemOutcome::Rejected { credential: false, .. } => 3,
            ItemOutcome::Rejected { credential: true, .. } => 4,
        }
    }
}

impl Classification {
    /// One outcome per input event, given each item's event (`Request::item_events`): an X event
    /// with two goals has two items and one outcome.
    pub fn per_event(&self, item_events: &[usize]) -> Vec<(usize, ItemOutcome)> {
        let mut events: Vec<(usize, ItemOutcome)> = Vec::new();
        for (outcome, &event) in self.items.iter().zip(item_events) {
            match events.iter_mut().find(|(e, _)| *e == event) {
                Some((_, worst)) if outcome.severity() > worst.severity() => *worst = outcome.clone(),
                Some(_) => {}
                None => events.push((event, outcome.clone())),
            }
        }
        events
    }
}

/// The longest wait a network's answer can impose; a longer (or absurd) `Retry-After` or
/// `x-rate-limit-reset` is clamped to it, so a broken header never parks delivery for good.
pub const MAX_WAIT: Duration = Duration::from_secs(3600);

/// The wait a `Retry-After` header asks for: delta seconds, or an HTTP date measured against
/// `now` (epoch seconds); at most [`MAX_WAIT`].
pub(super) fn retry_after(response: &HttpResponse, now: i64) -> Option<Duration> {
    let value = response.header("retry-after")?.trim();
    let wait = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(value).ok()?.timestamp();
        Duration::from_secs(u64::try_from(at.saturating_sub(now)).unwrap_or(0))
    };
    Some(wait.min(MAX_WAIT))
}

/// The generic reading of an HTTP status when the body says nothing more specific.
pub(super) fn by_status(
    response: &HttpResponse,
    items_sent: usize,
    detail: String,
    retry: Option<Duration>,
) -> Classification {
    let status = response.status;
    let reason = if detail.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {detail}") };
    match status {
        200..=299 => Classification::all(ItemOutcome::Success, items_sent, None),
        401 | 403 => Classification::all(ItemOutcome::credential(reason), items_sent, None),
        408 | 429 | 500..=599 => Classification::all(ItemOutcome::transient(reason, retry), items_sent, None),
        _ => Classification::refused_batch(reason, items_sent, None),
    }
}

/// A short, single-line excerpt of a body for the delivery log (HTML error pages included).
pub(super) fn excerpt(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_an_http_date() {
        let secs = HttpResponse::new(429, "").with_header("Retry-After", "30");
        assert_eq!(retry_after(&secs, 0), Some(Duration::from_secs(30)));
        let date = HttpResponse::new(503, "").with_header("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(retry_after(&date, 1_445_412_420), Some(Duration::from_secs(60)));
        assert_eq!(retry_after(&date, 1_445_412_600), Some(Duration::ZERO), "a date in the past: no wait");
        assert_eq!(retry_after(&HttpResponse::new(429, "").with_header("Retry-After", "soon"), 0), None);
        assert_eq!(retry_after(&HttpResponse::new(429, "").with_header("Retry-After", "-5"), 0), None);
    }

    #[test]
    fn hostile_waits_are_clamped() {
        for value in ["18446744073709551615", "Fri, 31 Dec 9999 23:59:59 GMT", "99999999"] {
            let r = HttpResponse::new(429, "").with_header("Retry-After", value);
            assert_eq!(retry_after(&r, 0), Some(MAX_WAIT), "{value}");
        }
    }

    #[test]
    fn per_event_takes_the_worst_item() {
        let c = Classification {
            items: vec![
                ItemOutcome::Success,
                ItemOutcome::rejected("bad tag"),
                ItemOutcome::Success,
                ItemOutcome::Resend,
            ],
            request_id: None,
        };
        let events = c.per_event(&[0, 0, 1, 2]);
        assert_eq!(events.len(), 3);
        assert!(matches!(&events[0], (0, ItemOutcome::Rejected { .. })));
        assert_eq!(events[1], (1, ItemOutcome::Success));
        assert_eq!(events[2], (2, ItemOutcome::Resend));
    }
}
