//! The workspace key pair of a team workspace. The public key is in the database: any desktop
//! seals the ad networks' credentials to it. The private key is in a file that only workers
//! read: they alone open the sealed credentials. Sealing is libsodium's sealed box
//! (X25519 + XSalsa20-Poly1305, `crypto_box`): anonymous, so a desktop needs nothing secret.

use std::io::Write;
use std::path::Path;

use crypto_box::{PublicKey, SecretKey};
use zeroize::Zeroizing;

use super::TeamError;

/// The line of a key file that holds the private key, after this prefix (hex).
const KEY_LINE_PREFIX: &str = "postback-workspace-key-v1:";

/// A workspace's public key: what desktops seal credentials to.
#[derive(Clone, PartialEq, Eq)]
pub struct WorkspacePublicKey(PublicKey);

impl std::fmt::Debug for WorkspacePublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WorkspacePublicKey({})", self.to_hex())
    }
}

impl WorkspacePublicKey {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// As kept in the database; `None` when the text is not a key.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text.trim()).ok()?;
        PublicKey::from_slice(&bytes).ok().map(Self)
    }

    /// Seals `plaintext` so that only the private key's holder can read it.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, TeamError> {
        self.0.seal(&mut crypto_box::aead::OsRng, plaintext).map_err(|_| TeamError::Seal)
    }
}

/// A workspace's private key (never in the database, never logged).
pub struct WorkspaceKey(SecretKey);

impl std::fmt::Debug for WorkspaceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkspaceKey(<private>)")
    }
}

impl WorkspaceKey {
    pub fn generate() -> Self {
        Self(SecretKey::generate(&mut crypto_box::aead::OsRng))
    }

    pub fn public_key(&self) -> WorkspacePublicKey {
        WorkspacePublicKey(self.0.public_key())
    }

    /// Opens what [`WorkspacePublicKey::seal`] sealed to this key.
    pub fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, TeamError> {
        self.0.unseal(sealed).map(Zeroizing::new).map_err(|_| TeamError::Unsealable)
    }

    /// The key file's text: a comment saying what it is, then the key.
    fn file_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "# Postback Desk workspace key (public {}).\n\
             # Workers read it to open the ad networks' credentials sealed in the workspace's database.\n\
             # Keep it private (mode 0600): with it and the database, anyone can read those credentials.\n\
             {KEY_LINE_PREFIX}{}\n",
            self.public_key().to_hex(),
            hex::encode(self.0.to_bytes())
        ))
    }

    /// Reads a key file's text (comments and blank lines ignored).
    pub fn parse(text: &str) -> Result<Self, TeamError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(KEY_LINE_PREFIX))
            .ok_or(TeamError::KeyFileUnreadable("it has no postback-workspace-key-v1 line"))?;
        let bytes = Zeroizing::new(
            hex::decode(&line[KEY_LINE_PREFIX.len()..])
                .map_err(|_| TeamError::KeyFileUnreadable("its key is not hexadecimal"))?,
        );
        let bytes: [u8; 32] =
            bytes.as_slice().try_into().map_err(|_| TeamError::KeyFileUnreadable("its key is not 32 bytes long"))?;
        Ok(Self(SecretKey::from_bytes(bytes)))
    }

    pub fn read_file(path: &Path) -> Result<Self, TeamError> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| TeamError::KeyFile { path: path.display().to_string(), reason: e.to_string() })?,
        );
        Self::parse(&text).map_err(|e| match e {
            TeamError::KeyFileUnreadable(why) => {
                TeamError::KeyFile { path: path.display().to_string(), reason: why.to_owned() }
            }
            other => other,
        })
    }

    /// Writes a new key file, readable by its owner only; never replaces an existing file (its
    /// key may be the only one that opens a workspace's credentials).
    pub fn write_new_file(&self, path: &Path) -> Result<(), TeamError> {
        let failed = |e: std::io::Error| TeamError::KeyFile { path: path.display().to_string(), reason: e.to_string() };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => TeamError::KeyFileExists(path.display().to_string()),
            _ => failed(e),
        })?;
        file.write_all(self.file_text().as_bytes()).and_then(|()| file.sync_all()).map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_private_key_opens_what_its_public_key_sealed() {
        let key = WorkspaceKey::generate();
        let sealed = key.public_key().seal(b"tiktok-token-1").expect("seal");
        assert!(!sealed.windows(14).any(|w| w == b"tiktok-token-1"), "sealed text shows the token");
        assert_eq!(key.open(&sealed).expect("open").as_slice(), b"tiktok-token-1");
        let other = WorkspaceKey::generate();
        assert!(matches!(other.open(&sealed), Err(TeamError::Unsealable)));
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(key.open(&tampered), Err(TeamError::Unsealable)));
    }

    #[test]
    fn a_key_file_round_trips_and_names_what_is_wrong() {
        let key = WorkspaceKey::generate();
        let parsed = WorkspaceKey::parse(&key.file_text()).expect("parse");
        assert_eq!(parsed.public_key(), key.public_key());
        assert!(matches!(WorkspaceKey::parse("# nothing\n"), Err(TeamError::KeyFileUnreadable(_))));
        assert!(matches!(
            WorkspaceKey::parse("postback-workspace-key-v1:abcd\n"),
            Err(TeamError::KeyFileUnreadable("its key is not 32 bytes long"))
        ));
        let public = key.public_key();
        assert_eq!(WorkspacePublicKey::from_hex(&public.to_hex()), Some(public));
        assert_eq!(WorkspacePublicKey::from_hex("zz"), None);
    }

    #[test]
    fn a_new_key_file_is_private_and_never_replaces_one() {
        let dir = std::env::temp_dir().join(format!("pbk-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("workspace.key");
        let key = WorkspaceKey::generate();
        key.write_new_file(&path).expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(WorkspaceKey::read_file(&path).expect("read").public_key(), key.public_key());
        let again = WorkspaceKey::generate().write_new_file(&path);
        assert!(matches!(again, Err(TeamError::KeyFileExists(_))));
        assert_eq!(WorkspaceKey::read_file(&path).expect("read").public_key(), key.public_key());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
