//! The deploy files cannot drift silently: `deploy/docker-compose.yml` is checked against the Compose
//! specification's JSON schema (as docker-compose 1.29.2 ships it; `deploy/infra.sh python` takes it out of
//! the wheel), and a file with a mistake is refused with the mistake's place. So are the Kubernetes
//! overlays, against the Kubernetes API's schemas and the operators' CRDs (custom resources included). The
//! Kubernetes overlays give each process every setting it lists as required (`Required`, beside its
//! `Config`) and only the Secrets it reads.

use std::{
    collections::BTreeMap,
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
};

use placement_messaging::service::{Definition, Service};
use placement_platform::audit::checkpoint::{DIR_VARIABLE, KEY_VARIABLE};
use placement_platform::config::{COMMON_REQUIRED, Required};
use serde_json::Value;

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
/// tests/tools/crds/check.mjs (CloudNativePG's, KEDA's) and by check_crd.py against the RabbitMQ Cluster
/// Operator's CRD, copied into tests/tools/crds/rabbitmq-cluster-operator.
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
    let (operators, unchecked, more) = said(&out, "no_validator");
    errors.extend(more);
    let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools");
    let out = Command::new(placement_e2e::python())
        .arg(tools.join("check_crd.py"))
        .arg(tools.join("crds/rabbitmq-cluster-operator/rabbitmq.com_rabbitmqclusters.yaml"))
        .arg(&custom)
        .output()
        .expect("check_crd.py");
    let _ = std::fs::remove_file(&custom);
    let (rabbitmq, no_crd, more) = said(&out, "no_schema");
    errors.extend(more);
    // Unvalidated: what neither the models nor the CRD know.
    let unchecked = (unchecked.into_iter())
        .filter(|kind| no_crd.contains(kind))
        .collect();
    (core + operators + rabbitmq, unchecked, errors)
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
    for overlay in ["development", "production"] {
        let yaml = render(overlay);
        let objects = yaml.matches("\nkind: ").count() + usize::from(yaml.starts_with("kind: "));
        let (validated, no_schema, errors) = validate(&yaml);
        assert!(errors.is_empty(), "{overlay}: {errors:#?}");
        assert!(no_schema.is_empty(), "{overlay}: unvalidated {no_schema:?}");
        assert_eq!(
            validated as usize, objects,
            "{overlay}: every object validated, the RabbitmqCluster too"
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
        // The RabbitmqCluster against its CRD: a field it does not define, a size that is no quantity.
        let broken = (yaml.replacen("additionalConfig: |", "additionalConfg: |", 1)).replacen(
            "storage: 20Gi",
            "storage: 20 GB",
            1,
        );
        assert_ne!(
            broken, yaml,
            "{overlay}: the RabbitmqCluster's fields are in the file"
        );
        let (_, _, errors) = validate(&broken);
        let rabbitmq: Vec<&String> = (errors.iter())
            .filter(|e| e.starts_with("RabbitmqCluster/placement-rabbitmq: "))
            .collect();
        assert_eq!(rabbitmq.len(), 2, "{overlay}: {errors:#?}");
        assert!(
            rabbitmq[0].contains("spec/persistence/storage: '20 GB' does not match"),
            "{overlay}: {errors:#?}"
        );
        assert!(
            rabbitmq[1].contains("spec/rabbitmq: ")
                && rabbitmq[1].contains("'additionalConfg' was unexpected"),
            "{overlay}: {errors:#?}"
        );
    }
    assert!(render("development").contains("namespace: placement-dev"));
    assert!(render("production").contains("image: registry.example.bg/placement-exchange:0.1.0"));
}

/// Every process of the exchange, with the settings it says a deployment must give it.
fn processes() -> [Definition; 6] {
    [
        placement_directory::Directory::DEFINITION,
        placement_cases::Cases::DEFINITION,
        placement_referrals::Referrals::DEFINITION,
        placement_notifications::Notifications::DEFINITION,
        placement_reports::Reports::DEFINITION,
        placement_web::Web::DEFINITION,
    ]
}

/// The objects of rendered `yaml`, as JSON (read by the tests' Python, whose PyYAML the validator uses).
fn objects(yaml: &str) -> Vec<Value> {
    let mut python = Command::new(placement_e2e::python())
        .args([
            "-c",
            "import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the tests' Python (deploy/infra.sh python)");
    python
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml.as_bytes())
        .expect("YAML to Python");
    let out = python.wait_with_output().expect("Python");
    assert!(out.status.success(), "YAML not read");
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// Where a Deployment's variable comes from.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    Value(String),
    /// A ConfigMap's value (absent when the ConfigMap or key is not rendered).
    ConfigMap(Option<String>),
    /// A Secret's key: (Secret, key).
    Secret(String, String),
}

fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

/// The variables of the first container of Deployment `name`, with where each comes from.
fn environment(objects: &[Value], name: &str) -> BTreeMap<String, Source> {
    let deployment =
        named(objects, "Deployment", name).unwrap_or_else(|| panic!("no Deployment {name}"));
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let mut env = BTreeMap::new();
    for from in container["envFrom"].as_array().into_iter().flatten() {
        let map = from["configMapRef"]["name"].as_str().unwrap_or_default();
        let data = named(objects, "ConfigMap", map).map(|m| &m["data"]);
        for (k, v) in data.and_then(Value::as_object).into_iter().flatten() {
            env.insert(k.clone(), Source::ConfigMap(v.as_str().map(str::to_string)));
        }
    }
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().unwrap_or_default().to_string();
        let secret = &var["valueFrom"]["secretKeyRef"];
        let map = &var["valueFrom"]["configMapKeyRef"];
        let source = if secret.is_object() {
            Source::Secret(
                secret["name"].as_str().unwrap_or_default().into(),
                secret["key"].as_str().unwrap_or_default().into(),
            )
        } else if map.is_object() {
            let data = named(
                objects,
                "ConfigMap",
                map["name"].as_str().unwrap_or_default(),
            );
            Source::ConfigMap(
                data.and_then(|m| m["data"][map["key"].as_str().unwrap_or_default()].as_str())
                    .map(str::to_string),
            )
        } else {
            Source::Value(var["value"].as_str().unwrap_or_default().into())
        };
        env.insert(name, source);
    }
    env
}

/// What is wrong with the rendered `objects` for the processes' settings: a required setting unset or
/// blank; a secret one not from a Secret; a Secret given to a process that does not read it; with
/// `secrets_rendered`, a Secret a process reads that the overlay does not make (CloudNativePG's
/// `placement-db-app` aside).
fn settings_wrong(objects: &[Value], secrets_rendered: bool) -> Vec<String> {
    let mut wrong = Vec::new();
    for definition in processes() {
        let listed = definition.listed;
        let env = environment(objects, listed.name);
        let required: Vec<Required> = COMMON_REQUIRED
            .iter()
            .chain(definition.required)
            .copied()
            .collect();
        for setting in &required {
            let names = setting.names_for(listed);
            let Some((name, source)) = names.iter().find_map(|n| env.get(n).map(|s| (n, s))) else {
                wrong.push(format!("{}: {} not set", listed.name, names.join(" or ")));
                continue;
            };
            match source {
                Source::Secret(..) => {}
                _ if setting.secret => {
                    wrong.push(format!("{}: {name} not from a Secret", listed.name));
                }
                Source::Value(v) | Source::ConfigMap(Some(v)) if !v.trim().is_empty() => {}
                _ => wrong.push(format!("{}: {name} blank", listed.name)),
            }
        }
        for (name, source) in &env {
            let Source::Secret(secret, key) = source else {
                continue;
            };
            let reads = (required.iter()).any(|r| r.secret && r.names_for(listed).contains(name))
                || (definition.keeps_audit_trail() && name == KEY_VARIABLE);
            if !reads {
                wrong.push(format!(
                    "{}: given {name} (Secret {secret}), which it does not read",
                    listed.name
                ));
            }
            let made = named(objects, "Secret", secret)
                .is_some_and(|s| s["data"][key].is_string() || s["stringData"][key].is_string());
            if secrets_rendered && secret != "placement-db-app" && !made {
                wrong.push(format!("{}: Secret {secret} has no {key}", listed.name));
            }
        }
        let deployment = named(objects, "Deployment", listed.name).expect("Deployment");
        let pod = &deployment["spec"]["template"]["spec"];
        for volume in pod["volumes"].as_array().into_iter().flatten() {
            let secret = volume["secret"]["secretName"].as_str();
            let own = format!("placement-tls-{}", listed.name);
            if secret.is_some_and(|s| s != own) {
                wrong.push(format!("{}: mounts Secret {secret:?}", listed.name));
            }
        }
        wrong.extend(checkpoints_wrong(objects, &definition, &env));
    }
    wrong
}

/// What is wrong with the audit trail's checkpoints of a process that keeps a trail: the key not from a
/// Secret, or the directory not a volume of the pod's own (an emptyDir or a claim), which the database's
/// owner cannot write. Optional settings for the process, but a deployment gives them.
fn checkpoints_wrong(
    objects: &[Value],
    definition: &Definition,
    env: &BTreeMap<String, Source>,
) -> Vec<String> {
    let name = definition.listed.name;
    let mut wrong = Vec::new();
    if !definition.keeps_audit_trail() {
        return wrong;
    }
    if !matches!(env.get(KEY_VARIABLE), Some(Source::Secret(..))) {
        wrong.push(format!("{name}: {KEY_VARIABLE} not from a Secret"));
    }
    let pod = &named(objects, "Deployment", name).expect("Deployment")["spec"]["template"]["spec"];
    let own_volume = |dir: &str| {
        let mounts = pod["containers"][0]["volumeMounts"].as_array();
        let mount = mounts
            .into_iter()
            .flatten()
            .find(|m| m["mountPath"] == dir)?;
        let volumes = pod["volumes"].as_array();
        let volume = volumes
            .into_iter()
            .flatten()
            .find(|v| v["name"] == mount["name"])?;
        Some(volume["emptyDir"].is_object() || volume["persistentVolumeClaim"].is_object())
    };
    match env.get(DIR_VARIABLE) {
        Some(Source::Value(dir)) if own_volume(dir) == Some(true) => {}
        _ => wrong.push(format!("{name}: {DIR_VARIABLE} not on a volume of its own")),
    }
    wrong
}

#[test]
fn every_process_is_given_each_setting_it_needs_and_only_the_secrets_it_reads() {
    let keepers: Vec<&str> = (processes().iter())
        .filter(|d| d.keeps_audit_trail())
        .map(|d| d.listed.name)
        .collect();
    assert_eq!(keepers, ["directory", "cases", "referrals"]);
    for overlay in ["development", "production"] {
        let objects = objects(&render(overlay));
        let wrong = settings_wrong(&objects, overlay == "development");
        assert!(wrong.is_empty(), "{overlay}: {wrong:#?}");
        // The site's settings come from the ConfigMap the overlay makes.
        let site = objects
            .iter()
            .find(|o| {
                o["kind"] == "ConfigMap"
                    && o["metadata"]["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("placement-site"))
            })
            .unwrap_or_else(|| panic!("{overlay}: no placement-site ConfigMap"));
        assert!(site["data"]["PLACEMENT_SMTP_FROM"].is_string(), "{overlay}");
    }

    // The check sees what it is for: the web app given the data key and the audit checkpoints' key (it
    // keeps no trail), the notifications service without its SMTP server, the cases service's data key as
    // a plain value, the referrals' checkpoints on the container's own file system.
    let production = objects(&render("production"));
    let mut objects = production.clone();
    env_of(&mut objects, "web").push(serde_json::json!({
        "name": "PLACEMENT_DATA_KEY",
        "valueFrom": {"secretKeyRef": {"name": "placement-data-key", "key": "data-key"}}
    }));
    env_of(&mut objects, "web").push(serde_json::json!({
        "name": KEY_VARIABLE,
        "valueFrom": {"secretKeyRef": {"name": "placement-audit-checkpoint-key", "key": "checkpoint-key"}}
    }));
    env_of(&mut objects, "notifications").retain(|v| v["name"] != "PLACEMENT_SMTP_URL");
    for var in env_of(&mut objects, "referrals") {
        if var["name"] == DIR_VARIABLE {
            *var = serde_json::json!({"name": DIR_VARIABLE, "value": "/tmp/audit"});
        }
    }
    for var in env_of(&mut objects, "cases") {
        if var["name"] == "PLACEMENT_DATA_KEY" {
            *var = serde_json::json!({"name": "PLACEMENT_DATA_KEY", "value": "AAAA"});
        }
    }
    let wrong = settings_wrong(&objects, false);
    for expected in [
        "web: given PLACEMENT_DATA_KEY (Secret placement-data-key), which it does not read",
        "notifications: PLACEMENT_SMTP_URL not set",
        "cases: PLACEMENT_DATA_KEY not from a Secret",
        "web: given PLACEMENT_AUDIT_CHECKPOINT_KEY (Secret placement-audit-checkpoint-key), which it does not read",
        "referrals: PLACEMENT_AUDIT_CHECKPOINT_DIR not on a volume of its own",
    ] {
        assert!(
            wrong.iter().any(|w| w == expected),
            "{expected}: {wrong:#?}"
        );
    }
    assert_eq!(wrong.len(), 5, "{wrong:#?}");
}

/// The `env` list of the first container of Deployment `name`.
fn env_of<'a>(objects: &'a mut [Value], name: &str) -> &'a mut Vec<Value> {
    objects
        .iter_mut()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == name)
        .and_then(|d| d["spec"]["template"]["spec"]["containers"][0]["env"].as_array_mut())
        .unwrap_or_else(|| panic!("no env of Deployment {name}"))
}
