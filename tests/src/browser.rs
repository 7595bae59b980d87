//! A real browser for the web app's tests: Debian's chromium, headless, driven over WebDriver by its
//! chromedriver (`deploy/infra.sh browser` installs both), one driver per test and one browser session
//! (with a profile of its own) per person.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::free_port;

pub struct Driver {
    child: Child,
    url: String,
    profiles: Vec<PathBuf>,
}

/// `PLACEMENT_TEST_CHROMEDRIVER` (set by deploy/test.sh), else `chromedriver` on the PATH.
fn driver_path() -> String {
    std::env::var("PLACEMENT_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into())
}

impl Driver {
    /// Starts chromedriver on a free port and waits until it answers.
    pub async fn start() -> Driver {
        let port = free_port();
        let child = Command::new(driver_path())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts (run `bash deploy/infra.sh browser`)");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while http.get(format!("{url}/status")).send().await.is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "chromedriver not answering"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Driver {
            child,
            url,
            profiles: Vec::new(),
        }
    }

    /// A new browser window with an empty profile: one person.
    pub async fn person(&mut self) -> Client {
        let profile = std::env::temp_dir().join(format!("pe-chromium-{}", uuid::Uuid::new_v4()));
        self.profiles.push(profile.clone());
        // As root and on a closed network: no sandbox, nothing fetched in the background.
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1000",
            "--lang=bg",
        ]
        .into_iter()
        .map(String::from)
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium_path(),
                "args": args,
                // A Bulgarian browser: the app's default language comes from Accept-Language.
                "prefs": { "intl.accept_languages": "bg-BG,bg" },
            }),
        );
        ClientBuilder::rustls()
            .expect("TLS for WebDriver")
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a chromium session")
    }
}

fn chromium_path() -> String {
    std::env::var("PLACEMENT_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for p in &self.profiles {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// Whether an element `css` matches has text containing `text`.
async fn shows(client: &Client, css: &str, text: &str) -> bool {
    if let Ok(elements) = client.find_all(Locator::Css(css)).await {
        for e in elements {
            if e.text().await.is_ok_and(|t| t.contains(text)) {
                return true;
            }
        }
    }
    false
}

/// Waits until `css` matches an element whose text contains `text`; panics with the page's text after
/// `limit`.
pub async fn wait_for_text(client: &Client, css: &str, text: &str, limit: Duration) {
    wait(client, css, text, limit, false).await
}

/// Like [`wait_for_text`], reloading the page until the text is there (for what changes without a
/// notification, e.g. a deadline passing).
pub async fn wait_reloading(client: &Client, css: &str, text: &str, limit: Duration) {
    wait(client, css, text, limit, true).await
}

/// Waits until nothing on the page matches `css`: after a form that removes what it is on (a row, a
/// button), the click may return while the old page is still shown, so only the new page's lack of it
/// says the action went through.
pub async fn wait_gone(client: &Client, css: &str, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    while client
        .find_all(Locator::Css(css))
        .await
        .is_ok_and(|v| !v.is_empty())
    {
        let url = client.current_url().await.map(|u| u.to_string());
        assert!(
            std::time::Instant::now() < deadline,
            "{css:?} still shown after {limit:?} on {url:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait(client: &Client, css: &str, text: &str, limit: Duration, reload: bool) {
    let deadline = std::time::Instant::now() + limit;
    while !shows(client, css, text).await {
        if std::time::Instant::now() > deadline {
            let body = match client.find(Locator::Css("body")).await {
                Ok(b) => b.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            let url = client.current_url().await.map(|u| u.to_string());
            panic!("no {css:?} with {text:?} within {limit:?} on {url:?}:\n{body}");
        }
        tokio::time::sleep(Duration::from_millis(if reload { 300 } else { 100 })).await;
        if reload {
            client.refresh().await.expect("reload");
        }
    }
}

/// Saves a screenshot of the page as `target/web-screenshots/<name>.png`, for a person to look at.
pub async fn screenshot(client: &Client, name: &str) {
    let dir = crate::bin_dir().join("../web-screenshots");
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(png) = client.screenshot().await {
        let _ = std::fs::write(dir.join(format!("{name}.png")), png);
    }
}
