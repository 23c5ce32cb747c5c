//! Secrets: the redacting [`Secret`] type, the OS keychain, and what a keychain entry holds.

mod credential;
mod error;
mod keychain;
mod memory;
mod sensitive;

pub use credential::{new_credential_ref, OAuth1Credentials, OAuth2Credentials, StoredCredential};
pub use error::SecretsError;
pub use keychain::{blocking, Keychain, SecretStore, KEYCHAIN_SERVICE};
pub use memory::MemoryKeychain;
pub use sensitive::Secret;
