//! Value + currency: forwarded only together, both valid.

use std::str::FromStr;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

use crate::model::{ConversionEvent, ValueFilter};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    pub amount: Decimal,
    /// ISO 4217, upper case.
    pub currency: String,
}

impl Money {
    /// The amount as a JSON number (TikTok, Reddit).
    pub fn json_number(&self) -> Value {
        self.amount.to_f64().and_then(serde_json::Number::from_f64).map(Value::Number).unwrap_or(Value::Null)
    }

    /// The amount as a string with two decimals (X), rounded half away from zero.
    pub fn two_decimals(&self) -> String {
        format!("{:.2}", self.amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))
    }
}

/// Whether an event's money meets a goal's value filter; the reason when it does not. Amounts
/// in another currency never count: no conversion rates are applied.
pub fn meets(filter: &ValueFilter, money: Option<&Money>) -> Result<(), String> {
    let min = Decimal::from_str(&filter.min_value).unwrap_or(Decimal::MAX);
    match money {
        None => Err(format!(
            "it has no value with a currency (the goal counts {} {} or more)",
            filter.min_value, filter.currency
        )),
        Some(m) if m.currency != filter.currency => Err(format!(
            "its value is in {}; the goal counts {} only (no conversion rates are applied)",
            m.currency, filter.currency
        )),
        Some(m) if m.amount < min => Err(format!(
            "its value {} {} is below the goal's {} {}",
            m.amount, m.currency, filter.min_value, filter.currency
        )),
        Some(_) => Ok(()),
    }
}

fn parse_amount(v: &Value) -> Option<Decimal> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    Decimal::from_str(&text).or_else(|_| Decimal::from_scientific(&text)).ok()
}

/// The event's money, or `None` with a warning saying why it is left out.
pub fn resolve(event: &ConversionEvent, warnings: &mut Vec<String>) -> Option<Money> {
    match (&event.value, &event.currency) {
        (None, None) => None,
        (Some(_), None) => {
            warnings.push("value has no currency; add an ISO 4217 currency (e.g. USD) to send the value".to_owned());
            None
        }
        (None, Some(_)) => {
            warnings.push("currency has no value; the currency was not sent".to_owned());
            None
        }
        (Some(value), Some(currency)) => {
            let code = currency.trim().to_ascii_uppercase();
            if iso_currency::Currency::from_code(&code).is_none() {
                warnings.push(format!(
                    "currency '{currency}' is not an ISO 4217 code (e.g. USD, EUR); value and currency were not sent"
                ));
                return None;
            }
            match parse_amount(value) {
                Some(amount) if amount.is_sign_negative() && !amount.is_zero() => {
                    warnings.push("value is negative; value and currency were not sent".to_owned());
                    None
                }
                Some(amount) => Some(Money { amount, currency: code }),
                None => {
                    warnings.push(format!(
                        "value {value} is not a decimal number (e.g. \"19.99\"); value and currency were not sent"
                    ));
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn money(value: Value, currency: &str) -> (Option<Money>, Vec<String>) {
        let mut event = ConversionEvent::from_json(&json!({
            "event_id": "e", "name": "purchase", "occurred_at": "2026-11-20T10:15:30Z", "player_id": "p", "consent": "full"
        }))
        .unwrap();
        event.value = Some(value);
        event.currency = Some(currency.to_owned());
        let mut warnings = Vec::new();
        (resolve(&event, &mut warnings), warnings)
    }

    #[test]
    fn value_and_currency_table() {
        let (m, _) = money(json!(20), "usd");
        let m = m.unwrap();
        assert_eq!((m.two_decimals().as_str(), m.currency.as_str()), ("20.00", "USD"));
        assert_eq!(m.json_number(), json!(20.0));
        assert_eq!(money(json!("19.99"), "EUR").0.unwrap().json_number(), json!(19.99));
        assert_eq!(money(json!("0.125"), "EUR").0.unwrap().two_decimals(), "0.13");
        assert_eq!(money(json!(1e3), "JPY").0.unwrap().two_decimals(), "1000.00");
        for (bad_value, bad_currency) in
            [(json!("abc"), "USD"), (json!("5"), "XYZ"), (json!("5"), "dollars"), (json!(-1), "USD")]
        {
            let (m, warnings) = money(bad_value, bad_currency);
            assert!(m.is_none() && warnings.len() == 1);
        }
    }
}
