use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// The ad networks Postback Desk delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    #[serde(rename = "tiktok")]
    TikTok,
    Reddit,
    X,
}

impl Network {
    pub const ALL: [Network; 3] = [Network::TikTok, Network::Reddit, Network::X];

    /// The identifier used in JSON, the database and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::TikTok => "tiktok",
            Network::Reddit => "reddit",
            Network::X => "x",
        }
    }

    /// The name a person reads in the UI.
    pub fn display_name(self) -> &'static str {
        match self {
            Network::TikTok => "TikTok Ads",
            Network::Reddit => "Reddit Ads",
            Network::X => "X Ads",
        }
    }

    pub fn parse(s: &str) -> Option<Network> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tiktok" => Some(Network::TikTok),
            "reddit" => Some(Network::Reddit),
            "x" | "twitter" => Some(Network::X),
            _ => None,
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
