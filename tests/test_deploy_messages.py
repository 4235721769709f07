"""What a pipeline and a person read when a deploy cannot go on (issue 20, items 5 and 6).

- `--format json` always prints its document, with `errors`, however the run ends: rule errors,
  no credentials, a service that does not answer, a usage error.
- A failed sign-in says, one short line each, what was tried and why it gave nothing, and what to
  do (the variable, `az login`); a refused token names its variable.
- Each retry is said on stderr, with why and when; a host name that does not exist is not retried.

The sign-in chain is azure-identity's own, given credentials that have nothing to offer: a test
never asks a real metadata service or a real `az` for a token.
"""

from __future__ import annotations

import json
import socket

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.identity import CredentialUnavailableError
from entra_sigma.verbs.deploy import credentials
from entra_sigma.verbs.deploy.credentials import RegisteringCredential, SignInFailed
from entra_sigma.verbs.deploy.pipeline import BoundedRetryPolicy, HttpSettings, no_answer_reason, unknown_host

from tests.deploy_helpers import RULES, SCOPE, defender, fake, rules, run, sentinel  # noqa: F401 - fixtures

LONG = "You must also ensure " + "the account is set up with every permission it needs " * 20


class Unavailable:
    """A credential of the chain that has nothing to offer, as each of azure-identity's says so."""

    def __init__(self, message: str) -> None:
        self.message = message

    def get_token(self, *scopes, **kwargs):
        raise CredentialUnavailableError(message=self.message)


def empty_chain():
    from azure.identity import ChainedTokenCredential

    chain = ChainedTokenCredential(Unavailable("EnvironmentCredential authentication unavailable."),
                                   Unavailable(LONG))
    # named as the chain DefaultAzureCredential makes: the environment's principal, then the Azure CLI
    chain.credentials[0].__class__ = type("EnvironmentCredential", (Unavailable,), {})
    chain.credentials[1].__class__ = type("AzureCliCredential", (Unavailable,), {})
    return chain


@pytest.fixture
def no_credentials(monkeypatch):
    """No token variable, and a chain in which no credential gives a token."""
    for variable in credentials.TOKEN_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(credentials, "credential_for", lambda api, environ: RegisteringCredential(empty_chain(), api))


def test_a_failed_sign_in_says_what_was_tried_in_short_lines_and_what_to_do(fake, no_credentials):
    result = defender(fake, RULES)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    lines = lines[next(i for i, line in enumerate(lines) if line.startswith("entra-sigma: error:")):]
    assert lines[0].endswith("cannot sign in to Microsoft Graph: no credential gave a token")
    assert lines[1:] == [
        "  tried ENTRA_SIGMA_GRAPH_TOKEN: not set",
        "  tried a service principal in the environment (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET): not set",
        "  tried the Azure CLI: not signed in (`az login`), or `az` is not installed",
        "  to sign in: `az login` on your machine; in GitHub Actions the azure/login action (OIDC); or set "
        "ENTRA_SIGMA_GRAPH_TOKEN to a token you fetched (docs/deploy.md#signing-in)",
    ]
    assert "no answer" not in result.stderr
    assert fake.requests == []  # nothing was sent without a token


def test_a_credential_that_fails_is_summed_up_at_a_word():
    assert credentials.short_reason(LONG).endswith(" …")
    assert len(credentials.short_reason(LONG)) <= credentials.LONGEST_REASON + 2
    assert not credentials.short_reason(LONG)[:-2].endswith(" ")
    assert credentials.short_reason("Failed. See https://aka.ms/x for help") == "Failed"
    failed = SignInFailed("arm", [("the Azure CLI", credentials.short_reason("AADSTS700016: Application not found. Trace"))])
    assert failed.lines()[0] == "tried ENTRA_SIGMA_ARM_TOKEN: not set"
    assert failed.lines()[1] == "tried the Azure CLI: AADSTS700016: Application not found"


@pytest.mark.parametrize("fmt", ["json"])
def test_json_is_printed_when_the_sign_in_fails(fake, no_credentials, fmt):
    result = sentinel(fake, RULES, "--format", fmt)
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    (error,) = document["errors"]
    assert error["code"] == "E605" and "cannot sign in to Azure Resource Manager" in error["message"]
    assert error["details"][0] == "tried ENTRA_SIGMA_ARM_TOKEN: not set"
    assert (document["changes"], document["changes_pending"], document["target"]) == ([], False, "sentinel")


def test_json_is_printed_when_the_rules_have_errors(fake, rules):
    (rules / "broken.yml").write_text("title: Broken\nid: 11111111-1111-4111-8111-111111111111\n"
                                      "logsource: {product: entra, service: signins}\n"
                                      "detection: {sel: {incomingTokenTyp: x}, condition: sel}\n", encoding="utf-8")
    result = defender(fake, rules, "--format", "json")
    assert result.exit_code == 1
    (error,) = json.loads(result.stdout)["errors"]
    assert (error["code"], error["location"]["path"], error["rule"]) == ("E101", f"{rules.name}/broken.yml", "Broken")
    assert fake.requests == []


def test_json_is_printed_when_the_service_does_not_answer(fake):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    result = run(["deploy", "defender", RULES, "--graph-endpoint", f"http://127.0.0.1:{port}", "--format", "json",
                  "--retries", "1", "--max-wait", "0.01", "--timeout", "1"])
    assert result.exit_code == 1
    (error,) = json.loads(result.stdout)["errors"]
    assert error["code"] == "E605" and "no answer: connection refused" in error["message"]
    retry = [line for line in result.stderr.splitlines() if "retrying" in line]
    assert retry == [f"entra-sigma: GET http://127.0.0.1:{port}/beta/security/rules/detectionRules: no answer "
                     "(connection refused); retrying in 0.0 s (try 2 of 2)"]


def test_json_is_printed_on_a_usage_error(fake):
    result = run(["deploy", "sentinel", RULES, "--subscription", "nope", "--resource-group", "rg-sentinel",
                  "--workspace", "law-sentinel", "--format", "json"])
    assert result.exit_code == 2
    (error,) = json.loads(result.stdout)["errors"]
    assert error == {"code": "usage", "id": None, "message": "--subscription 'nope': expected a subscription id (a GUID)"}


def test_a_refused_token_names_its_variable(fake, monkeypatch):
    monkeypatch.setenv("ENTRA_SIGMA_GRAPH_TOKEN", "expired-token-from-yesterday")
    result = defender(fake, RULES)
    assert result.exit_code == 1
    assert (f"  the token in ENTRA_SIGMA_GRAPH_TOKEN was refused: it may have expired, or be for another API "
            f"(it must be for {fake.url}/.default)") in result.stderr.splitlines()


def test_each_retry_is_said_with_why_and_when(fake):
    fake.fault("GET", "alertRules", "500", times=2)
    result = sentinel(fake, RULES)
    assert result.exit_code == 0
    said = [line for line in result.stderr.splitlines() if "retrying" in line]
    assert len(said) == 2
    assert said[0].startswith("entra-sigma: GET http://127.0.0.1:") and ": HTTP 500; retrying in " in said[0]
    assert said[0].endswith("(try 2 of 4)") and said[1].endswith("(try 3 of 4)")


def test_a_host_name_that_does_not_exist_is_not_retried():
    missing = ServiceRequestError("Failed to resolve 'no.such.host'")
    missing.__cause__ = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    slow_resolver = ServiceRequestError("Failed to resolve 'graph.microsoft.com'")
    slow_resolver.__cause__ = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    assert unknown_host(missing) and not unknown_host(slow_resolver)
    policy = BoundedRetryPolicy(HttpSettings(retries=3))
    settings = policy.configure_retries({})
    assert policy.increment(settings, error=missing) is False
    assert no_answer_reason(missing) == "the host name could not be resolved"
