//! One AMQP connection per service, rebuilt on demand. Every user of the broker (relay, consumers) asks for
//! a fresh channel whenever its previous one failed; a dead connection is replaced here, so a broker restart
//! or a cut network heals without restarting the service.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;

pub struct Broker {
    url: String,
    name: String,
    connection: Mutex<Option<Connection>>,
    connected: AtomicBool,
}

impl Broker {
    pub fn new(url: impl Into<String>, name: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            url: url.into(),
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
        let props = ConnectionProperties::default().with_connection_name(self.name.clone().into());
        // A broker behind a network that drops packets would otherwise hold every caller for the kernel's
        // TCP timeout (minutes).
        let conn = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            Connection::connect(&self.url, props),
        )
        .await
        .map_err(|_| {
            lapin::Error::from(lapin::ErrorKind::IOError(std::sync::Arc::new(
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connecting to RabbitMQ timed out",
                ),
            )))
        })??;
        let channel = conn.create_channel().await?;
        tracing::info!(connection = %self.name, "connected to RabbitMQ");
        *guard = Some(conn);
        self.connected.store(true, Ordering::Relaxed);
        Ok(channel)
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
