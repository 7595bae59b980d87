//! Where webhook calls may go, and what a failed call is recorded as.
//!
//! A host name is resolved once, by [`GuardedResolver`], and the call goes to exactly the addresses judged
//! there: a name that resolved outside at registration and inside now (DNS rebinding, or a record changed
//! since) is refused, with no second lookup to slip through. An address written in the URL is never
//! resolved, so [`AllowedTargets::check_literal`] judges it before the call.
//!
//! What an agency reads back about a failure is coarse ("connection failed", "timed out after 10s", "TLS
//! failed", "HTTP 500"): a delivery log that told refused ports from filtered ones, or named addresses, would make
//! the exchange a port scanner for whoever registers a webhook.

use std::{error::Error, io, net::SocketAddr, sync::Arc, time::Duration};

use placement_platform::webhook::{AllowedTargets, TargetRefused, is_internal};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What a refused target is recorded as.
pub const NOT_ALLOWED: &str = "address not allowed";

/// Resolves webhook hosts, refusing a name any of whose addresses is inside a network unless the operator
/// allowed that name.
pub struct GuardedResolver {
    pub targets: Arc<AllowedTargets>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let targets = self.targets.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !targets.allows_name(&host)
                && let Some(inside) = addrs.iter().find(|a| is_internal(a.ip()))
            {
                // The operator's log says where the name led; the agency's delivery log does not.
                tracing::warn!(%host, address = %inside.ip(), "a webhook host resolves inside a network; not called");
                return Err(
                    Box::new(TargetRefused::InternalAddress) as Box<dyn Error + Send + Sync>
                );
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A failed attempt as it is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub detail: String,
    /// Trying again cannot succeed (the target is not allowed): the delivery fails at once.
    pub permanent: bool,
}

impl Failure {
    pub fn retry(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            permanent: false,
        }
    }

    pub fn refused() -> Self {
        Self {
            detail: NOT_ALLOWED.into(),
            permanent: true,
        }
    }

    /// A call that got no HTTP answer, in the coarse words an agency reads.
    pub fn of_call(e: &reqwest::Error, timeout: Duration) -> Self {
        if causes(e).any(|c| c.is::<TargetRefused>()) {
            Self::refused()
        } else if e.is_timeout() {
            Self::retry(format!("timed out after {timeout:?}"))
        } else if causes(e).any(is_tls) {
            Self::retry("TLS failed")
        } else if e.is_connect() {
            Self::retry("connection failed")
        } else {
            Self::retry("request failed")
        }
    }
}

/// rustls's failures reach us as I/O errors of kind InvalidData (tokio-rustls's mapping).
fn is_tls(e: &(dyn Error + 'static)) -> bool {
    e.downcast_ref::<io::Error>()
        .is_some_and(|io| io.kind() == io::ErrorKind::InvalidData)
}

/// The error and its causes. An `io::Error`'s own `source` skips the error it wraps, so that is taken
/// instead.
fn causes<'a>(e: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(e), |&err: &&'a (dyn Error + 'static)| {
        match err.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn Error + 'static)),
            None => err.source(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::net::TcpListener;

    const TIMEOUT: Duration = Duration::from_millis(500);

    fn client(allowed: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(TIMEOUT)
            .no_proxy()
            .dns_resolver(GuardedResolver {
                targets: Arc::new(AllowedTargets::parse(allowed).unwrap()),
            })
            .build()
            .unwrap()
    }

    /// A loopback port that takes connections and answers each with `reply` (or never, when None); counts
    /// the connections it took.
    async fn listener(reply: Option<&'static [u8]>) -> (u16, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                if let Some(bytes) = reply {
                    answer(&socket, bytes).await;
                }
                held.push(socket);
            }
        });
        (port, accepted)
    }

    /// Answers once the request (or the TLS hello) has come: a request's head ends in an empty line, and
    /// a hello is never a request.
    async fn answer(socket: &tokio::net::TcpStream, bytes: &[u8]) {
        let mut seen = Vec::new();
        let mut buffer = [0u8; 4096];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.first() != Some(&0x16) {
            if socket.readable().await.is_err() {
                return;
            }
            match socket.try_read(&mut buffer) {
                Ok(0) => return,
                Ok(n) => seen.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        if socket.writable().await.is_ok() {
            let _ = socket.try_write(bytes);
        }
    }

    async fn failure(allowed: &str, url: &str) -> Failure {
        let e = client(allowed)
            .post(url)
            .send()
            .await
            .expect_err("the call fails");
        Failure::of_call(&e, TIMEOUT)
    }

    #[tokio::test]
    async fn a_name_resolving_inside_is_refused_before_connecting() {
        let (port, accepted) =
            listener(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")).await;
        let url = format!("http://localhost:{port}/hook");
        assert_eq!(failure("", &url).await, Failure::refused());
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            0,
            "refused before connecting"
        );
        // Allowed by the operator, the same name is called.
        let response = client("localhost").post(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn failures_are_told_coarsely() {
        // A port nobody listens on: "connection failed", with neither port nor address.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let f = failure("localhost", &format!("http://localhost:{port}/")).await;
        assert_eq!(f, Failure::retry("connection failed"));

        let (port, _) = listener(None).await;
        let f = failure("localhost", &format!("http://localhost:{port}/")).await;
        assert_eq!(f, Failure::retry(format!("timed out after {TIMEOUT:?}")));

        // TLS to something that is not TLS.
        let (port, _) = listener(Some(b"HTTP/1.1 400 Bad Request\r\n\r\n")).await;
        let f = failure("localhost", &format!("https://localhost:{port}/")).await;
        assert_eq!(f, Failure::retry("TLS failed"));
    }
}
