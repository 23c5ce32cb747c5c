//! Helpers shared by the integration test crates.

use std::sync::Arc;

use postback::secrets::Keychain;

/// The real Secret Service of the test session; fails loudly outside one.
pub fn keychain() -> Arc<Keychain> {
    let keychain = Keychain::system();
    if let Err(e) = keychain.check() {
        panic!("these tests need a Secret Service: run them through scripts/with-keyring.sh ({e})");
    }
    Arc::new(keychain)
}
