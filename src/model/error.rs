use serde::Serialize;

/// A problem with user-supplied input, tied to the field that caused it.
///
/// `field` is a dotted path into the input (`goals.0.event_tag`); `message` says what is wrong and
/// how to fix it, in words a marketer can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InputError {
    pub field: String,
    pub message: String,
}

impl InputError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }

    /// The same error nested under a parent field (`goals.0` + `event_tag`).
    pub fn under(self, parent: &str) -> Self {
        Self { field: format!("{parent}.{}", self.field), message: self.message }
    }
}

/// An error as the UI receives it over IPC: a stable `code` to branch on and a sentence to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ts_rs::TS, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: String,
    pub message: String,
    /// The form field to fix, when one is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_owned(), message: message.into(), field: None }
    }

    pub fn on_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        let field = e.field.clone();
        ApiError::new("invalid_input", e.to_string()).on_field(&field)
    }
}
