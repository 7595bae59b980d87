//! A person's tokens between runs of the command line: one JSON file, readable by its owner only (0600,
//! in a 0700 folder), holding one entry for each identity provider and client signed in at.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a sign-in holds: an access token, until when it is good, and the refresh token that brings the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    /// Seconds since the epoch.
    pub expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// The cache file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("the token cache {0}: {1}")]
pub struct CacheError(PathBuf, String);

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    sessions: Vec<Session>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    issuer: String,
    client_id: String,
    #[serde(flatten)]
    tokens: Tokens,
}

pub struct TokenCache {
    path: PathBuf,
}

/// `$XDG_CACHE_HOME/placement-cli/tokens.json`, else `~/.cache/placement-cli/tokens.json`; `None`
/// without either variable (then `PLACEMENT_CLI_TOKEN_CACHE` must say).
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        })?;
    Some(base.join("placement-cli").join("tokens.json"))
}

impl TokenCache {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tokens kept for `client_id` at `issuer`, if any.
    pub fn load(&self, issuer: &str, client_id: &str) -> Result<Option<Tokens>, CacheError> {
        Ok(self
            .read()?
            .sessions
            .into_iter()
            .find(|s| s.issuer == issuer && s.client_id == client_id)
            .map(|s| s.tokens))
    }

    /// Keeps `tokens` for `client_id` at `issuer`, in place of those kept before.
    pub fn store(&self, issuer: &str, client_id: &str, tokens: &Tokens) -> Result<(), CacheError> {
        let mut file = self.read()?;
        file.sessions
            .retain(|s| !(s.issuer == issuer && s.client_id == client_id));
        file.sessions.push(Session {
            issuer: issuer.to_string(),
            client_id: client_id.to_string(),
            tokens: tokens.clone(),
        });
        self.write(&file)
    }

    /// Forgets the tokens of `client_id` at `issuer`; whether there were any.
    pub fn forget(&self, issuer: &str, client_id: &str) -> Result<bool, CacheError> {
        let mut file = self.read()?;
        let before = file.sessions.len();
        file.sessions
            .retain(|s| !(s.issuer == issuer && s.client_id == client_id));
        if file.sessions.len() == before {
            return Ok(false);
        }
        self.write(&file)?;
        Ok(true)
    }

    fn error(&self, e: impl std::fmt::Display) -> CacheError {
        CacheError(self.path.clone(), e.to_string())
    }

    fn read(&self) -> Result<CacheFile, CacheError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| self.error(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CacheFile::default()),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Writes a new file beside the old and renames it over: a run stopped half-way leaves the old
    /// file whole, and the tokens are never readable by others, not even for a moment.
    fn write(&self, file: &CacheFile) -> Result<(), CacheError> {
        use std::io::Write;
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut folder = std::fs::DirBuilder::new();
        folder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut folder, 0o700);
        folder.create(dir).map_err(|e| self.error(e))?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "tokens.json".into());
        let temporary = dir.join(format!(".{name}.{}", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&temporary).and_then(|mut f| {
            f.write_all(&serde_json::to_vec_pretty(file).expect("JSON"))?;
            f.sync_all()
        });
        if let Err(e) = written.and_then(|()| std::fs::rename(&temporary, &self.path)) {
            let _ = std::fs::remove_file(&temporary);
            return Err(self.error(e));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(access: &str) -> Tokens {
        Tokens {
            access_token: access.into(),
            expires_at: 1_000,
            refresh_token: Some(format!("refresh-{access}")),
        }
    }

    #[test]
    fn tokens_are_kept_per_provider_and_client_readable_by_the_owner_only() {
        let dir = std::env::temp_dir().join(format!("pe-token-cache-{}", uuid::Uuid::new_v4()));
        let cache = TokenCache::new(dir.join("nested").join("tokens.json"));
        assert_eq!(cache.load("https://idp", "placement-cli").unwrap(), None);
        cache
            .store("https://idp", "placement-cli", &tokens("a"))
            .unwrap();
        cache
            .store("https://other-idp", "placement-cli", &tokens("b"))
            .unwrap();
        cache
            .store("https://idp", "placement-cli", &tokens("c"))
            .unwrap();
        assert_eq!(
            cache.load("https://idp", "placement-cli").unwrap(),
            Some(tokens("c"))
        );
        assert_eq!(
            cache.load("https://other-idp", "placement-cli").unwrap(),
            Some(tokens("b"))
        );
        assert_eq!(cache.load("https://idp", "another-client").unwrap(), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(cache.path()), 0o600);
            assert_eq!(mode(cache.path().parent().unwrap()), 0o700);
        }
        assert!(cache.forget("https://idp", "placement-cli").unwrap());
        assert!(!cache.forget("https://idp", "placement-cli").unwrap());
        assert_eq!(cache.load("https://idp", "placement-cli").unwrap(), None);
        assert!(
            cache
                .load("https://other-idp", "placement-cli")
                .unwrap()
                .is_some()
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let path =
            std::env::temp_dir().join(format!("pe-token-cache-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&path, "not json").unwrap();
        let e = TokenCache::new(path.clone())
            .load("https://idp", "placement-cli")
            .unwrap_err();
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        std::fs::remove_file(path).ok();
    }
}
