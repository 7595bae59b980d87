//! A RabbitMQ cluster of three nodes on this machine, for the fault suite: each node an Erlang VM of its own
//! (Debian's rabbitmq-server, started directly rather than through the service wrapper), with its own name,
//! ports and data directory, joined with `rabbitmqctl join_cluster`. Quorum queues declared on it have a
//! member on every node. Nodes can be killed (SIGKILL) to see what the exchange does.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use crate::free_port;

const BIN: &str = "/usr/lib/rabbitmq/bin";

pub struct Node {
    pub name: String,
    pub port: u16,
    dir: PathBuf,
    shell: Option<Child>,
}

impl Node {
    /// The Erlang VM's pid, as the node wrote it.
    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
    }
}

pub struct RabbitCluster {
    pub nodes: Vec<Node>,
    dir: PathBuf,
}

fn ctl(node: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(format!("{BIN}/rabbitmqctl"))
        .arg("-n")
        .arg(node)
        .args(args)
        .output()
        .map_err(|e| format!("rabbitmqctl: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "rabbitmqctl -n {node} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl RabbitCluster {
    /// Starts `n` nodes and joins them into one cluster (blocking; about 15 seconds for three).
    pub fn start(n: usize) -> Self {
        let dir = std::env::temp_dir().join(format!("placement-rabbit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut nodes: Vec<Node> = (1..=n).map(|i| Self::spawn(&dir, i)).collect();
        for node in &nodes {
            Self::await_startup(node);
        }
        let first = nodes[0].name.clone();
        for node in &mut nodes[1..] {
            ctl(&node.name, &["stop_app"]).expect("stop_app");
            ctl(&node.name, &["join_cluster", &first]).expect("join_cluster");
            ctl(&node.name, &["start_app"]).expect("start_app");
        }
        Self { nodes, dir }
    }

    /// Waits until `node` has booted: first until it is known to epmd (a node just started is not), then
    /// until it has started its applications.
    fn await_startup(node: &Node) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            match ctl(&node.name, &["await_startup", "--timeout", "120"]) {
                Ok(_) => return,
                Err(e) if std::time::Instant::now() > deadline => panic!(
                    "{e}\n{}",
                    std::fs::read_to_string(node.dir.join("out.log")).unwrap_or_default()
                ),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(500)),
            }
        }
    }

    fn spawn(base: &std::path::Path, i: usize) -> Node {
        let name = format!("pe-c{i}-{}@localhost", std::process::id());
        let dir = base.join(format!("node{i}"));
        std::fs::create_dir_all(dir.join("mnesia")).expect("node folder");
        std::fs::create_dir_all(dir.join("log")).expect("node folder");
        let port = free_port();
        std::fs::write(dir.join("enabled_plugins"), "[].\n").expect("plugins file");
        std::fs::write(
            dir.join("rabbitmq.conf"),
            // As in production (deploy/k8s): a node that finds itself in a minority stops serving, and
            // starts again once it sees the majority.
            format!(
                "listeners.tcp.default = {port}\ncluster_partition_handling = pause_minority\n"
            ),
        )
        .expect("config");
        std::fs::write(dir.join("env.conf"), "").expect("env file");
        let log = std::fs::File::create(dir.join("out.log")).expect("log");
        let shell = Command::new(format!("{BIN}/rabbitmq-server"))
            .env("RABBITMQ_NODENAME", &name)
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            // Not the machine's rabbitmq-env.conf: it names the machine's own node.
            .env("RABBITMQ_CONF_ENV_FILE", dir.join("env.conf"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir.join("advanced.config"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start rabbitmq-server (deploy/infra.sh rabbitmq installs it)");
        Node {
            name,
            port,
            dir,
            shell: Some(shell),
        }
    }

    /// Every node's AMQP URL, comma-separated, as `PLACEMENT_AMQP_URL` takes them.
    pub fn urls(&self) -> String {
        (self.nodes.iter())
            .map(|n| format!("amqp://guest:guest@127.0.0.1:{}/%2f", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The node that leads the most of the queues whose names start with `prefix`.
    pub fn leader_of(&self, prefix: &str) -> Option<String> {
        let alive = self.nodes.iter().find(|n| n.shell.is_some())?;
        let listed = ctl(
            &alive.name,
            &["list_queues", "name", "leader", "--formatter", "json", "-q"],
        )
        .ok()?;
        let queues: Vec<serde_json::Value> = serde_json::from_str(&listed).ok()?;
        let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
        for q in queues {
            if q["name"].as_str().is_some_and(|n| n.starts_with(prefix))
                && let Some(leader) = q["leader"].as_str()
            {
                *counts.entry(leader.to_string()).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(node, _)| node)
    }

    /// Cuts node `name` off from the others: it uses a wrong Erlang cookie towards each of them from now
    /// on, so every link between them drops and none can be made again, while the command-line tools (which
    /// come as other nodes, with the right cookie) still reach it. Waits until it has paused (its clients'
    /// connections closed), as a minority under `pause_minority` does.
    pub fn partition(&self, name: &str) {
        let peers = self.peers_of(name);
        ctl(
            name,
            &[
                "eval",
                &format!("[erlang:set_cookie(N, partitioned) || N <- {peers}], [erlang:disconnect_node(N) || N <- {peers}], ok."),
            ],
        )
        .expect("partition");
        self.wait_running(name, false);
    }

    /// Gives node `name` the right cookie again and has it call the others; waits until it serves again.
    pub fn heal(&self, name: &str) {
        let peers = self.peers_of(name);
        ctl(
            name,
            &[
                "eval",
                &format!("C = erlang:get_cookie(), [erlang:set_cookie(N, C) || N <- {peers}], [net_adm:ping(N) || N <- {peers}]."),
            ],
        )
        .expect("heal");
        self.wait_running(name, true);
    }

    /// The other nodes, as an Erlang list.
    fn peers_of(&self, name: &str) -> String {
        let peers: Vec<String> = (self.nodes.iter())
            .filter(|n| n.name != name)
            .map(|n| format!("'{}'", n.name))
            .collect();
        format!("[{}]", peers.join(", "))
    }

    fn wait_running(&self, name: &str, running: bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let want = if running { "true" } else { "false" };
        while ctl(name, &["eval", "rabbit:is_running()."])
            .map(|o| o.trim().to_string())
            .as_deref()
            != Ok(want)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{name} is_running never became {want}"
            );
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }

    /// SIGKILLs node `name`'s Erlang VM: no goodbye to its clients or its peers.
    pub fn kill(&mut self, name: &str) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.name == name)
            .expect("a node of the cluster");
        if let Some(pid) = node.pid() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .stderr(Stdio::null())
                .status();
        }
        if let Some(mut shell) = node.shell.take() {
            let _ = shell.kill();
            let _ = shell.wait();
        }
    }
}

impl Drop for RabbitCluster {
    fn drop(&mut self) {
        let names: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        for name in names {
            self.kill(&name);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
