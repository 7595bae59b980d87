//! An OTLP trace receiver for a test or the benchmark: `tests/tools/otlp_receiver.py` (the official
//! protocol definitions, PyPI's opentelemetry-proto, served with grpcio) as a child process, writing every
//! span it receives as a JSON line, which [`OtlpReceiver::spans`] reads back.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use serde::Deserialize;

/// One span as the receiver decoded it.
#[derive(Debug, Clone, Deserialize)]
pub struct Span {
    pub service: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    pub attributes: BTreeMap<String, serde_json::Value>,
}

pub struct OtlpReceiver {
    pub port: u16,
    file: PathBuf,
    child: Child,
}

impl OtlpReceiver {
    pub fn start() -> Self {
        let port = crate::free_port();
        let file = std::env::temp_dir().join(format!(
            "placement-otlp-{}-{port}.jsonl",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&file);
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/otlp_receiver.py");
        let mut child = Command::new(crate::python())
            .arg(script)
            .arg(port.to_string())
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the OTLP receiver (`bash deploy/infra.sh python` makes its Python)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the OTLP receiver starts");
        assert!(
            line.starts_with("listening"),
            "OTLP receiver did not start: {line}"
        );
        Self { port, file, child }
    }

    /// `OTEL_EXPORTER_OTLP_ENDPOINT` for the services.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn spans(&self) -> Vec<Span> {
        std::fs::read_to_string(&self.file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a span as a JSON line"))
            .collect()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.file);
    }
}
