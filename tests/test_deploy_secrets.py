"""Tokens never appear in output, logs (also under --debug), error messages or files; tokens never travel in the clear."""

from __future__ import annotations

import logging

import pytest
from entra_sigma.verbs.deploy.credentials import RegisteringCredential, StaticTokenCredential, credential_for, jwt_expiry
from entra_sigma.verbs.deploy.endpoints import EndpointError, resolve
from entra_sigma.verbs.deploy.redaction import REDACTED, RedactingFilter, Secrets

from tests.deploy_helpers import (  # noqa: F401 - fixtures
    RULES,
    defender,
    fake,
    run,
    sentinel,
)


def assert_no_token(fake, *texts: str) -> None:
    for text in texts:
        for token in fake.tokens.values():
            assert token not in text


@pytest.mark.parametrize("deploy", [sentinel, defender], ids=["sentinel", "defender"])
def test_debug_logs_every_request_without_its_token(fake, deploy):
    result = deploy(fake, RULES, "--apply", debug=True)
    assert result.exit_code == 0, result.stderr
    write = "PUT" if deploy is sentinel else "POST"
    assert "Request URL: " in result.stderr and f"Request method: '{write}'" in result.stderr
    assert "'Authorization': 'REDACTED'" in result.stderr  # azure-core's HTTP logging ran, and hid the header
    assert_no_token(fake, result.stdout, result.stderr)


def test_an_error_message_that_echoes_the_token_is_redacted(fake):
    fake.fault("GET", "alertRules", "echo")
    result = sentinel(fake, RULES, debug=True)
    assert result.exit_code == 1
    assert f"cannot use Bearer {REDACTED}" in result.stderr
    assert_no_token(fake, result.stdout, result.stderr)


def test_a_wrong_token_is_a_clear_failure(fake, monkeypatch):
    monkeypatch.setenv("ENTRA_SIGMA_GRAPH_TOKEN", "not-the-right-token-at-all")
    result = defender(fake, RULES)
    assert result.exit_code == 1
    assert "HTTP 401 InvalidAuthenticationToken: wrong or missing token" in result.stderr
    assert "not-the-right-token-at-all" not in result.stderr + result.stdout


def test_schema_pull_files_and_output_hold_no_token(fake, tmp_path):
    fake.tables = {"SigninLogs": [("TimeGenerated", "datetime"), ("UserPrincipalName", "string")]}
    out = tmp_path / "schemas"
    result = run(["--debug", "schema", "pull", "--workspace-id", fake.workspace_id, "--out", out,
                  "--tables", "SigninLogs", "--logs-endpoint", fake.url, "--max-wait", "0.02"])
    assert result.exit_code == 0, result.stderr
    assert "'Authorization': 'REDACTED'" in result.stderr
    texts = [p.read_text(encoding="utf-8") for p in tmp_path.rglob("*") if p.is_file()]
    assert texts and all(t for t in texts)
    assert_no_token(fake, result.stdout, result.stderr, *texts)


@pytest.mark.parametrize("endpoint", ["http://example.com", "http://10.0.0.4", "http://management.azure.com:80"])
def test_plain_http_to_another_host_is_refused_before_anything_is_sent(fake, endpoint):
    result = run(["deploy", "defender", RULES, "--graph-endpoint", endpoint])
    assert result.exit_code == 2
    assert "refusing plain http:// to a host other than this machine's loopback address" in result.stderr
    assert fake.requests == []


def test_an_endpoint_from_the_environment_is_checked_too(fake, monkeypatch):
    monkeypatch.setenv("ENTRA_SIGMA_ARM_ENDPOINT", "http://arm.example.net")
    from tests.deploy_helpers import SCOPE

    result = run(["deploy", "sentinel", RULES, *SCOPE])
    assert result.exit_code == 2
    assert "ENTRA_SIGMA_ARM_ENDPOINT 'http://arm.example.net': refusing plain http://" in result.stderr


@pytest.mark.parametrize("value, url", [
    (None, "https://management.azure.com"),
    ("https://management.usgovcloudapi.net/", "https://management.usgovcloudapi.net"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://[::1]:9", "http://[::1]:9"),
    ("http://localhost:1234", "http://localhost:1234"),
])
def test_endpoints_resolve_to_an_origin(value, url):
    endpoint = resolve("arm", value, {})
    assert endpoint.url == url and endpoint.scope == url + "/.default"


@pytest.mark.parametrize("value, message", [
    ("ftp://host", "expected https://host"),
    ("https://user:pw@host", "no path, query or user name"),
    ("https://host/path", "no path, query or user name"),
    ("https://host:99999", "not a URL"),
])
def test_bad_endpoints_are_usage_errors(value, message):
    with pytest.raises(EndpointError, match=message):
        resolve("graph", value, {})


def test_next_links_must_stay_on_the_endpoint():
    endpoint = resolve("graph", "https://graph.microsoft.com", {})
    assert endpoint.same_origin("https://graph.microsoft.com/beta/x?$skiptoken=2")
    assert not endpoint.same_origin("https://graph.microsoft.com.evil.example/beta/x")


def test_redaction_covers_known_tokens_bearer_headers_and_jwts():
    secrets = Secrets()
    secrets.add("s3cr3t-token-value")
    secrets.add("short")  # too short to redact safely: ordinary words would go
    text = "a s3cr3t-token-value b Bearer abc.def-ghi c eyJhbGciOi.eyJzdWIiOiIx.sig d short"
    assert secrets.redact(text) == f"a {REDACTED} b Bearer {REDACTED} c {REDACTED} d short"


def test_the_log_filter_redacts_the_formatted_message():
    from entra_sigma.verbs.deploy.redaction import SECRETS

    SECRETS.add("log-token-0123456789")
    record = logging.LogRecord("azure", logging.INFO, __file__, 1, "header %s", ("log-token-0123456789",), None)
    assert RedactingFilter().filter(record) and record.getMessage() == f"header {REDACTED}"


def test_static_tokens_are_registered_and_not_shown():
    credential = StaticTokenCredential("static-token-abcdef0123")
    assert "static-token" not in repr(credential)
    assert credential.get_token("https://management.azure.com/.default").token == "static-token-abcdef0123"
    from entra_sigma.verbs.deploy.redaction import redact

    assert redact("x static-token-abcdef0123 y") == f"x {REDACTED} y"


def test_a_jwt_expiry_is_read_and_anything_else_is_not_a_jwt():
    assert jwt_expiry("eyJhbGciOiJub25lIn0.eyJleHAiOjE3MDAwMDAwMDB9.") == 1700000000
    assert jwt_expiry("opaque") is None and jwt_expiry("a.b.c") is None


def test_without_a_token_variable_the_azure_identity_chain_is_used():
    credential = credential_for("arm", {})
    assert isinstance(credential, RegisteringCredential)
    assert type(credential._inner).__name__ == "DefaultAzureCredential"
    assert isinstance(credential_for("arm", {"ENTRA_SIGMA_ARM_TOKEN": "t0ken-from-ci-1234"}), StaticTokenCredential)
