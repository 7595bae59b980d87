//! One AMQP connection per service, rebuilt on demand. Every user of the broker (relay, consumers) asks for
//! a fresh channel whenever its previous one failed; a dead connection is replaced here, so a broker restart
//! or a cut network heals without restarting the service.
//!
//! `PLACEMENT_AMQP_URL` may name several nodes of a cluster, comma-separated. Each instance starts at a
//! node of its own (chosen at random, so that instances spread over the cluster), and when its connection
//! fails it tries the next node first, then the others in turn: a node that dies sends its clients to the
//! others, while the callers' backoff with jitter keeps them from all reconnecting at the same moment.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;

pub struct Broker {
    urls: Vec<String>,
    /// The node the next connection is tried at first.
    next: AtomicUsize,
    name: String,
    connection: Mutex<Option<Connection>>,
    connected: AtomicBool,
}

impl Broker {
    /// `urls`: one AMQP URL, or several nodes' URLs separated by commas.
    pub fn new(urls: impl Into<String>, name: impl Into<String>) -> Arc<Self> {
        let urls: Vec<String> = (urls.into().split(','))
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect();
        let first = rand::random_range(0..urls.len().max(1));
        Arc::new(Self {
            urls,
            next: AtomicUsize::new(first),
            name: name.into(),
            connection: Mutex::new(None),
            connected: AtomicBool::new(false),
        })
    }

    /// A new channel on a live connection, connecting first if there is none.
    pub async fn channel(&self) -> Result<Channel, lapin::Error> {
        let mut guard = self.connection.lock().await;
        if let Some(conn) = guard.as_ref() {
            if conn.status().connected() {
                match conn.create_channel().await {
                    Ok(ch) => return Ok(ch),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot open a channel; reconnecting");
                    }
                }
            }
            if let Some(old) = guard.take() {
                // Best effort: the old connection is usually dead already.
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(1),
                    old.close(0, "reconnecting".into()),
                )
                .await;
            }
        }
        self.connected.store(false, Ordering::Relaxed);
        let conn = self.connect_any().await?;
        let channel = conn.create_channel().await?;
        *guard = Some(conn);
        self.connected.store(true, Ordering::Relaxed);
        Ok(channel)
    }

    /// A connection to the first node that answers, starting at `next`; the node after it is the first
    /// tried next time, so that a connection lost to a dying node moves on.
    async fn connect_any(&self) -> Result<Connection, lapin::Error> {
        let n = self.urls.len();
        let start = self.next.load(Ordering::Relaxed);
        let mut last = None;
        for k in 0..n {
            let node = (start + k) % n;
            self.next.store((node + 1) % n, Ordering::Relaxed);
            match self.connect(&self.urls[node]).await {
                Ok(conn) => {
                    tracing::info!(connection = %self.name, node = node + 1, nodes = n, "connected to RabbitMQ");
                    return Ok(conn);
                }
                Err(e) => {
                    tracing::warn!(node = node + 1, nodes = n, error = %e, "RabbitMQ node does not answer");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            lapin::Error::from(lapin::ErrorKind::IOError(Arc::new(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "PLACEMENT_AMQP_URL names no broker",
            ))))
        }))
    }

    async fn connect(&self, url: &str) -> Result<Connection, lapin::Error> {
        let props = ConnectionProperties::default().with_connection_name(self.name.clone().into());
        // A broker behind a network that drops packets would otherwise hold every caller for the kernel's
        // TCP timeout (minutes).
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            Connection::connect(url, props),
        )
        .await
        .map_err(|_| {
            lapin::Error::from(lapin::ErrorKind::IOError(Arc::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connecting to RabbitMQ timed out",
            ))))
        })?
    }

    /// Whether the connection is up, as far as this side can tell.
    pub fn is_connected(&self) -> bool {
        match self.connection.try_lock() {
            Ok(guard) => guard.as_ref().is_some_and(|c| c.status().connected()),
            // Someone is (re)connecting right now.
            Err(_) => self.connected.load(Ordering::Relaxed),
        }
    }

    /// Closes the connection (on shutdown).
    pub async fn close(&self) {
        if let Some(conn) = self.connection.lock().await.take() {
            let _ = conn.close(200, "shutdown".into()).await;
        }
        self.connected.store(false, Ordering::Relaxed);
    }
}
