//! A TCP proxy the test controls, to cut the network between one service and RabbitMQ and restore it,
//! without another machine.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
    sync::watch,
};

pub struct TcpProxy {
    pub port: u16,
    open: Arc<AtomicBool>,
    /// Connections being forwarded now.
    live: Arc<AtomicUsize>,
    /// Bumped on every cut: live connections watch it and close.
    generation: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream` (host:port).
    pub async fn start(upstream: String) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy port");
        let port = listener.local_addr().expect("proxy address").port();
        let open = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let live = Arc::new(AtomicUsize::new(0));
        let task = {
            let open = open.clone();
            let live = live.clone();
            let generation = generation.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    if !open.load(Ordering::SeqCst) {
                        // Cut: the connection is accepted and dropped, as a broken link would.
                        drop(inbound);
                        continue;
                    }
                    let upstream = upstream.clone();
                    let mut cut = generation.subscribe();
                    let live = live.clone();
                    tokio::spawn(async move {
                        let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                            return;
                        };
                        live.fetch_add(1, Ordering::SeqCst);
                        tokio::select! {
                            _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = cut.changed() => {}
                        }
                        live.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            })
        };
        TcpProxy {
            port,
            open,
            live,
            generation,
            task,
        }
    }

    /// Drops every live connection and refuses new ones until [`restore`](Self::restore).
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// How many connections it forwards now.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.generation.send_modify(|g| *g += 1);
    }
}
