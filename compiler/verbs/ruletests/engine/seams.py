"""The parts of duckdb-kql the extension reaches into, and what each must be for it to run.

duckdb-kql has no plug-in interface, so the extension wraps or reads a handful of its private
functions. Private code can change in any release without notice; so each feature names the
functions it touches, with a SHA-256 of each one's source as released in the pinned version,
and turns itself on only when every one still matches. A feature left off leaves the engine as
it was: what it would have run is refused, and the case is reported "not replayed", never
answered by code the extension was not written against.

After upgrading duckdb-kql (pyproject.toml), re-read each seam, adjust the extension, and print
the new digests with `python -m entra_sigma.verbs.ruletests.engine`.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

PINNED_VERSION = "1.1.2"

# feature -> {"module:attribute": SHA-256 of its source}
SEAMS: dict[str, dict[str, str]] = {
    "mv-apply": {
        # lowering: the operator dispatch we put in front of, and the helpers mv-expand uses
        "duckdb_kql.lower:_lower_operator": "b8d757c63c8e322f6424029a636c52dba0665b9584616ed29776bf3309da3c2c",
        "duckdb_kql.lower:_lower_operators": "af4f4b3f7efaaefc24b50eda987219fbe738b3b1f17d21cff07003b7cdb51e58",
        "duckdb_kql.lower:_lower_mv_expand_target": "75901a08141818be9f7ed289b1e9c3c565896a4804c7264bc5ffe67eb00ada1e",
        "duckdb_kql.lower:_substitute_operator": "a5b6f223488905492bcf49720b65fdb38971b671e4a9f2585e80d1fc5683e601",
        "duckdb_kql.lower:_substitute": "0d3de74824712e80723f921d7d1d9f5cfd3ee6cc666b4ff7e8eb1570662100ca",
        "duckdb_kql.lower:_substitute_query": "7cbd2267cee61cd43b1167a5ba4af2083b5170ed9c9e87b9fbdf0d88c63d0fd8",
        "duckdb_kql.lower:_unsupported": "e9f0b99218192aac982a9070d2e3fc2e69e5494927696782fbc257f6ff44265b",
        "duckdb_kql.lower:_collapse": "0a979e1e05f238f3082f35ce9c12fba196b532cd15e8042d5887722771ea9191",
        # rendering: the pipeline loop that calls render_operator and _operator_columns by name
        "duckdb_kql.translate:_render_scoped": "9e6015df92f05c639520604ae4e08d9cbd7be2b51f8dddb134300040ce4f0dc5",
        "duckdb_kql.translate:_render_query": "9f159254f7ac9a89eb03064eaa0c0fda8f6a9286d22bb3f27106a64a04f80c2d",
        "duckdb_kql.translate:render_operator": "3c0742afba309c0456ea6790ffd58bc4fa7d695a25e357173529257f032a96a4",
        "duckdb_kql.translate:render_source": "c6495cef844cb5e03e2eff172c7e5148ea118b54df66a43fcc9bd298ea351b1b",
        "duckdb_kql.translate:render_mv_expand": "97b5f2f10e5916d35d0602692944cb4edf1ccc9a4d78b834cd4d97cbc92c38e4",
        "duckdb_kql.translate:to_sql": "d519747432d04e7a1ac1b0d48761876b72c17efdb8a285b09a99627128099d40",
        # output columns
        "duckdb_kql.schema:_operator_columns": "6037aa0e539046413ce4de46c02166b1afce5ad594158a91a5d23427b46a6160",
        "duckdb_kql.schema:_operator_columns_unchecked": "a8e486043b97f6177aad1f74e52faf03df61a9ea7e825aaa26c307226a6072f9",
        "duckdb_kql.schema:mv_expand_output_columns": "fc515126d69cb5534c82fa128703faa49d107c54078df39c097a590e5fb1f2bf",
        "duckdb_kql.schema:output_columns": "a5d3fe4148a3863a742ff946afebc232aa773e551e9fa0d90402bedcc1a22c5d",
    },
    "ip-ranges": {
        # a function call looks up its special form by lower-cased name before the registry;
        # parse_ipv4/parse_ipv6 hold the rules ip_ranges.py writes as plain expressions, with
        # parse_ipv4's patterns
        "duckdb_kql.translate:render_expr": "c38f1e9467427f7c37dda98f4c628ec83d28be9ba5af052977f3af2d7c7d4b3c",
        "duckdb_kql.translate:_render_parse_ipv4": "621ba63277cd9ae69ab8a016197399fc0b51e5ca45cd17fc1e60c9b1f6df95a3",
        "duckdb_kql.translate:_render_parse_ipv6": "764d2b196e2e1b48805eccc8212209cfa853882cfe01e406db9100676583493e",
        "duckdb_kql.translate:_render_coalesce": "8b42d29084811e0899f4c6a0ae7c3df3c14eadc3ca0689b19b6a6b8abb57cacb",
        "duckdb_kql.translate:_IPV4_OCTET": "e312f2fbf896b8638462696e4d059f370fec08e87d61f5bf4b6de4e2f2e67c3a",
        "duckdb_kql.translate:_IPV4_PREFIX": "022231029ea5646cba7b2c77b6e27d8151f8b139e72f5cb09dd11b21eb93181b",
    },
}


@dataclass(frozen=True)
class SeamCheck:
    """Whether one feature may be turned on, and if not, why: `problem` in words for the test
    report, `seam` naming the first part of duckdb-kql that differs (for the maintainer)."""

    feature: str
    problem: str | None  # None: every seam is as expected
    seam: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def installed_version() -> str | None:
    try:
        return version("duckdb-kql")
    except PackageNotFoundError:
        return None


def resolve(seam: str):
    """The object a seam names ("package.module:attribute")."""
    module_name, _, attribute = seam.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def digest(seam: str) -> str | None:
    """SHA-256 of the seam's source text (of its value's repr, for a constant), or None when it
    is missing or has no source."""
    try:
        found = resolve(seam)
        source = repr(found) if isinstance(found, (str, int, tuple)) else inspect.getsource(found)
    except (ImportError, AttributeError, OSError, TypeError):
        return None
    return hashlib.sha256(source.replace("\r\n", "\n").encode("utf-8")).hexdigest()


def check(feature: str, expected: dict[str, str] | None = None) -> SeamCheck:
    """Compare the installed duckdb-kql with what `feature` was written against."""
    found = installed_version()
    if found != PINNED_VERSION:
        return SeamCheck(feature, f"duckdb-kql {found or '(missing)'} is installed; the {feature} extension "
                                  f"was written for {PINNED_VERSION}")
    for seam, wanted in (SEAMS[feature] if expected is None else expected).items():
        if digest(seam) != wanted:
            return SeamCheck(feature, f"the installed duckdb-kql {found} differs from the release the {feature} "
                                      f"extension was written against", seam)
    return SeamCheck(feature, None)


def main() -> None:
    """Say which features would be on, and why not; then print the current digests, laid out as
    SEAMS is, for a maintainer bumping the pin."""
    for feature in SEAMS:
        result = check(feature)
        print(f"# {feature}: " + ("on" if result.ok else f"off: {result.problem}"
                                  + (f" ({result.seam.replace(':', '.')} differs)" if result.seam else "")))
    print(f"# duckdb-kql {installed_version()}")
    for feature, seams in SEAMS.items():
        print(f"    {feature!r}: {{")
        for seam in seams:
            print(f"        {seam!r}: {digest(seam)!r},")
        print("    },")


