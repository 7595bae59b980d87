"""Validates rendered Kubernetes objects against the API schemas of one Kubernetes version (PyPI's
kubernetes-validate, which carries the published OpenAPI schemas): every object of a kind the version
knows is validated strictly (unknown fields are errors). Prints one JSON line: the objects validated, the
kinds it has no schema for (custom resources), and every error. Exits 1 on an error.

    check_k8s.py VERSION FILE [CUSTOM]

With CUSTOM, the objects it has no schema for are written there as a JSON array, for another validator.
"""

import json
import sys

import kubernetes_validate
import yaml


def main():
    version, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        documents = [d for d in yaml.safe_load_all(f) if d]
    validated, unknown, errors, custom = 0, set(), [], []
    for doc in documents:
        what = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
            validated += 1
        except kubernetes_validate.SchemaNotFoundError:
            unknown.add(f"{doc.get('apiVersion')}/{doc.get('kind')}")
            custom.append(doc)
        except kubernetes_validate.ValidationError as e:
            path = "/".join(str(p) for p in e.path)
            errors.append(f"{what}: {path}: {e.message}")
        except kubernetes_validate.InvalidSchemaError as e:
            errors.append(f"{what}: {e}")
    if len(sys.argv) > 3:
        with open(sys.argv[3], "w", encoding="utf-8") as f:
            json.dump(custom, f)
    print(json.dumps({"validated": validated, "no_schema": sorted(unknown), "errors": errors}))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
