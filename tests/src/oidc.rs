//! A real OpenID provider for a test: panva's oidc-provider (OpenID Certified), run under Node.js from
//! `deploy/oidc` (`deploy/infra.sh oidc` installs it), on a free port, with the accounts and clients the
//! test gives it. Stopped when dropped.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

/// What the provider's discovery document says (`/.well-known/openid-configuration`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: String,
    pub authorization_endpoint: String,
}

pub struct OpenIdProvider {
    pub discovery: Discovery,
    child: Child,
    http: reqwest::Client,
    log: PathBuf,
    config_file: PathBuf,
    config: serde_json::Value,
}

/// `PLACEMENT_TEST_OIDC_DIR` (set by deploy/test.sh), else the repository's `deploy/oidc`.
fn provider_dir() -> PathBuf {
    std::env::var_os("PLACEMENT_TEST_OIDC_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/oidc"))
}

impl OpenIdProvider {
    /// Starts the provider with `config` (`{"accounts": {...}, "clients": [...]}`, see
    /// `deploy/oidc/provider.mjs`) and waits until its discovery document answers.
    pub async fn start(config: serde_json::Value) -> Self {
        let dir = provider_dir();
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "the OpenID provider is not installed: run `bash deploy/infra.sh oidc`"
        );
        let port = crate::free_port();
        let tag = format!("{}-{port}", std::process::id());
        let accounts = std::env::temp_dir().join(format!("placement-oidc-{tag}.json"));
        std::fs::write(&accounts, config.to_string()).expect("the provider's accounts");
        let log = std::env::temp_dir().join(format!("placement-oidc-{tag}.log"));
        let out = std::fs::File::create(&log).expect("the provider's log");
        let child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .env("OIDC_PORT", port.to_string())
            .env("OIDC_ACCOUNTS", &accounts)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out)
            .spawn()
            .expect("node runs (deploy/infra.sh oidc installs it)");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client");
        let mut provider = Self {
            discovery: Discovery {
                issuer: String::new(),
                jwks_uri: String::new(),
                token_endpoint: String::new(),
                authorization_endpoint: String::new(),
            },
            child,
            http,
            log,
            config_file: accounts.clone(),
            config,
        };
        provider.discovery = provider.discover(&format!("http://127.0.0.1:{port}")).await;
        provider
    }

    async fn discover(&mut self, base: &str) -> Discovery {
        let url = format!("{base}/.well-known/openid-configuration");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the OpenID provider exited ({status}):\n{}", self.logs());
            }
            if let Ok(response) = self.http.get(&url).send().await
                && response.status().is_success()
                && let Ok(text) = response.text().await
            {
                return serde_json::from_str(&text).expect("a discovery document");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the OpenID provider did not answer in 30 s:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An access token for a client of the provider's own (the client credentials grant), for the
    /// exchange's services as audience; the provider's error text when refused.
    pub async fn client_credentials(&self, client: &str, secret: &str) -> Result<String, String> {
        let response = self
            .http
            .post(&self.discovery.token_endpoint)
            .basic_auth(client, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&scope=placement&resource=urn%3Aplacement-exchange")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let ok = response.status().is_success();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !ok {
            return Err(text);
        }
        let body: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        body["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no access_token in {text}"))
    }

    /// Replaces the provider's accounts (`{"<login>": {"agency_id", "roles"}}`); taken at the next sign-in.
    pub fn set_accounts(&mut self, accounts: serde_json::Value) {
        self.config["accounts"] = accounts;
        std::fs::write(&self.config_file, self.config.to_string())
            .expect("the provider's accounts");
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for OpenIdProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config_file);
        let _ = std::fs::remove_file(&self.log);
    }
}
