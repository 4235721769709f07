"""validate/catalog.py: the beta signIn vocabulary as objects: fields, enums, arrays, suggestions."""

from __future__ import annotations

import json

import pytest
from entra_sigma.validate.catalog import NUMERIC_TYPES, Catalog, Enum, Field, default_catalog

TOKENS = Enum("incomingTokenType", ("none", "primaryRefreshToken", "saml11", "saml20", "refreshToken"), True)


@pytest.fixture
def tiny(tmp_path) -> Catalog:
    """A three-field catalog: an enum, an array of objects and a property inside it."""
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({
        "enums": {
            "tokenType": {"members": ["none", "primaryRefreshToken"], "flags": True},
            "risk": {"members": ["low", "high"]},
        },
        "fields": {
            "incomingTokenType": {"type": "enum", "enum": "tokenType", "description": "tokens"},
            "riskLevel": {"type": "enum", "enum": "risk"},
            "ipAddress": {"type": "string", "format": "ip"},
            "details": {"type": "object", "collection": True, "arrays": ["details"]},
            "details.succeeded": {"type": "bool", "arrays": ["details"]},
        },
    }), encoding="utf-8")
    return Catalog.from_file(path)


def test_from_file_builds_typed_fields(tiny):
    assert tiny.get("incomingTokenType") == Field(
        path="incomingTokenType", type="enum", enum="tokenType", arrays=(), collection=False,
        format=None, description="tokens", flags=True,
    )
    assert tiny.get("riskLevel").flags is False
    assert tiny.get("ipAddress").format == "ip"
    assert tiny.get("details") == Field("details", "object", None, ("details",), True, None, None, False)
    assert tiny.get("nope") is None


def test_enums_and_enum_of(tiny):
    assert tiny.enums["tokenType"] == Enum("tokenType", ("none", "primaryRefreshToken"), True)
    assert tiny.enum_of(tiny.get("riskLevel")) == Enum("risk", ("low", "high"), False)
    assert tiny.enum_of(tiny.get("ipAddress")) is None


def test_array_root_and_scalar(tiny):
    assert tiny.get("details.succeeded").array_root == "details"
    assert tiny.get("details").array_root == "details"
    assert tiny.get("ipAddress").array_root is None
    assert tiny.get("details").is_scalar is False
    assert tiny.get("details.succeeded").is_scalar is True


@pytest.mark.parametrize(
    "value, canonical",
    [("primaryRefreshToken", "primaryRefreshToken"), ("PRIMARYREFRESHTOKEN", "primaryRefreshToken"),
     ("saml20", "saml20"), ("PRT", None), ("primaryRefreshToken ", None)],
)
def test_enum_canonical_is_a_case_insensitive_member_match(value, canonical):
    assert TOKENS.canonical(value) == canonical


@pytest.mark.parametrize(
    "value, suggestion",
    [("primaryRefreshTokn", "primaryRefreshToken"),  # a typo
     ("sam20", "saml20"),
     ("PRT", "primaryRefreshToken"),  # initials of a camelCase member
     ("rt", "refreshToken"),
     ("xyz", None)],
)
def test_enum_suggest(value, suggestion):
    assert TOKENS.suggest(value) == suggestion


@pytest.mark.parametrize(
    "path, suggestion",
    [("details[].succeeded", "details.succeeded"),  # JSONPath-style brackets
     ("IPADDRESS", "ipAddress"),  # case
     ("ipAdress", "ipAddress"),  # typo
     ("details.succeded", "details.succeeded"),
     ("somethingElse", None)],
)
def test_catalog_suggest(tiny, path, suggestion):
    assert tiny.suggest(path) == suggestion


def test_numeric_types():
    assert NUMERIC_TYPES == ("int", "long", "double")


def test_bundled_catalog_is_loaded_once_with_the_graph_beta_shapes():
    catalog = default_catalog()
    assert default_catalog() is catalog
    assert catalog.get("status.errorCode").type == "int"
    assert catalog.get("incomingTokenType").flags is True
    assert catalog.enum_of(catalog.get("incomingTokenType")).members[:2] == ("none", "primaryRefreshToken")
    details = catalog.get("authenticationDetails.succeeded")
    assert (details.type, details.array_root, details.collection) == ("bool", "authenticationDetails", False)
    used = catalog.get("authenticationMethodsUsed")
    assert (used.type, used.collection, used.array_root) == ("string", True, "authenticationMethodsUsed")
