//! The newcomer's path: the README's lines for trying the exchange by hand, run as written from the
//! project's folder (the services on their documented ports, the `.run` folder, the `placement` database),
//! ending with the README's own `deploy/stop.sh`.

use std::{path::PathBuf, process::Command};

use placement_e2e::service_names;

fn project() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The shell block that follows `<!-- run-by-the-tests -->` in README.md.
fn readme_block() -> String {
    let readme = std::fs::read_to_string(project().join("README.md")).expect("README.md");
    readme
        .split("<!-- run-by-the-tests -->\n```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("README.md shows its lines after <!-- run-by-the-tests -->")
        .to_string()
}

#[test]
fn the_readmes_lines_for_trying_it_by_hand_work_as_written() {
    // The docs' blocks start and stop the same stack on the same ports: one test at a time.
    let _turn = crate::docs_commands::default_ports();
    let block = readme_block();
    assert!(block.starts_with("bash deploy/start.sh") && block.contains("bash deploy/stop.sh"));
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{block}"))
        .current_dir(project())
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        // Whatever the block started is stopped, as its last line would have.
        let _ = Command::new("bash")
            .arg("deploy/stop.sh")
            .current_dir(project())
            .status();
    }
    assert!(
        out.status.success(),
        "the README's lines failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // The scenario placed the twins: the referral's history ends in a placement.
    assert!(stdout.contains("history:"), "{stdout}");
    assert!(stdout.contains("PLACED"), "{stdout}");
    // `status`: every service answered with its database and broker up.
    for name in service_names() {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no status line for {name}:\n{stdout}"));
        assert!(
            line.contains("database ok") && line.contains("broker ok"),
            "{line}"
        );
    }
    // `deploy/stop.sh` stopped every service it started: no pid file is left.
    let left: Vec<_> = std::fs::read_dir(project().join(".run"))
        .expect(".run")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "pid"))
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left running: {left:?}");
    assert!(stderr.contains("stopped"), "{stderr}");
}
