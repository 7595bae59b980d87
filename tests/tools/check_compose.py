"""Checks a Compose file against the Compose specification's JSON schema (the one docker-compose 1.29.2
ships, taken out of its wheel by deploy/infra.sh python): prints every error with its path and exits 1
when there is one. Usage: check_compose.py SCHEMA FILE"""

import json
import sys

import jsonschema
import yaml


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    with open(sys.argv[2], encoding="utf-8") as f:
        document = yaml.safe_load(f)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    for e in errors:
        path = "/".join(str(p) for p in e.absolute_path) or "(top)"
        print(f"{path}: {e.message}")
    if not errors:
        services = len(document.get("services", {}))
        print(f"valid: {services} services")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
