"""The local engine's extension runs only on the duckdb-kql it was written against.

Each feature (mv-apply, the IP ranges) checks at start-up that duckdb-kql is the pinned release
and that every function it wraps or reads is byte for byte the one it was written against
(engine/seams.py). Where that fails the feature stays off, the engine is duckdb-kql as released,
and the queries that need the feature are reported "not replayed", naming the construct, its
line and why: never run by code written for another version, never passed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from entra_sigma.verbs.ruletests.engine import install, seams
from entra_sigma.verbs.ruletests.replay import NotReplayed, construct_name, line_of

from .helpers import CASES

THIRD_PARTY = CASES / "third-party"


def test_the_pinned_duckdb_kql_is_installed_and_every_seam_matches():
    """So `make test` runs with the extension on; see the fallback below for when it is not."""
    status = install()
    assert {feature: result.problem for feature, result in status.items()} == {"mv-apply": None, "ip-ranges": None}
    assert seams.installed_version() == seams.PINNED_VERSION
    assert f'"duckdb-kql[duckdb]=={seams.PINNED_VERSION}"' in (Path(__file__).parents[1] / "pyproject.toml").read_text()


def test_another_release_turns_the_features_off(monkeypatch):
    monkeypatch.setattr(seams, "installed_version", lambda: "1.2.0")
    problem = seams.check("mv-apply").problem
    assert problem == "duckdb-kql 1.2.0 is installed; the mv-apply extension was written for 1.1.2"


def test_a_changed_seam_turns_its_feature_off():
    expected = dict(seams.SEAMS["ip-ranges"])
    expected["duckdb_kql.translate:_render_parse_ipv4"] = "0" * 64
    result = seams.check("ip-ranges", expected)
    assert result.problem == "the installed duckdb-kql 1.1.2 differs from the release the ip-ranges extension was written against"
    assert result.seam == "duckdb_kql.translate:_render_parse_ipv4"
    assert seams.digest("duckdb_kql.translate:no_such_function") is None


# A process in which both features find a seam changed, as after an unchecked upgrade.
FALLBACK = """
import sys
from entra_sigma.verbs.ruletests.engine import seams
for feature in seams.SEAMS:
    seams.SEAMS[feature][next(iter(seams.SEAMS[feature]))] = "0" * 64
from entra_sigma.cli import main
sys.argv = ["entra-sigma", *sys.argv[1:]]
main()
"""
OFF = "not run here: the local engine's extension for it is off, because the installed duckdb-kql 1.1.2 differs from the release the {} extension was written against"


def _fallback(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", FALLBACK, *args], capture_output=True, text=True, cwd=CASES.parent.parent)


@pytest.mark.slow
@pytest.mark.replay
def test_with_the_features_off_every_case_is_not_replayed_and_strict_fails():
    rules = ["tests/cases/third-party", "rules/tokens/remote-desktop-token-external-network.yml"]
    plain, strict = _fallback("test", *rules), _fallback("test", "--strict", *rules)
    assert "Traceback" not in plain.stderr + strict.stderr
    assert (plain.returncode, strict.returncode) == (0, 1)
    assert plain.stdout == strict.stdout
    lines = plain.stdout.splitlines()
    assert [line for line in lines if line.startswith(("PASS", "FAIL"))] == []
    assert "29 case(s) in 4 rule file(s): 0 passed, 0 failed, 29 not replayed" in lines[-1]
    reasons = {line for line in lines if line.startswith("    ")}
    assert reasons == {
        # the first construct the engine stops at in each query, at its line in the shipped KQL
        f"    sentinel: line 7: mv-apply: {OFF.format('mv-apply')}",
        f"    sentinel: line 6: mv-apply: {OFF.format('mv-apply')}",
        f"    sentinel: line 8: mv-apply: {OFF.format('mv-apply')}",
        f"    sentinel: line 9: ipv4_is_in_range(): {OFF.format('ip-ranges')}",
    }


def test_a_refusal_names_the_construct_as_kql_spells_it_and_its_line():
    query = "SigninLogs\n| where UserPrincipalName != ''\n| mv-apply x = todynamic(AuthenticationDetails) on (take 1)\n"
    assert construct_name("MvapplyOperator") == "mv-apply"
    assert construct_name("function:ipv4_is_in_range") == "ipv4_is_in_range()"
    assert construct_name("MakeSeriesOperator") == "make-series"
    assert construct_name("operator:==") == "=="
    assert line_of("mv-apply", query) == 3
    assert line_of("ipv4_is_in_range()", "T\n| where not(coalesce(IPV4_IS_IN_RANGE(a, '10.0.0.0/8'), false))") == 2
    assert line_of("ipv6_is_in_range()", "T | where x") is None
    result = NotReplayed("mv-apply", 3, "why")
    assert str(result) == "line 3: mv-apply: why" and not result.failed
