//! The key-encryption key: it seals the private keys this service generates before they
//! are stored (AES-256-GCM), so that whoever reads the database alone cannot sign tokens.
//!
//! It comes from the environment variable named by `jwt.key_encryption_key_env` (32
//! random bytes, base64 or hex), or else from a file: `jwt.key_encryption_key_file`, or
//! `key-encryption-key` beside the SQLite database. With SQLite the file is generated
//! (mode 0600) on first use; with Postgres it must be configured and exist, since every
//! instance sharing the database needs the same key and none may make up its own. An
//! in-memory SQLite database without a configured file gets a key that lives as long as
//! it does.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use crate::config::Config;
use crate::private_files;
use crate::store::StoredKey;

/// Bytes of a key-encryption key: AES-256.
pub const KEY_BYTES: usize = 32;

/// File name of a generated key-encryption key.
pub const FILE_NAME: &str = "key-encryption-key";

/// The `encryption` value of a sealed key names the cipher and the key that sealed it.
const CIPHER: &str = "A256GCM";

/// Where the key-encryption key came from; never the key itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The environment variable of that name.
    Env(String),
    /// A file this service generated (or found) at that path.
    File { path: PathBuf, created: bool },
    /// Generated for an in-memory database, and gone with it.
    Ephemeral,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::File { path, .. } => write!(f, "file {}", path.display()),
            Origin::Ephemeral => f.write_str("memory"),
        }
    }
}

/// Why no key-encryption key could be had, or a stored key could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error("jwt.key_encryption_key_env: environment variable {0} is not set")]
    Unset(String),
    #[error(
        "jwt.key_encryption_key_env: {0} must hold {KEY_BYTES} random bytes in base64 or hex \
         (for example from `openssl rand -base64 32`)"
    )]
    Malformed(String),
    #[error("key-encryption key file {}: {why}", path.display())]
    File { path: PathBuf, why: String },
    #[error(
        "stored key {kid:?} was encrypted with key-encryption key {stored}, not with the one \
         in {origin} ({current}): start with the key it was encrypted with"
    )]
    WrongKey {
        kid: String,
        stored: String,
        current: String,
        origin: Origin,
    },
    #[error("stored key {kid:?} cannot be decrypted: it is corrupt or was altered")]
    Corrupt { kid: String },
    #[error("no key-encryption key for the stored signing keys")]
    Missing,
    #[error(
        "a postgres:// database needs a key-encryption key that every instance shares: make \
         one with `openssl rand -base64 32`, keep it in a secret, and name the variable that \
         holds it with jwt.key_encryption_key_env (for example \
         INTROSPECTD_JWT__KEY_ENCRYPTION_KEY_ENV=INTROSPECTD_KEK) or its file with \
         jwt.key_encryption_key_file"
    )]
    Required,
}

/// An AES-256-GCM key, with a public identifier derived from it (so a store sealed
/// under another key is named as such). `Debug` shows the identifier and origin only.
pub struct KeyEncryptionKey {
    key: LessSafeKey,
    id: String,
    origin: Origin,
}

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEncryptionKey")
            .field("id", &self.id)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl KeyEncryptionKey {
    fn new(bytes: &[u8; KEY_BYTES], origin: Origin) -> Self {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).expect("a 32-byte AES-256 key");
        // The identifier is an HMAC of a fixed label: it names the key without helping
        // anyone find it.
        let tag = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, bytes),
            b"introspectd key-encryption key id",
        );
        let id = tag.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        KeyEncryptionKey {
            key: LessSafeKey::new(unbound),
            id,
            origin,
        }
    }

    /// A fresh random key, for an in-memory store.
    pub fn ephemeral() -> Self {
        Self::new(&random_key(), Origin::Ephemeral)
    }

    /// A key from its text form (base64 or hex of 32 bytes), for tests and tools.
    pub fn from_text(text: &str, origin: Origin) -> Option<Self> {
        parse(text).map(|bytes| Self::new(&bytes, origin))
    }

    /// The public identifier of this key.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The `encryption` value of keys sealed with this key.
    pub fn label(&self) -> String {
        format!("{CIPHER}:{}", self.id)
    }

    /// Seals a plain key for storage: a fresh nonce, then the ciphertext and tag, with the
    /// kid and algorithm as associated data so a sealed key cannot pass for another.
    pub fn seal(&self, key: &StoredKey) -> StoredKey {
        StoredKey {
            private_key: self.seal_bytes(&aad(key), &key.private_key),
            encryption: Some(self.label()),
            ..key.clone()
        }
    }

    /// The plain PKCS#8 of a stored key; a key stored before encryption is returned as is.
    pub fn open(&self, key: &StoredKey) -> Result<Vec<u8>, KekError> {
        let Some(label) = key.encryption.as_deref() else {
            return Ok(key.private_key.clone());
        };
        self.open_bytes(&key.kid, label, &aad(key), &key.private_key)
    }

    /// Seals a secret of the service named `name` (the sign-in key): the sealed bytes
    /// and the `encryption` label to store beside them. The name is associated data, so
    /// one sealed secret cannot pass for another.
    pub fn seal_secret(&self, name: &str, plain: &[u8]) -> (Vec<u8>, String) {
        (self.seal_bytes(&secret_aad(name), plain), self.label())
    }

    /// The plain bytes of a secret sealed by [`KeyEncryptionKey::seal_secret`].
    pub fn open_secret(
        &self,
        name: &str,
        sealed: &[u8],
        encryption: &str,
    ) -> Result<Vec<u8>, KekError> {
        self.open_bytes(name, encryption, &secret_aad(name), sealed)
    }

    /// A fresh nonce, then `plain` encrypted and its tag, with `aad` bound to it.
    fn seal_bytes(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("the system random source failed");
        let mut sealed = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut sealed,
            )
            .expect("AES-GCM sealing of a short input");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`KeyEncryptionKey::seal_bytes`] sealed under the key `label` names;
    /// `kid` names the value in errors.
    fn open_bytes(
        &self,
        kid: &str,
        label: &str,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, KekError> {
        if label != self.label() {
            return Err(KekError::WrongKey {
                kid: kid.to_owned(),
                stored: label.strip_prefix("A256GCM:").unwrap_or(label).to_owned(),
                current: self.id.clone(),
                origin: self.origin.clone(),
            });
        }
        let corrupt = || KekError::Corrupt {
            kid: kid.to_owned(),
        };
        if sealed.len() < NONCE_LEN {
            return Err(corrupt());
        }
        let (nonce, sealed) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt())?;
        let mut buffer = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buffer)
            .map_err(|_| corrupt())?;
        Ok(plain.to_vec())
    }
}

fn aad(key: &StoredKey) -> Vec<u8> {
    format!("introspectd signing key\0{}\0{}", key.kid, key.alg).into_bytes()
}

fn secret_aad(name: &str) -> Vec<u8> {
    format!("introspectd secret\0{name}").into_bytes()
}

fn random_key() -> [u8; KEY_BYTES] {
    let mut bytes = [0u8; KEY_BYTES];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random source failed");
    bytes
}

/// 32 bytes from 64 hex digits or from base64 (padded or not).
pub fn parse(text: &str) -> Option<[u8; KEY_BYTES]> {
    let text = text.trim();
    let bytes = if text.len() == 2 * KEY_BYTES && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..KEY_BYTES)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?
    } else {
        STANDARD
            .decode(text)
            .or_else(|_| STANDARD_NO_PAD.decode(text))
            .ok()?
    };
    bytes.try_into().ok()
}

/// The key in the named environment variable.
pub fn from_env(name: &str) -> Result<KeyEncryptionKey, KekError> {
    let text = std::env::var(name).map_err(|_| KekError::Unset(name.to_owned()))?;
    KeyEncryptionKey::from_text(&text, Origin::Env(name.to_owned()))
        .ok_or_else(|| KekError::Malformed(name.to_owned()))
}

/// Checks the key-encryption key the configuration names in the environment, if any, so
/// that a variable that is unset or holds no key stops every command before it does
/// anything else. The key itself never appears in the error.
pub fn check_named(config: &Config) -> Result<(), KekError> {
    match &config.jwt.key_encryption_key_env {
        Some(name) => from_env(name).map(drop),
        None => Ok(()),
    }
}

/// The key-encryption key of this configuration: from the environment when
/// `jwt.key_encryption_key_env` is set, else from (or into) the key file,
/// `jwt.key_encryption_key_file` or its default place. `None` when `jwt.keys` is
/// configured: no generated key is used then.
pub fn resolve(config: &Config) -> Result<Option<KeyEncryptionKey>, KekError> {
    if !config.jwt.keys.is_empty() {
        return Ok(None);
    }
    resolve_always(config).map(Some)
}

/// The key-encryption key of this configuration, from the same places as [`resolve`],
/// whether or not generated signing keys are in use: the sign-in key is sealed with it.
pub fn resolve_always(config: &Config) -> Result<KeyEncryptionKey, KekError> {
    let shared = config.database_url.is_postgres();
    if let Some(name) = &config.jwt.key_encryption_key_env {
        return from_env(name);
    }
    if let Some(path) = &config.jwt.key_encryption_key_file {
        return if shared {
            read_file(path, false)
        } else {
            from_file(path)
        };
    }
    if shared {
        return Err(KekError::Required);
    }
    match crate::store::sqlite_database_path(config.database_url.as_str()) {
        Some(db) => {
            let dir = db
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            from_file(&dir.join(FILE_NAME))
        }
        None => Ok(KeyEncryptionKey::ephemeral()),
    }
}

/// Reads the key file, generating it (mode 0600, in a directory of mode 0700 when that
/// is created too) on first use. Concurrent first starts agree on one key: the file
/// appears whole, by a hard link from a private temporary file, or not at all.
pub fn from_file(path: &Path) -> Result<KeyEncryptionKey, KekError> {
    let fail = |why: String| KekError::File {
        path: path.to_owned(),
        why,
    };
    let mut created = false;
    if !path.exists() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_files::create_private_dir(dir).map_err(|e| fail(e.to_string()))?;
        }
        let text = format!("{}\n", STANDARD.encode(random_key()));
        let temporary = path.with_extension(format!("tmp-{}", crate::token::random_string(6)));
        private_files::create_private_file(&temporary)
            .and_then(|mut file| {
                file.write_all(text.as_bytes())?;
                file.sync_all()
            })
            .map_err(|e| fail(e.to_string()))?;
        let linked = std::fs::hard_link(&temporary, path);
        let _ = std::fs::remove_file(&temporary);
        match linked {
            Ok(()) => created = true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(fail(e.to_string())),
        }
    }
    private_files::restrict_file(path).map_err(|e| fail(e.to_string()))?;
    read_file(path, created)
}

/// Reads a key file that must exist (a Postgres store's, which no instance may make up:
/// a mounted secret, whose mode is its owner's business).
fn read_file(path: &Path, created: bool) -> Result<KeyEncryptionKey, KekError> {
    let fail = |why: String| KekError::File {
        path: path.to_owned(),
        why,
    };
    if !path.exists() {
        return Err(fail(format!(
            "does not exist; make it with `openssl rand -base64 32 > {}` and give every \
             instance sharing the database the same file",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let origin = Origin::File {
        path: path.to_owned(),
        created,
    };
    KeyEncryptionKey::from_text(&text, origin).ok_or_else(|| {
        fail(format!(
            "must hold {KEY_BYTES} bytes in base64 or hex; restore the original file"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::jwt::generate_ed25519;

    fn kek() -> KeyEncryptionKey {
        KeyEncryptionKey::ephemeral()
    }

    #[test]
    // figment's Jail closures return figment's own (large) error type.
    #[allow(clippy::result_large_err)]
    fn a_named_key_is_checked_without_showing_it() {
        figment::Jail::expect_with(|jail| {
            let mut config = Config::default();
            assert!(
                check_named(&config).is_ok(),
                "no variable named, nothing to check"
            );
            config.jwt.key_encryption_key_env = Some("INTROSPECTD_TEST_KEK".to_owned());
            let err = check_named(&config).unwrap_err().to_string();
            assert!(err.contains("INTROSPECTD_TEST_KEK is not set"), "{err}");
            jail.set_env("INTROSPECTD_TEST_KEK", "c2hvcnQ=");
            let err = check_named(&config).unwrap_err().to_string();
            assert!(err.contains("must hold 32 random bytes"), "{err}");
            assert!(!err.contains("c2hvcnQ") && !err.contains('\n'), "{err}");
            jail.set_env("INTROSPECTD_TEST_KEK", "ab".repeat(32));
            assert!(check_named(&config).is_ok());
            Ok(())
        });
    }

    #[test]
    fn sealed_key_opens_to_the_plain_key_and_is_not_it() {
        let kek = kek();
        let plain = generate_ed25519();
        let sealed = kek.seal(&plain);
        assert_ne!(sealed.private_key, plain.private_key);
        assert!(
            aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(&sealed.private_key).is_err(),
            "the sealed bytes are no PKCS#8 key"
        );
        assert_eq!(sealed.encryption.as_deref(), Some(kek.label().as_str()));
        assert_eq!(kek.open(&sealed).unwrap(), plain.private_key);
    }

    #[test]
    fn another_key_is_named_not_tried() {
        let sealed = kek().seal(&generate_ed25519());
        let err = kek().open(&sealed).unwrap_err();
        assert!(matches!(err, KekError::WrongKey { .. }), "{err}");
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn a_sealed_key_cannot_pass_for_another_kid() {
        let kek = kek();
        let mut sealed = kek.seal(&generate_ed25519());
        sealed.kid = "other".to_owned();
        assert!(matches!(kek.open(&sealed), Err(KekError::Corrupt { .. })));
        let mut truncated = kek.seal(&generate_ed25519());
        truncated.private_key.truncate(5);
        assert!(matches!(
            kek.open(&truncated),
            Err(KekError::Corrupt { .. })
        ));
    }

    #[test]
    fn a_sealed_secret_opens_under_its_name_only() {
        let kek = kek();
        let (sealed, label) = kek.seal_secret("signin", b"thirty-two bytes of key material");
        assert_ne!(&sealed[NONCE_LEN..], b"thirty-two bytes of key material");
        assert_eq!(
            kek.open_secret("signin", &sealed, &label).unwrap(),
            b"thirty-two bytes of key material"
        );
        assert!(matches!(
            kek.open_secret("other", &sealed, &label),
            Err(KekError::Corrupt { .. })
        ));
        assert!(matches!(
            super::KeyEncryptionKey::ephemeral().open_secret("signin", &sealed, &label),
            Err(KekError::WrongKey { .. })
        ));
    }

    #[test]
    fn keys_are_read_from_base64_or_hex() {
        let bytes = [7u8; KEY_BYTES];
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse(&hex), Some(bytes));
        assert_eq!(parse(&hex.to_uppercase()), Some(bytes));
        assert_eq!(
            parse(&format!(" {}\n", STANDARD.encode(bytes))),
            Some(bytes)
        );
        assert_eq!(parse(&STANDARD_NO_PAD.encode(bytes)), Some(bytes));
        assert_eq!(parse(&STANDARD.encode([7u8; 16])), None, "too short");
        assert_eq!(parse("not a key"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn debug_shows_the_id_never_the_key() {
        let text = STANDARD.encode([9u8; KEY_BYTES]);
        let kek = KeyEncryptionKey::from_text(&text, Origin::Ephemeral).unwrap();
        let shown = format!("{kek:?}");
        assert!(shown.contains(kek.id()), "{shown}");
        assert!(!shown.contains(&text) && !shown.contains("0909"), "{shown}");
    }

    #[test]
    fn a_key_file_is_generated_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join(FILE_NAME);
        let first = from_file(&path).unwrap();
        assert!(matches!(first.origin(), Origin::File { created: true, .. }));
        let again = from_file(&path).unwrap();
        assert!(matches!(
            again.origin(),
            Origin::File { created: false, .. }
        ));
        assert_eq!(first.id(), again.id());
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        std::fs::write(&path, "garbage").unwrap();
        assert!(matches!(from_file(&path), Err(KekError::File { .. })));
    }
}
