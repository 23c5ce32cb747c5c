//! A log row's outcome in plain words and what to do next (pure: the row, the network, the
//! stored answer).

use serde_json::Value;

use crate::model::{DeliveryStatus, Explanation, LogEntry, NetworkAnswer, SentRequest};

/// The request field the network's answer names, when it names one.
pub fn named_field(entry: &LogEntry, answer: Option<&NetworkAnswer>) -> Option<String> {
    let body: Option<Value> = answer.and_then(|a| a.body.as_deref()).and_then(|b| serde_json::from_str(b).ok());
    // X: errors[].parameter, e.g. "conversions[0].event_id".
    if let Some(parameter) = body
        .as_ref()
        .and_then(|b| b.get("errors")?.as_array()?.iter().find_map(|e| e.get("parameter")?.as_str().map(str::to_owned)))
    {
        return Some(parameter.split_once("].").map_or(parameter.clone(), |(_, f)| f.to_owned()));
    }
    // TikTok: "… data[0].properties.value must be a number".
    let text = entry.error.as_deref().unwrap_or_default();
    let tiktok = text.find("data[").and_then(|at| {
        let rest = &text[at..];
        let field = rest.split_once("].")?.1;
        Some(field.split(|c: char| c.is_whitespace() || c == ':').next()?.to_owned())
    });
    tiktok.or_else(|| {
        // Reddit names fields inside its sentences ("invalid action_source", "event_at …").
        ["action_source", "event_at", "tracking_type", "custom_event_name", "conversion_id", "click_id", "value"]
            .iter()
            .find(|f| text.contains(*f))
            .map(|f| (*f).to_owned())
    })
}

/// What happened and what to do, for the detail view.
pub fn explain(entry: &LogEntry, answer: Option<&NetworkAnswer>) -> Explanation {
    let name = entry.network.display_name();
    let error = entry.error.clone().unwrap_or_default();
    let http = entry.http_status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
    let rotate = if entry.network == crate::model::Network::X {
        "Reconnect X on the Integrations page"
    } else {
        "Rotate the credentials on the Integrations page"
    };
    let (summary, action, field) = match entry.status {
        DeliveryStatus::Success => (
            match &entry.request_id {
                Some(id) => format!("Delivered: {name} accepted it (its request id {id})."),
                None => format!("Delivered: {name} accepted it."),
            },
            None,
            None,
        ),
        DeliveryStatus::Held => (
            format!("{name} refused the credentials{http}: {error}"),
            Some(format!(
                "{rotate}. Delivery for this config waits until then; nothing is lost and nothing is sent twice."
            )),
            None,
        ),
        DeliveryStatus::Offline => (
            format!("No answer from {name}: {error}"),
            Some(format!(
                "Check this computer's internet connection, proxy or firewall. The events wait and go out when {name} answers; no attempt is used up."
            )),
            None,
        ),
        DeliveryStatus::Retried => (
            format!("A temporary error{http}: {error}"),
            Some("Nothing to do: it is tried again automatically, honouring the network's wait. After 24 h of such errors it is given up; then replay it.".into()),
            None,
        ),
        DeliveryStatus::GivenUp => (
            format!("{name} kept failing: {error}"),
            Some(format!("Replay it once {name} is healthy again (select the row, then Replay).")),
            None,
        ),
        DeliveryStatus::Failed => failed(entry, answer, &error, &http),
    };
    Explanation { summary, action, field }
}

fn failed(
    entry: &LogEntry,
    answer: Option<&NetworkAnswer>,
    error: &str,
    http: &str,
) -> (String, Option<String>, Option<String>) {
    let name = entry.network.display_name();
    if error.contains("too old for") || error.contains("in the future") {
        return (
            error.to_owned(),
            Some(format!("{name} only takes recent events: have the game server send conversions as they happen (check its clock)."))
                .filter(|_| true),
            None,
        );
    }
    if error.starts_with("not sent:") {
        return (
            error.to_owned(),
            Some("Fix the set-up it names (map the goal, add the trigger event), then replay the row.".into()),
            None,
        );
    }
    if error.contains("unreadable") {
        return (error.to_owned(), Some("Send or import the event again.".into()), None);
    }
    let field = named_field(entry, answer);
    // Our reasons already start with the status when there was one.
    let http = if error.starts_with("HTTP ") { "" } else { http };
    let action = if error.contains("single event tag")
        || field.as_deref() == Some("event_id") && entry.network == crate::model::Network::X
    {
        "Map the goal to a Single Event Tag of this config's pixel (Integrations → X → Event tags), then replay the row.".to_owned()
    } else if let Some(field) = &field {
        format!("{name} refused the field {field}: fix it in the events the game sends, then replay the row.")
    } else {
        "Read the network's answer below, fix the event, then replay the row.".to_owned()
    };
    (format!("{name} refused this event{http}: {error}"), Some(action), field)
}

/// The request as a cURL command a QA can paste (credentials stay `<redacted>`).
pub fn curl(request: &SentRequest) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut cmd = format!("curl -X {} {}", request.method, quote(&request.url));
    for (name, value) in &request.headers {
        let value = value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string());
        cmd.push_str(&format!(" \\\n  -H {}", quote(&format!("{name}: {value}"))));
    }
    let body = serde_json::to_string(&request.body).unwrap_or_default();
    cmd.push_str(&format!(" \\\n  --data-raw {}", quote(&body)));
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Network;

    fn entry(network: Network, status: DeliveryStatus, http: Option<i64>, error: &str) -> LogEntry {
        LogEntry {
            id: 1,
            at: 0,
            config_id: 1,
            network,
            event_name: "purchase".into(),
            event_id: "e1".into(),
            goal_key: String::new(),
            status,
            http_status: http,
            latency_ms: Some(12),
            attempt: 1,
            request_id: None,
            error: (!error.is_empty()).then(|| error.to_owned()),
        }
    }

    #[test]
    fn every_status_says_what_to_do() {
        let held =
            explain(&entry(Network::Reddit, DeliveryStatus::Held, Some(401), "HTTP 401: Authorization Required"), None);
        assert!(held.action.unwrap().contains("Rotate the credentials"));
        let x_held = explain(&entry(Network::X, DeliveryStatus::Held, Some(401), "revoked"), None);
        assert!(x_held.action.unwrap().contains("Reconnect X"));
        assert!(explain(&entry(Network::X, DeliveryStatus::Offline, None, "no answer: refused"), None)
            .action
            .unwrap()
            .contains("internet"));
        assert!(explain(&entry(Network::X, DeliveryStatus::GivenUp, Some(503), "gave up"), None)
            .action
            .unwrap()
            .contains("Replay"));
        assert!(explain(&entry(Network::X, DeliveryStatus::Success, Some(200), ""), None).action.is_none());
    }

    #[test]
    fn a_refusal_names_the_field_the_network_named() {
        let answer = NetworkAnswer {
            status: Some(400),
            headers: Default::default(),
            body: Some(r#"{"errors":[{"code":"INVALID_PARAMETER","message":"Event_id (tw-a-b) is not a single event tag (SET)","parameter":"conversions[0].event_id"}]}"#.into()),
        };
        let x = explain(
            &entry(
                Network::X,
                DeliveryStatus::Failed,
                Some(400),
                "HTTP 400: Event_id (tw-a-b) is not a single event tag (SET)",
            ),
            Some(&answer),
        );
        assert_eq!(x.field.as_deref(), Some("event_id"));
        assert!(x.action.unwrap().contains("Single Event Tag"));
        let tiktok = explain(
            &entry(
                Network::TikTok,
                DeliveryStatus::Failed,
                Some(200),
                "TikTok code 40002: Invalid parameter: data[0].properties.value must be a number",
            ),
            None,
        );
        assert_eq!(tiktok.field.as_deref(), Some("properties.value"));
        let reddit = explain(
            &entry(Network::Reddit, DeliveryStatus::Failed, Some(400), "HTTP 400: invalid action_source"),
            None,
        );
        assert_eq!(reddit.field.as_deref(), Some("action_source"));
        let old = explain(&entry(Network::Reddit, DeliveryStatus::Failed, None, "too old for Reddit Ads: …"), None);
        assert!(old.action.unwrap().contains("recent"));
    }

    #[test]
    fn curl_keeps_credentials_redacted_and_quotes_the_body() {
        let request = SentRequest {
            method: "POST".into(),
            url: "https://ads-api.reddit.com/api/v3/pixels/a2_x/conversion_events".into(),
            headers: serde_json::from_str(r#"{"authorization": "<redacted>", "content-type": "application/json"}"#)
                .unwrap(),
            body: serde_json::json!({"data": {"events": [{"name": "it's"}]}}),
        };
        let cmd = curl(&request);
        assert!(cmd.starts_with("curl -X POST 'https://ads-api.reddit.com"));
        assert!(cmd.contains("-H 'authorization: <redacted>'"));
        assert!(cmd.contains(r#"it'\''s"#), "{cmd}");
    }
}
