//! The longest text each field of a canonical event takes, in characters after trimming, and
//! how many items an event may list. Every source (ingest, import, preview) validates through
//! [`super::ConversionEvent::from_fields`], so they all hold. Documented in `docs/CONTRACT.md`
//! ("Input limits") and `docs/ingest-openapi.yaml`; generous for real traffic, small enough that
//! an event always fits well inside a request or an import line.

/// `event_id`, `player_id`, `name`, an item's `id` and `name`.
pub const ID: usize = 256;
/// `click_ids.ttclid`, `.twclid`, `.rdt_cid`.
pub const CLICK_ID: usize = 512;
/// `email` (RFC 5321's longest address).
pub const EMAIL: usize = 320;
/// `phone`.
pub const PHONE: usize = 64;
/// `ip` (an IPv6 address with a zone fits).
pub const IP: usize = 64;
/// `user_agent`.
pub const USER_AGENT: usize = 2048;
/// `page_url`.
pub const PAGE_URL: usize = 4096;
/// `currency`: anything but an ISO 4217 code is only a warning (the value is not sent), up
/// to this length.
pub const CURRENCY: usize = 64;
/// `value` sent as a decimal string.
pub const VALUE: usize = 64;
/// Items of one event.
pub const ITEMS: usize = 100;
/// How much of a field checked by its format (`occurred_at`, `consent`) an error repeats.
pub const ECHO: usize = 64;
