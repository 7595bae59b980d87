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

/// `deploy/k8s/overlays/<overlay>` rendered by kubectl's kustomize.
fn render(overlay: &str) -> String {
    let kubectl = std::env::var("PLACEMENT_TEST_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../deploy/k8s/overlays/{overlay}"));
    let out = Command::new(&kubectl)
        .arg("kustomize")
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| panic!("{kubectl} kustomize (deploy/infra.sh kubectl): {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("YAML")
}

/// What the checkers say of `yaml`: (objects validated, kinds no validator knows, errors). Objects of the
/// Kubernetes API are checked by check_k8s.py; the custom resources it has no schema for, by
/// tests/tools/crds/check.mjs.
fn validate(yaml: &str) -> (u64, Vec<String>, Vec<String>) {
    let tag = format!("{}-{}", std::process::id(), yaml.len());
    let path = std::env::temp_dir().join(format!("placement-k8s-{tag}.yaml"));
    let custom = std::env::temp_dir().join(format!("placement-k8s-{tag}.json"));
    std::fs::write(&path, yaml).expect("write");
    let out = Command::new(placement_e2e::python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/check_k8s.py"))
        .arg(KUBERNETES)
        .arg(&path)
        .arg(&custom)
        .output()
        .expect("check_k8s.py");
    let _ = std::fs::remove_file(&path);
    let (core, _, mut errors) = said(&out, "no_schema");
    let crds = std::env::var("PLACEMENT_TEST_CRDS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/crds"));
    let out = Command::new("node")
        .arg(crds.join("check.mjs"))
        .arg(&custom)
        .current_dir(&crds)
        .output()
        .expect("node tests/tools/crds/check.mjs (deploy/infra.sh crds)");
    let _ = std::fs::remove_file(&custom);
    let (operators, unchecked, more) = said(&out, "no_validator");
    errors.extend(more);
    (core + operators, unchecked, errors)
}

/// (validated, the list under `unknown`, errors) of a checker's JSON line.
fn said(out: &std::process::Output, unknown: &str) -> (u64, Vec<String>, Vec<String>) {
    let said: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let list = |key: &str| -> Vec<String> {
        (said[key].as_array().into_iter().flatten())
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect()
    };
    (
        said["validated"].as_u64().unwrap_or(0),
        list(unknown),
        list("errors"),
    )
}

/// The Kubernetes version the objects are validated against.
const KUBERNETES: &str = "1.30.0";

#[test]
fn kubernetes_overlays_render_and_validate_against_the_kubernetes_schemas() {
    // The one custom resource no validator here knows: the RabbitMQ Cluster Operator's (CloudNativePG's
    // and KEDA's are validated with the models generated from their CRDs).
    let custom = ["rabbitmq.com/v1beta1/RabbitmqCluster"];
    for overlay in ["development", "production"] {
        let yaml = render(overlay);
        let objects = yaml.matches("\nkind: ").count() + usize::from(yaml.starts_with("kind: "));
        let (validated, no_schema, errors) = validate(&yaml);
        assert!(errors.is_empty(), "{overlay}: {errors:#?}");
        assert_eq!(
            no_schema, custom,
            "{overlay}: only the RabbitmqCluster goes unvalidated"
        );
        assert_eq!(
            validated as usize + custom.len(),
            objects,
            "{overlay}: every other object validated"
        );
        // Each of the six binaries: a Deployment, a Service, a PodDisruptionBudget, a NetworkPolicy.
        for kind in [
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "NetworkPolicy",
        ] {
            assert_eq!(
                yaml.matches(&format!("\nkind: {kind}\n")).count(),
                6,
                "{overlay}: {kind}"
            );
        }
        // A field misspelled is an error, naming the object.
        let broken = yaml.replacen("readinessProbe:", "readynessProbe:", 1);
        let (_, _, errors) = validate(&broken);
        assert!(
            errors.iter().any(|e| e.starts_with("Deployment/")),
            "{overlay}: {errors:?}"
        );
        // So is a custom resource's value its CRD does not allow.
        let broken = yaml.replacen(
            "primaryUpdateStrategy: unsupervised",
            "primaryUpdateStrategy: sometimes",
            1,
        );
        let (_, _, errors) = validate(&broken);
        assert!(
            errors.iter().any(|e| e.starts_with("Cluster/placement-db")),
            "{overlay}: {errors:?}"
        );
    }
    assert!(render("development").contains("namespace: placement-dev"));
    assert!(render("production").contains("image: registry.example.bg/placement-exchange:0.1.0"));
}
