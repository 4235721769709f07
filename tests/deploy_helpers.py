"""Shared pieces of the deploy tests: a started fake service, and the CLI run against it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from entra_sigma.cli import app
from typer.testing import CliRunner

from tests.fake_azure import FakeAzure

CASES = Path(__file__).parent / "cases" / "deploy"
RULES = CASES / "rules"
REPO_RULES = Path(__file__).parent.parent / "rules"
# the bundled rules hold placeholders: deploy them in the example environment of this repository's entra-sigma.toml
PACK_ENV = ["--config", Path(__file__).parent.parent / "entra-sigma.toml", "--env", "prod"]
SUBSCRIPTION = "00000000-0000-4000-8000-000000000001"
RESOURCE_GROUP = "rg-sentinel"
WORKSPACE = "law-sentinel"
SCOPE = ["--subscription", SUBSCRIPTION, "--resource-group", RESOURCE_GROUP, "--workspace", WORKSPACE]
FAST = ["--max-wait", "0.02", "--timeout", "2", "--retries", "3"]  # tests never wait long between tries
WRONG_PASSWORD = "3f6c2a1e-7b4d-4c9e-9a2f-1d8e5b7c6a10"
ACCOUNT_LOCKED = "6d1f0b7a-2c3e-4f58-9a61-7b8c9d0e1f23"
ROPC = "9a4e2b1c-7d3f-4e6a-b5c8-0f1e2d3c4b5a"
DISABLED = "2c7b9e4d-1a3f-4b6c-8d5e-9f0a1b2c3d4e"


@pytest.fixture
def fake(monkeypatch):
    service = FakeAzure(page_size=2).start()  # small pages: every list follows its next links
    monkeypatch.setenv("ENTRA_SIGMA_ARM_TOKEN", service.tokens["arm"])
    monkeypatch.setenv("ENTRA_SIGMA_GRAPH_TOKEN", service.tokens["graph"])
    monkeypatch.setenv("ENTRA_SIGMA_LOGS_TOKEN", service.tokens["logs"])
    for name in ("ENTRA_SIGMA_ARM_ENDPOINT", "ENTRA_SIGMA_GRAPH_ENDPOINT", "ENTRA_SIGMA_LOGS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    yield service
    service.stop()
    assert service.contract_errors == [], "a request broke the published contract"


@pytest.fixture
def rules(tmp_path) -> Path:
    """A copy of the deploy test rules that a test may change."""
    folder = tmp_path / "rules"
    shutil.copytree(RULES, folder)
    return folder


def run(args: list[str]):
    return CliRunner().invoke(app, [str(a) for a in args])


def sentinel(fake: FakeAzure, rules: Path, *extra: str, debug: bool = False):
    prefix = ["--debug"] if debug else []
    return run([*prefix, "deploy", "sentinel", rules, *SCOPE, "--arm-endpoint", fake.url, *FAST, *extra])


def defender(fake: FakeAzure, rules: Path, *extra: str, debug: bool = False):
    prefix = ["--debug"] if debug else []
    return run([*prefix, "deploy", "defender", rules, "--graph-endpoint", fake.url, *FAST, *extra])


def workspace_rules(fake: FakeAzure) -> dict[str, dict]:
    return fake.workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
