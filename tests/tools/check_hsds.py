"""Validates pages of an HSDS export against Open Referral's HSDS 3.0 JSON schemas (tests/tools/hsds-3.0,
copied from the specification), with jsonschema and its `referencing` registry resolving the schemas'
references (`"$ref": "phone.json"`) over the copied files alone: each page against the API's `Page`
(openapi.json) with every item of `contents` a `service` (service.json), formats checked.

Prints one JSON line: the pages and services validated, the extensions (fields the HSDS 3.0 objects do
not define, which HSDS allows; by their path without list indexes) and every error, as
`page N: PATH: MESSAGE`. Exits 1 on an error.

    check_hsds.py SCHEMA_DIR PAGE_FILE...
"""

import json
import pathlib
import sys

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

# Where the HSDS API description says the schemas are: openapi.json refers to them by this address, and the
# schemas to each other relative to it. Registered here, nothing is fetched.
BASE = "https://raw.githubusercontent.com/openreferral/specification/3.0/schema/"

PAGE = {
    "$ref": "openapi.json#/components/schemas/Page",
    "type": "object",
    "required": ["contents"],
    "properties": {"contents": {"type": "array", "items": {"$ref": "service.json"}}},
}


def closed(schema):
    """The schema with every object closed to the properties it defines, to find the extensions."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) for k, v in schema.items()}
    if "properties" in schema and "additionalProperties" not in schema:
        out["additionalProperties"] = False
    return out


def registry(folder, close):
    resources = []
    for path in sorted(pathlib.Path(folder).glob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        if close and path.name != "openapi.json":
            contents = closed(contents)
        resource = Resource.from_contents(contents, default_specification=DRAFT202012)
        resources.append((BASE + path.name, resource))
    return Registry().with_resources(resources)


def validator(folder, close):
    schema = dict(PAGE, **{"$id": BASE + "page.json"})
    return jsonschema.Draft202012Validator(
        schema,
        registry=registry(folder, close),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def main():
    folder, files = sys.argv[1], sys.argv[2:]
    strict, open_ = validator(folder, True), validator(folder, False)
    pages, services, extensions, errors = 0, 0, set(), []
    for number, name in enumerate(files, start=1):
        with open(name, encoding="utf-8") as f:
            page = json.load(f)
        pages += 1
        services += len(page.get("contents") or [])
        for e in sorted(open_.iter_errors(page), key=lambda e: [str(p) for p in e.absolute_path]):
            path = "/".join(str(p) for p in e.absolute_path) or "(top)"
            errors.append(f"page {number}: {path}: {e.message}")
        for e in strict.iter_errors(page):
            if e.validator == "additionalProperties":
                where = [str(p) for p in e.absolute_path if not isinstance(p, int)][1:]
                defined = e.schema.get("properties", {})
                for field in e.instance:
                    if field not in defined:
                        extensions.add("/".join(where + [field]))
    print(json.dumps({"pages": pages, "services": services, "extensions": sorted(extensions), "errors": errors}))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
