//! Every conformance case (copied from `shared/contract/cases/`) against the engine's preview,
//! with the same rules as `shared/contract/check.py`: listed paths compare as JSON values
//! (numbers by value), `absent` paths must not exist, skips compare by reason.

use std::path::Path;

use postback::model::{ConversionEvent, PostbackConfig};
use postback::networks::{preview, Preview};
use serde_json::Value;

fn get<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(doc, |cur, part| match cur {
        Value::Array(list) => part.parse::<usize>().ok().and_then(|i| list.get(i)),
        Value::Object(map) => map.get(part),
        _ => None,
    })
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn item_count(body: &Value) -> Option<usize> {
    body.pointer("/data/events")
        .or_else(|| body.get("conversions"))
        .or_else(|| body.get("data"))
        .and_then(Value::as_array)
        .map(Vec::len)
}

fn run_case(case: &Value) -> Vec<String> {
    let config = PostbackConfig::from_json(&case["config"]).expect("case config parses");
    let event = ConversionEvent::from_json(&case["event"]).expect("case event parses");
    let expect = &case["expect"];
    let out = preview(&config, &event, false, chrono::Utc::now());
    let mut errors = Vec::new();
    match (&out, expect.get("skipped").and_then(Value::as_str)) {
        (Preview::Skipped { skipped }, Some(want)) if skipped.reason.as_str() == want => {}
        (_, Some(want)) => errors.push(format!("expected skipped={want}, got {out:?}")),
        (Preview::Skipped { skipped }, None) => errors.push(format!("expected a request, got skip {skipped:?}")),
        (Preview::Forwarded { requests, .. }, None) => {
            let request = &requests[0];
            let body = &request["body"];
            if let Some(url) = expect.get("url") {
                if &request["url"] != url {
                    errors.push(format!("url {} != {url}", request["url"]));
                }
            }
            if let Some(n) = expect.get("conversions").and_then(Value::as_u64) {
                if item_count(body) != Some(n as usize) {
                    errors.push(format!("expected {n} item(s), got {:?}", item_count(body)));
                }
            }
            for (path, want) in expect.get("body").and_then(Value::as_object).into_iter().flatten() {
                match get(body, path) {
                    Some(got) if same(got, want) => {}
                    got => errors.push(format!("{path}: got {got:?}, want {want}")),
                }
            }
            for path in expect.get("absent").and_then(Value::as_array).into_iter().flatten() {
                if let Some(p) = path.as_str().filter(|p| get(body, p).is_some()) {
                    errors.push(format!("{p} should be absent"));
                }
            }
            for name in expect.get("headers_present").and_then(Value::as_array).into_iter().flatten() {
                let name = name.as_str().unwrap_or_default().to_ascii_lowercase();
                let present =
                    request["headers"].as_object().is_some_and(|h| h.keys().any(|k| k.to_ascii_lowercase() == name));
                if !present {
                    errors.push(format!("header {name} missing"));
                }
            }
        }
    }
    errors
}

#[test]
fn every_conformance_case_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("cases dir").flatten().map(|e| e.path()).collect();
    files.sort();
    assert!(files.len() >= 12, "expected the conformance cases in {}", dir.display());
    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let case: Value =
                serde_json::from_str(&std::fs::read_to_string(path).expect("read case")).expect("case is JSON");
            let errors = run_case(&case);
            (!errors.is_empty()).then(|| format!("{}: {}", case["name"], errors.join("; ")))
        })
        .collect();
    assert!(failures.is_empty(), "failing cases:\n{}", failures.join("\n"));
}
