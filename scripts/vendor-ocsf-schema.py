#!/usr/bin/env python3
"""Vendors the OCSF Detection Finding schema that tests/it/ocsf.rs validates `--output ocsf` against.

The fixture is the published OCSF schema, compiled from the ocsf/ocsf-schema repository at the
release tag by the OCSF project's own compiler (PyPI `ocsf-lib`), cut down to the Detection
Finding class, every object it can reach, and the data types; descriptions are dropped, every
other key (types, requirements, enums, arrays, constraints) is kept as published.

    git clone https://github.com/ocsf/ocsf-schema && git -C ocsf-schema checkout v1.7.0
    pip install ocsf-lib
    python3 -m ocsf.compile ocsf-schema > schema.json
    python3 scripts/vendor-ocsf-schema.py schema.json > tests/data/ocsf/detection_finding-1.7.0.json
"""
import json
import sys

KEEP_ATTRIBUTE = ("type", "requirement", "is_array", "enum", "object_type", "profile", "@deprecated")


def attributes(attrs):
    out = {}
    for name, attr in sorted(attrs.items()):
        kept = {k: attr[k] for k in KEEP_ATTRIBUTE if attr.get(k) is not None}
        if "enum" in kept:
            kept["enum"] = {k: {"caption": v["caption"]} for k, v in kept["enum"].items()}
        out[name] = kept
    return out


def main():
    schema = json.load(open(sys.argv[1]))
    cls = schema["classes"]["detection_finding"]
    objects, todo = {}, [a["type"] for a in cls["attributes"].values()]
    while todo:
        name = todo.pop()
        if name in objects or name not in schema["objects"]:
            continue
        obj = schema["objects"][name]
        objects[name] = {
            "constraints": obj.get("constraints") or {},
            "attributes": attributes(obj["attributes"]),
        }
        todo.extend(a["type"] for a in obj["attributes"].values())
    types = {
        name: {k: t[k] for k in ("type", "regex", "max_len", "range", "values") if t.get(k) is not None}
        for name, t in sorted(schema["types"].items())
    }
    out = {
        "version": schema["version"],
        "class": {
            "name": cls["name"],
            "uid": cls["uid"],
            "category": cls["category"],
            "category_uid": schema["categories"][cls["category"]]["uid"],
            "constraints": cls.get("constraints") or {},
            "attributes": attributes(cls["attributes"]),
        },
        "objects": dict(sorted(objects.items())),
        "types": types,
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
