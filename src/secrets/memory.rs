//! A keychain held in memory, for benchmarks and tests that do not exercise the OS keychain.
//! Everything in it is forgotten when the process ends.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Secret, SecretStore, SecretsError};

#[derive(Default)]
pub struct MemoryKeychain {
    entries: Mutex<HashMap<String, Secret>>,
}

impl SecretStore for MemoryKeychain {
    fn get(&self, reference: &str) -> Result<Option<Secret>, SecretsError> {
        Ok(self.entries.lock().unwrap_or_else(|p| p.into_inner()).get(reference).cloned())
    }

    fn set(&self, reference: &str, value: &Secret) -> Result<(), SecretsError> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).insert(reference.to_owned(), value.clone());
        Ok(())
    }

    fn delete(&self, reference: &str) -> Result<(), SecretsError> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(reference);
        Ok(())
    }
}
