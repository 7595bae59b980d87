//! A real SMTP server for a test: `tests/tools/smtp_sink.py` (aiosmtpd) as a child process, writing every
//! message it receives as a JSON line, which [`SmtpSink::messages`] reads back.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde::Deserialize;

/// One message as the SMTP server received and Python's e-mail library decoded it.
#[derive(Debug, Clone, Deserialize)]
pub struct Mail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub content_type: String,
    pub charset: Option<String>,
    pub text: String,
}

pub struct SmtpSink {
    pub port: u16,
    file: PathBuf,
    child: Child,
}

impl SmtpSink {
    pub fn start() -> Self {
        let port = crate::free_port();
        let file = std::env::temp_dir().join(format!(
            "placement-smtp-{}-{port}.jsonl",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&file);
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/smtp_sink.py");
        let mut child = Command::new(crate::python())
            .arg(script)
            .arg(port.to_string())
            .arg(&file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the SMTP sink (a Python with aiosmtpd: `bash deploy/infra.sh python` makes one)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the SMTP sink starts");
        assert_eq!(line.trim(), "ready", "SMTP sink did not start: {line}");
        Self { port, file, child }
    }

    /// `PLACEMENT_SMTP_URL` for the services.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn messages(&self) -> Vec<Mail> {
        std::fs::read_to_string(&self.file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line from the sink"))
            .collect()
    }

    /// Waits until `done` holds for the messages received, or `timeout` passes; returns them.
    pub async fn wait_for(&self, timeout: Duration, done: impl Fn(&[Mail]) -> bool) -> Vec<Mail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if done(&messages) || tokio::time::Instant::now() > deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        // Closing its standard input stops it; kill in case it does not.
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.file);
    }
}
