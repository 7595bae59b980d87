//! A real HTTP receiver of webhooks for a test: it verifies each call's Standard Webhooks signature with the
//! convention's own library (`standardwebhooks`), answers with failures on purpose when told to, and keeps
//! every call it saw.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post};

/// One call as received.
#[derive(Debug, Clone)]
pub struct Call {
    /// `webhook-id`.
    pub id: String,
    pub verified: bool,
    pub body: serde_json::Value,
    /// What the receiver answered.
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    secret: Option<String>,
    /// Calls still to fail with 503.
    fail_next: usize,
    /// Calls still to answer late (after this delay, with 503): the sender should have given up by then.
    slow_next: usize,
    slow_delay: Duration,
    /// Fail every call with 500 while set.
    fail_always: bool,
    calls: Vec<Call>,
}

#[derive(Clone)]
pub struct WebhookReceiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl WebhookReceiver {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the webhook receiver");
        let addr = listener.local_addr().expect("address");
        let app = Router::new()
            .route("/hooks/placement", post(receive))
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks/placement", self.addr)
    }

    /// The secret the directory gave for this endpoint.
    pub fn set_secret(&self, secret: &str) {
        self.inner.lock().unwrap().secret = Some(secret.to_string());
    }

    pub fn fail_next(&self, n: usize) {
        self.inner.lock().unwrap().fail_next = n;
    }

    /// The next `n` calls are answered only after `delay` (and then with 503).
    pub fn slow_next(&self, n: usize, delay: Duration) {
        let mut inner = self.inner.lock().unwrap();
        inner.slow_next = n;
        inner.slow_delay = delay;
    }

    pub fn fail_always(&self, on: bool) {
        self.inner.lock().unwrap().fail_always = on;
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    /// The calls it accepted (answered 2xx) after verifying them.
    pub fn accepted(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.status < 300)
            .collect()
    }

    pub async fn wait_for(&self, timeout: Duration, done: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let calls = self.calls();
            if done(&calls) || tokio::time::Instant::now() > deadline {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    // Decided and recorded on arrival: a sender that gives up drops the connection, and with it this
    // handler, before a late answer.
    let (status, delay) = {
        let mut inner = inner.lock().unwrap();
        let verified = inner.secret.as_deref().is_some_and(|secret| {
            standardwebhooks::Webhook::new(secret)
                .and_then(|w| w.verify(&body, &headers))
                .is_ok()
        });
        let mut delay = None;
        let status = if !verified {
            StatusCode::UNAUTHORIZED
        } else if inner.slow_next > 0 {
            inner.slow_next -= 1;
            delay = Some(inner.slow_delay);
            StatusCode::SERVICE_UNAVAILABLE
        } else if inner.fail_always {
            StatusCode::INTERNAL_SERVER_ERROR
        } else if inner.fail_next > 0 {
            inner.fail_next -= 1;
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::NO_CONTENT
        };
        inner.calls.push(Call {
            id: headers
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            verified,
            body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
            status: status.as_u16(),
        });
        (status, delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    status
}
