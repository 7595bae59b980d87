//! `placement-cli` signs in at a real OpenID provider (oidc-provider, run by the test) as every other
//! client does, against a stack that trusts that provider only (not the development signer): a machine by
//! the client-credentials grant, a person by the device flow, confirming the code through the provider's
//! own pages (device code, login, consent) as a browser would submit them. The person's tokens are kept in
//! a file of their own, reused by the next command and refreshed when they have run out.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use placement_cli::demo::NATIONAL_AUTHORITY;
use placement_e2e::{Stack, StackOptions, oidc::OpenIdProvider};
use placement_platform::services;

const PERSON_CLIENT: &str = "placement-cli";
const MACHINE_CLIENT: &str = "placement-cli-operator";
const MACHINE_SECRET: &str = "operator-secret";
const OPERATOR_LOGIN: &str = "duty-operator";
/// The device flow's polling interval is five seconds (RFC 8628): a sign-in takes a few of them.
const SIGN_IN_WAIT: Duration = Duration::from_secs(45);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_signs_in_at_the_openid_provider() {
    let provider = OpenIdProvider::start(serde_json::json!({
        "accounts": {
            OPERATOR_LOGIN: { "agency_id": NATIONAL_AUTHORITY.to_string(), "roles": ["operator"] }
        },
        "clients": [
            {
                "client_id": PERSON_CLIENT,
                "grant_types": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]
            },
            {
                "client_id": MACHINE_CLIENT,
                "client_secret": MACHINE_SECRET,
                "agency_id": NATIONAL_AUTHORITY.to_string(),
                "roles": ["operator"]
            }
        ]
    }))
    .await;
    let stack = Stack::start(StackOptions {
        jwks_uri: Some(provider.discovery.jwks_uri.clone()),
        env: vec![(
            "PLACEMENT_AUTH_ISSUER".into(),
            provider.discovery.issuer.clone(),
        )],
        ..Default::default()
    })
    .await;
    let cli = CommandLine::new(&stack, &provider);

    a_machine_signs_in_with_client_credentials(&cli).await;
    a_person_signs_in_by_the_device_flow(&cli, &provider).await;
    the_kept_token_is_reused_then_refreshed(&cli).await;
    signing_out_forgets_the_tokens(&cli).await;
}

async fn a_machine_signs_in_with_client_credentials(cli: &CommandLine) {
    let machine = [
        ("PLACEMENT_CLI_CLIENT_ID", MACHINE_CLIENT),
        ("PLACEMENT_CLI_CLIENT_SECRET", MACHINE_SECRET),
    ];
    let out = cli.run(&machine, &["status"]).await;
    assert_every_service_answered(&out);
    // A machine's token is asked for each run: nothing is written for it.
    assert!(!cli.cache.exists(), "a machine's token was written to disk");

    let wrong = [
        ("PLACEMENT_CLI_CLIENT_ID", MACHINE_CLIENT),
        ("PLACEMENT_CLI_CLIENT_SECRET", "guess"),
    ];
    let out = cli.run(&wrong, &["status"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a wrong secret is refused");
    assert!(
        stderr.contains("refused the client credentials") && stderr.contains("invalid_client"),
        "the refusal says what was refused and why: {stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing was asked of the services");

    // Neither a secret nor a sign-in: told how to sign in.
    let out = cli.run(&[], &["status"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("not signed in") && stderr.contains("placement-cli sign-in"),
        "{stderr}"
    );
}

async fn a_person_signs_in_by_the_device_flow(cli: &CommandLine, provider: &OpenIdProvider) {
    let mut sign_in = cli
        .command(&[], &["sign-in"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("placement-cli sign-in starts");
    let lines = read_lines(sign_in.stderr.take().expect("stderr"));
    let (uri, code) = wait_for_code(&lines).await;
    assert!(
        uri.starts_with(&provider.discovery.issuer),
        "the code is confirmed at the provider: {uri}"
    );
    confirm_device_code(&uri, &code, OPERATOR_LOGIN, provider).await;

    let status = wait_for_exit(&mut sign_in, SIGN_IN_WAIT).await;
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut sign_in.stdout.take().expect("stdout"), &mut stdout)
        .expect("sign-in's output");
    assert!(
        status.success(),
        "sign-in failed: {stdout}\n{:?}\n{}",
        lines.try_iter().collect::<Vec<_>>(),
        provider.logs()
    );
    assert!(
        stdout.contains(&format!("agency {NATIONAL_AUTHORITY}")) && stdout.contains("operator"),
        "sign-in says whom the token acts for: {stdout}"
    );
    let kept = cli.kept_session();
    assert!(
        kept["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cli.cache).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the token file is its owner's only");
    }
}

async fn the_kept_token_is_reused_then_refreshed(cli: &CommandLine) {
    let before = cli.kept_session();
    let out = cli.run(&[], &["status"]).await;
    assert_every_service_answered(&out);
    let out = cli
        .run(&[], &["dead-letters", "--service", "notifications"])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        cli.kept_session(),
        before,
        "the kept token is used as it is, without signing in again"
    );

    // Once the access token has run out, the next command refreshes it (the provider rotates the
    // refresh token as well).
    let mut expired = before.clone();
    expired["expires_at"] = serde_json::json!(0);
    cli.keep_session(expired);
    let out = cli.run(&[], &["status"]).await;
    assert_every_service_answered(&out);
    let after = cli.kept_session();
    assert_ne!(after["access_token"], before["access_token"]);
    assert_ne!(after["refresh_token"], before["refresh_token"]);
    let now = chrono::Utc::now().timestamp();
    assert!(after["expires_at"].as_i64().is_some_and(|at| at > now));
}

async fn signing_out_forgets_the_tokens(cli: &CommandLine) {
    let out = cli.run(&[], &["sign-out"]).await;
    assert!(out.status.success());
    let out = cli.run(&[], &["status"]).await;
    assert!(
        !out.status.success(),
        "signed out, the command line has no token"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not signed in"));
}

/// `status` succeeded and every service answered it (a refused token shows as "not answering").
fn assert_every_service_answered(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "status failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for service in services::ALL {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(service.name) && l.contains("database ok")),
            "{} did not answer status: {stdout}",
            service.name
        );
    }
}

/// The `placement-cli` binary with the stack's addresses, its client certificate and the provider, and
/// nothing of this process's environment.
struct CommandLine {
    env: Vec<(String, String)>,
    cache: PathBuf,
    issuer: String,
}

impl CommandLine {
    fn new(stack: &Stack, provider: &OpenIdProvider) -> Self {
        let keys = placement_e2e::dev_keys();
        let cache = std::env::temp_dir()
            .join(format!("placement-cli-tokens-{}", uuid::Uuid::new_v4()))
            .join("tokens.json");
        let mut env: Vec<(String, String)> = services::ALL
            .iter()
            .map(|s| (s.setting("url"), stack.endpoints.url(*s).to_string()))
            .collect();
        for (var, file) in [
            (
                "PLACEMENT_TLS_CERT",
                placement_cli::devkeys::CLIENT_CERT_FILE,
            ),
            ("PLACEMENT_TLS_KEY", placement_cli::devkeys::CLIENT_KEY_FILE),
            ("PLACEMENT_TLS_CA", placement_cli::devkeys::CA_FILE),
        ] {
            env.push((var.into(), keys.join(file).display().to_string()));
        }
        env.push((
            "PLACEMENT_CLI_ISSUER".into(),
            provider.discovery.issuer.clone(),
        ));
        env.push((
            "PLACEMENT_CLI_TOKEN_CACHE".into(),
            cache.display().to_string(),
        ));
        Self {
            env,
            cache,
            issuer: provider.discovery.issuer.clone(),
        }
    }

    fn command(&self, extra: &[(&str, &str)], args: &[&str]) -> Command {
        let mut command = Command::new(placement_e2e::bin_dir().join("placement-cli"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra.iter().copied())
            .args(args)
            .stdin(Stdio::null());
        command
    }

    async fn run(&self, extra: &[(&str, &str)], args: &[&str]) -> Output {
        let mut command = self.command(extra, args);
        let run = tokio::task::spawn_blocking(move || command.output());
        tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .unwrap_or_else(|_| panic!("placement-cli {args:?} did not end in 60 s"))
            .expect("the command runs")
            .expect("placement-cli runs (cargo build --workspace --bins)")
    }

    /// The tokens kept for the person's client at the provider.
    fn kept_session(&self) -> serde_json::Value {
        let file = self.read_cache();
        file["sessions"]
            .as_array()
            .and_then(|sessions| {
                sessions.iter().find(|s| {
                    s["issuer"] == self.issuer.as_str() && s["client_id"] == PERSON_CLIENT
                })
            })
            .cloned()
            .unwrap_or_else(|| panic!("no tokens kept for {PERSON_CLIENT}: {file}"))
    }

    fn keep_session(&self, session: serde_json::Value) {
        let file = serde_json::json!({ "sessions": [session] });
        std::fs::write(&self.cache, file.to_string()).expect("the token file");
    }

    fn read_cache(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(&self.cache)
            .unwrap_or_else(|e| panic!("{}: {e}", self.cache.display()));
        serde_json::from_str(&text).expect("the token file is JSON")
    }
}

impl Drop for CommandLine {
    fn drop(&mut self) {
        if let Some(dir) = self.cache.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The lines a child writes to `stream`, as they come.
fn read_lines(stream: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stream)).map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

/// The verification address and user code `sign-in` shows ("Open URI and enter the code CODE").
async fn wait_for_code(lines: &std::sync::mpsc::Receiver<String>) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        while let Ok(line) = lines.try_recv() {
            if let Some(rest) = line.strip_prefix("Open ")
                && let Some((uri, code)) = rest.split_once(" and enter the code ")
            {
                return (uri.to_string(), code.trim().to_string());
            }
            seen.push(line);
        }
        assert!(
            Instant::now() < deadline,
            "sign-in showed no code in 20 s: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_exit(
    child: &mut std::process::Child,
    limit: Duration,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("the child's status") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("placement-cli sign-in did not end within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Confirms `code` at the provider's verification page as `login`, submitting each page's form as a
/// browser would: the code, its confirmation, the login, the consent; until the provider says the
/// sign-in succeeded.
async fn confirm_device_code(uri: &str, code: &str, login: &str, provider: &OpenIdProvider) {
    let mut browser = FormBrowser::new();
    let mut page = browser.get(uri).await;
    let fill = [
        ("user_code", code),
        ("login", login),
        ("password", "any password"),
    ];
    for _ in 0..8 {
        if page.body.contains("Sign-in Success") {
            return;
        }
        let form = Form::first_in(&page.body).unwrap_or_else(|| {
            panic!(
                "no form on {} and no success:\n{}\n{}",
                page.url,
                page.body,
                provider.logs()
            )
        });
        let action = url::Url::parse(&page.url)
            .and_then(|base| base.join(&form.action))
            .expect("the form's action is a URL");
        let fields = form
            .fields
            .into_iter()
            .map(|(name, value)| {
                let filled = fill
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string());
                (name, filled.unwrap_or(value))
            })
            .collect::<Vec<_>>();
        page = browser.post(action.as_str(), &fields).await;
    }
    panic!("the device sign-in did not succeed:\n{}", page.body);
}

struct Page {
    url: String,
    body: String,
}

/// An HTTP client that keeps the provider's cookies and follows its redirects, as a browser does.
struct FormBrowser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

impl FormBrowser {
    fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
            cookies: BTreeMap::new(),
        }
    }

    async fn get(&mut self, url: &str) -> Page {
        let request = self.http.get(url);
        self.follow(url, request).await
    }

    async fn post(&mut self, url: &str, fields: &[(String, String)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let request = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.follow(url, request).await
    }

    /// Sends `request` and follows the redirects (with GET) to the page they end on.
    async fn follow(&mut self, url: &str, mut request: reqwest::RequestBuilder) -> Page {
        let mut url = url.to_string();
        for _ in 0..10 {
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let response = request
                .header("cookie", cookie)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            self.keep_cookies(&response);
            let status = response.status();
            let location = response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(str::to_string);
            match location {
                Some(next) if status.is_redirection() => {
                    url = url::Url::parse(&url)
                        .and_then(|base| base.join(&next))
                        .expect("a redirect to a URL")
                        .to_string();
                    request = self.http.get(&url);
                }
                _ => {
                    let body = response.text().await.expect("the page");
                    assert!(status.is_success(), "{url} answered {status}:\n{body}");
                    return Page { url, body };
                }
            }
        }
        panic!("more than 10 redirects from {url}");
    }

    /// Keeps the cookies the response sets, and drops those it clears. Paths are not told apart: each
    /// name is set for one interaction at a time.
    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for header in response.headers().get_all("set-cookie") {
            let Some(cookie) = header
                .to_str()
                .ok()
                .and_then(|h| cookie::Cookie::parse(h.to_string()).ok())
            else {
                continue;
            };
            if cookie.value().is_empty() {
                self.cookies.remove(cookie.name());
            } else {
                self.cookies
                    .insert(cookie.name().to_string(), cookie.value().to_string());
            }
        }
    }
}

/// An HTML form: where it is sent, and its named inputs with their values.
struct Form {
    action: String,
    fields: Vec<(String, String)>,
}

impl Form {
    fn first_in(html: &str) -> Option<Form> {
        let start = html.find("<form")?;
        let rest = &html[start..];
        let end = rest.find("</form>").unwrap_or(rest.len());
        let form = &rest[..end];
        let tag_end = form.find('>')?;
        let action = attribute(&form[..tag_end], "action")?;
        let fields = form
            .split("<input")
            .skip(1)
            .filter_map(|input| {
                let tag = &input[..input.find('>').unwrap_or(input.len())];
                let name = attribute(tag, "name")?;
                Some((name, attribute(tag, "value").unwrap_or_default()))
            })
            .collect();
        Some(Form { action, fields })
    }
}

/// The value of the attribute `name="..."` in a tag's text, with HTML's escapes undone.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!("{name}=\"");
    let at = tag
        .match_indices(&marker)
        .find(|(i, _)| *i == 0 || tag[..*i].ends_with(char::is_whitespace))?
        .0;
    let value = &tag[at + marker.len()..];
    let value = &value[..value.find('"')?];
    Some(
        value
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}
