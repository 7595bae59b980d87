"""Validates custom resources (a JSON array, from check_k8s.py) against a CustomResourceDefinition's
`openAPIV3Schema` with jsonschema: the objects of the CRD's group and kind, each against the schema of its
version. As `kubectl apply` does (server-side field validation, Strict), a field the schema does not define
is an error, except under `x-kubernetes-preserve-unknown-fields`. Other x-kubernetes-* keys are not
jsonschema's and are ignored (so are the CEL rules of x-kubernetes-validations).

Prints one JSON line: the objects validated, the kinds it has no schema for, and every error. Exits 1 on
an error.

    check_crd.py CRD_YAML FILE
"""

import json
import sys

import jsonschema
import yaml


def strict(schema):
    """The schema with every object closed to the fields it defines."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def schemas(crd):
    """The validator of each `group/version`, for the CRD's kind."""
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    return kind, {
        f"{group}/{v['name']}": jsonschema.Draft4Validator(
            strict(v["schema"]["openAPIV3Schema"]),
            format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER,
        )
        for v in crd["spec"]["versions"]
        if v.get("served", True)
    }


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        kind, validators = schemas(yaml.safe_load(f))
    with open(sys.argv[2], encoding="utf-8") as f:
        objects = json.load(f)
    validated, unknown, errors = 0, set(), []
    for doc in objects:
        validator = validators.get(doc.get("apiVersion")) if doc.get("kind") == kind else None
        if validator is None:
            unknown.add(f"{doc.get('apiVersion')}/{doc.get('kind')}")
            continue
        what = f"{kind}/{doc.get('metadata', {}).get('name')}"
        found = sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
        for e in found:
            path = "/".join(str(p) for p in e.absolute_path)
            errors.append(f"{what}: {path}: {e.message}")
        validated += 0 if found else 1
    print(json.dumps({"validated": validated, "no_schema": sorted(unknown), "errors": errors}))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
