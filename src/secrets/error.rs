use crate::model::ApiError;

/// Why the OS keychain could not be used. Messages never contain a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    #[error(
        "the OS keychain is not available ({0}). Start and unlock a Secret Service keyring \
         (GNOME Keyring or KWallet) and try again; Postback Desk never stores tokens in plain text"
    )]
    Unavailable(String),
    #[error("the OS keychain is locked or refused access ({0}); unlock it and try again")]
    Locked(String),
    #[error("the OS keychain failed: {0}")]
    Failed(String),
    #[error("the keychain entry '{0}' does not hold a Postback Desk credential; reconnect the account")]
    Unreadable(String),
    /// A team workspace's credentials are sealed for its workers: a desktop writes them and
    /// never reads them back.
    #[error(
        "this team workspace's credentials are sealed for its workers: they open them with the workspace key \
         file (--key-file or POSTBACK_WORKSPACE_KEY); this process has no key file"
    )]
    SealedForWorkers,
    /// A PostgreSQL workspace without a workspace key: there is nowhere to seal a credential.
    #[error(
        "this PostgreSQL database is not a team workspace yet, so there is no key to seal credentials to: \
         run `postback workspace init --database URL --key-file PATH` once, then connect again"
    )]
    NoWorkspaceKey,
}

impl From<SecretsError> for ApiError {
    fn from(e: SecretsError) -> Self {
        let code = match e {
            SecretsError::Unavailable(_) | SecretsError::Locked(_) => "keychain_unavailable",
            SecretsError::SealedForWorkers => "sealed_for_workers",
            SecretsError::NoWorkspaceKey => "team_workspace",
            _ => "keychain",
        };
        ApiError::new(code, e.to_string())
    }
}
