"""A fingerprint of everything the compiler writes, to prove a refactoring changed none of it.

    python -m compiler.dev.outputs_digest --out before.json     # before the change
    python -m compiler.dev.outputs_digest --compare before.json # after it: exit 1 on any difference

Two corpora are built with `build_outputs` (what `entra-sigma build` runs): the bundled rule
pack, and the fuzzer's 200 rules of the test suite's seed. Every output file, the manifest and
every diagnostic's text are hashed (SHA-256), keyed by corpus and path. The same code gives
the same JSON on any machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

FUZZ_RULES, FUZZ_SEED = 200, 20261127  # tests/test_fuzz.py


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _digest(corpus: str, outputs) -> dict[str, str]:
    entries = {f"{corpus}/{path}": _sha(text) for path, text in outputs.files.items()}
    entries[f"{corpus}/manifest.json"] = _sha(json.dumps(outputs.manifest, sort_keys=True, ensure_ascii=False))
    entries[f"{corpus}/diagnostics"] = _sha("\n".join(sorted(str(d) for d in outputs.diagnostics)))
    return entries


def digests(rules: Path) -> dict[str, str]:
    from ..build import Compiler, build_outputs
    from ..map.tables import bundled_registry
    from ..validate.catalog import default_catalog
    from .fuzz import FuzzReport, write_batch
    from .fuzz_rules import RuleGenerator
    from .pack import pack_environment

    result = _digest("rules", build_outputs(Compiler(environment=pack_environment()), [rules]))
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "fuzz"
        folder.mkdir()
        write_batch(RuleGenerator(default_catalog(), bundled_registry(), FUZZ_SEED), 0, FUZZ_RULES, folder, FuzzReport(FUZZ_SEED))
        result.update(_digest("fuzz", build_outputs(Compiler(), [folder])))
    return dict(sorted(result.items()))


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(prog="python -m compiler.dev.outputs_digest", description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=Path, default=repo / "rules")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", type=Path, help="write the digests here")
    group.add_argument("--compare", type=Path, help="compare with digests written before; exit 1 on a difference")
    args = parser.parse_args(argv)
    current = digests(args.rules)
    if args.out:
        args.out.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"{len(current)} outputs digested into {args.out}")
        return 0
    before = json.loads(args.compare.read_text(encoding="utf-8"))
    changed = sorted(k for k in before.keys() & current.keys() if before[k] != current[k])
    gone, new = sorted(before.keys() - current.keys()), sorted(current.keys() - before.keys())
    for label, keys in (("changed", changed), ("no longer written", gone), ("new", new)):
        for key in keys:
            print(f"{label}: {key}")
    print(f"{len(current)} outputs: {len(changed)} changed, {len(gone)} gone, {len(new)} new")
    return 1 if changed or gone or new else 0


if __name__ == "__main__":
    sys.exit(main())
