"""The bundled rule pack's example environment, for maintainers' tools run in a checkout.

The pack's rules hold placeholders (`%corporate_egress%`, …); this repository's own
entra-sigma.toml, the file `init --with-pack` writes, gives them example values. Tools that
compile the whole pack (the output digest, the real-row replay, the benchmarks) compile it in
one of its environments.
"""

from __future__ import annotations

from ..paths import PROJECT_ROOT
from ..project.environment import Environment, build_environment
from ..project.file import PROJECT_FILE, read_project

PACK_ENVIRONMENT = "prod"  # Sentinel and Defender: every output format


def pack_environment(name: str = PACK_ENVIRONMENT) -> Environment:
    project, problems = read_project(PROJECT_ROOT / PROJECT_FILE)
    if project is None:
        raise SystemExit("; ".join(str(p) for p in problems))
    environment, problems = build_environment(project, name)
    if problems:
        raise SystemExit("; ".join(str(p) for p in problems))
    return environment
