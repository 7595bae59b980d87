//! The deploy files cannot drift silently: `deploy/docker-compose.yml` is checked against the Compose
//! specification's JSON schema (as docker-compose 1.29.2 ships it; `deploy/infra.sh python` takes it out of
//! the wheel), and a file with a mistake is refused with the mistake's place.

use std::{path::PathBuf, process::Command};

/// The schema beside the tests' Python: `<venv>/share/compose_spec.json`.
fn compose_spec() -> PathBuf {
    let python = placement_e2e::python();
    let venv = python
        .parent()
        .and_then(|bin| bin.parent())
        .expect("the tests' Python is in a virtual environment (deploy/infra.sh python)");
    venv.join("share/compose_spec.json")
}

fn check(file: &std::path::Path) -> (bool, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/check_compose.py");
    let out = Command::new(placement_e2e::python())
        .arg(script)
        .arg(compose_spec())
        .arg(file)
        .output()
        .expect("run check_compose.py");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn docker_compose_follows_the_compose_specification() {
    assert!(compose_spec().exists(), "run deploy/infra.sh python");
    let compose = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/docker-compose.yml");
    let (valid, said) = check(&compose);
    assert!(valid, "{said}");
    assert!(said.contains("valid: "), "{said}");
    // The same file with one key misspelled is refused, naming where.
    let text = std::fs::read_to_string(&compose).expect("compose file");
    let broken = text.replacen(
        "    command: [\"placement-directory\"]",
        "    comand: [\"placement-directory\"]",
        1,
    );
    assert_ne!(broken, text, "the directory's command line is in the file");
    let path = std::env::temp_dir().join(format!("placement-compose-{}.yml", std::process::id()));
    std::fs::write(&path, broken).expect("write");
    let (valid, said) = check(&path);
    let _ = std::fs::remove_file(&path);
    assert!(!valid, "a misspelled key passes: {said}");
    assert!(
        said.contains("services/directory") && said.contains("comand"),
        "{said}"
    );
}
