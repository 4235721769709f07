"""Deterministic rule corpora for the benchmarks.

Two corpora, written as one YAML file per rule:

- **sigmahq**: variants of SigmaHQ's Azure sign-in rules (`rules/cloud/azure/signin_logs/`
  at SigmaHQ/sigma 8eaafff1f, Detection Rule License 1.1): the same detection shapes with
  other values, ids and titles, in SigmaHQ's own spelling (`logsource: product: azure,
  service: signinlogs`, Log Analytics columns such as `ResultType`, `UserAgent`). Only
  shapes that sigma-cli's kusto backend converts are used: it accepts SigninLogs column
  names only, so SigmaHQ's Graph-style and `properties.*` names are left out. The same
  rules can be written in beta spelling (`beta=True`: `product: entra, service:
  interactive`, `status.errorCode`, `userAgent`), which reads the same single table.
- **beta**: entra-sigma's own rule format: variants of the bundled `rules/` (other values
  of each field's catalog type) and single-field rules over every catalog field that the
  user sign-in tables can query. Candidates that entra-sigma refuses are dropped, so every
  rule in it is valid.

Nothing here reads ../shared: the shapes are typed in below, with the SigmaHQ file each
comes from.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = uuid.UUID("6d1f0c52-8a43-4b6e-9a57-3e2f1c7d9b80")

# SigmaHQ column → beta path (the inverse of schemas/mappings/SigninLogs.json for these columns).
COLUMN_TO_BETA = {
    "ResultType": "status.errorCode",
    "ResultDescription": "status.failureReason",
    "UserAgent": "userAgent",
    "AppDisplayName": "appDisplayName",
    "AppId": "appId",
    "IPAddress": "ipAddress",
    "UserPrincipalName": "userPrincipalName",
    "AuthenticationRequirement": "authenticationRequirement",
    "ConditionalAccessStatus": "conditionalAccessStatus",
    "ClientAppUsed": "clientAppUsed",
    "ResourceDisplayName": "resourceDisplayName",
    "RiskState": "riskState",
    "RiskLevelDuringSignIn": "riskLevelDuringSignIn",
}

USER_AGENTS = ["azurehound", "axios", "BAV2ROPC", "CBAinPROD", "CBAinTAR", "python-requests",
               "Go-http-client", "curl", "okhttp", "node-fetch", "PowerShell", "aiohttp",
               "roadtools", "TokenTactics", "GraphRunner", "MFASweep", "o365spray", "Trevor"]
ERRORS = [  # (code, description) pairs from Entra's AADSTS list
    (50053, "Account is locked"), (50057, "User account is disabled"),
    (53003, "Blocked by Conditional Access"), (50074, "Strong Auth required"),
    (500121, "Authentication failed during strong authentication request"),
    (50097, "Device authentication is required"), (50155, "DeviceAuthenticationFailed"),
    (50158, "External security challenge was not satisfied"), (50126, "Invalid username or password"),
    (50076, "MFA required"), (50079, "User needs to enroll for second factor"),
    (50105, "User not assigned to a role for the application"), (50034, "User account not found"),
    (50055, "Password expired"), (50144, "Active Directory password expired"),
    (53000, "Device is not in required device state"), (53001, "Device is not domain joined"),
    (530032, "Blocked by security defaults"), (700016, "Application not found in directory"),
]
APPS = ["Azure Portal", "Microsoft Azure CLI", "Microsoft Azure PowerShell", "Office 365 Exchange Online",
        "Microsoft Teams", "Microsoft Graph Command Line Tools", "Azure Active Directory PowerShell",
        "Microsoft Office", "OneDrive SyncEngine", "Microsoft Authentication Broker"]
RESOURCES = ["Device Registration Service", "Windows Azure Service Management API", "Microsoft Graph",
             "Office 365 Exchange Online", "Azure Key Vault", "Microsoft Intune Enrollment"]
CLIENT_APPS = ["Other clients", "IMAP4", "POP3", "MAPI Over HTTP", "Authenticated SMTP",
               "Exchange ActiveSync", "Exchange Web Services", "Exchange Online PowerShell",
               "AutoDiscover", "Offline Address Book"]
DOMAINS = ["contoso.com", "fabrikam.com", "northwind.example", "tailspin.example", "woodgrove.example"]
RISK_STATES = ["atRisk", "confirmedCompromised"]
RISK_LEVELS = ["low", "medium", "high"]
LEVELS = ["informational", "low", "medium", "high", "critical"]


def _errors(rng: random.Random, count: int) -> list[tuple[int, str]]:
    return rng.sample(ERRORS, count)


# Each shape: (SigmaHQ file it varies, title stem, tags, builder rng → detection in SigmaHQ columns)
def _azurehound(rng):
    return {"selection": {"UserAgent|contains": rng.choice(USER_AGENTS), "ResultType": 0},
            "condition": "selection"}


def _bypassing_mfa(rng):
    return {"selection": {"UserAgent|contains": rng.sample(USER_AGENTS, 3), "ResultType": 0},
            "condition": "selection"}


def _device_registration(rng):
    return {"selection": {"ResourceDisplayName": rng.choice(RESOURCES), "ConditionalAccessStatus": "success"},
            "filter_mfa": {"AuthenticationRequirement": "multiFactorAuthentication"},
            "condition": "selection and not filter_mfa"}


def _interruption(rng):
    detection = {f"selection_{code}": {"ResultType": code, "ResultDescription": text}
                 for code, text in _errors(rng, 3)}
    detection["condition"] = "1 of selection_*"
    return detection


def _blocked_account(rng):
    code, text = rng.choice(ERRORS)
    return {"selection": {"ResultType": code, "ResultDescription": text}, "condition": "selection"}


def _lockout(rng):
    return {"selection": {"ResultType": rng.choice(ERRORS)[0]}, "condition": "selection"}


def _legacy_protocols(rng):
    return {"selection": {"ClientAppUsed": rng.sample(CLIENT_APPS, rng.randint(2, 6)),
                          "UserPrincipalName|endswith": "@" + rng.choice(DOMAINS)},
            "condition": "selection"}


def _mfa_interrupted(rng):
    detection = {f"selection_{code}": {"ResultType": code, "ResultDescription|contains": text.split()[0]}
                 for code, text in _errors(rng, 2)}
    detection["condition"] = "1 of selection_*"
    return detection


def _axios(rng):
    return {"selection": {"UserAgent|contains": rng.choice(USER_AGENTS)}, "condition": "selection"}


def _single_factor(rng):
    return {"selection": {"AuthenticationRequirement": "singleFactorAuthentication", "ResultType": 0,
                          "AppDisplayName": rng.choice(APPS)},
            "condition": "selection"}


def _risky_single_factor(rng):
    return {"selection": {"AuthenticationRequirement": "singleFactorAuthentication",
                          "RiskState": rng.choice(RISK_STATES)},
            "filter_low": {"RiskLevelDuringSignIn": rng.choice(RISK_LEVELS[:2])},
            "condition": "selection and not filter_low"}


def _outside_network(rng):
    return {"selection": {"ResultType": rng.choice(ERRORS)[0], "AppDisplayName": rng.sample(APPS, 2)},
            "filter_corp": {"IPAddress|startswith": f"10.{rng.randint(0, 255)}."},
            "condition": "selection and not filter_corp"}


SHAPES = [
    ("azure_ad_azurehound_discovery.yml", "Discovery tool user agent", ["attack.discovery", "attack.t1087.004"], _azurehound),
    ("azure_ad_suspicious_signin_bypassing_mfa.yml", "Sign-in with an MFA-bypassing client", ["attack.initial_access", "attack.t1078.004"], _bypassing_mfa),
    ("azure_ad_device_registration_or_join_without_mfa.yml", "Resource access without MFA", ["attack.defense_evasion", "attack.t1078.004"], _device_registration),
    ("azure_unusual_authentication_interruption.yml", "Unusual authentication interruption", ["attack.initial_access", "attack.t1078.004"], _interruption),
    ("azure_blocked_account_attempt.yml", "Sign-in failure with description", ["attack.credential_access", "attack.t1110"], _blocked_account),
    ("azure_account_lockout.yml", "Sign-in failure code", ["attack.credential_access", "attack.t1110"], _lockout),
    ("azure_legacy_authentication_protocols.yml", "Legacy authentication protocol", ["attack.initial_access", "attack.t1078.004"], _legacy_protocols),
    ("azure_mfa_interrupted.yml", "MFA interrupted", ["attack.initial_access", "attack.t1078.004"], _mfa_interrupted),
    ("azure_ad_signin_axios_user_agent.yml", "Scripted client user agent", ["attack.initial_access", "attack.t1078.004"], _axios),
    ("azure_ad_only_single_factor_auth_required.yml", "Single-factor sign-in to an application", ["attack.initial_access", "attack.t1078.004"], _single_factor),
    ("azure_ad_risky_sign_ins_with_singlefactorauth_from_unknown_devices.yml", "Risky single-factor sign-in", ["attack.initial_access", "attack.t1078.004"], _risky_single_factor),
    ("azure_user_login_blocked_by_conditional_access.yml", "Failure from outside an address range", ["attack.credential_access", "attack.t1110.003"], _outside_network),
]


def _beta_detection(detection: dict) -> dict:
    """The same detection with each column replaced by its beta path."""
    result = {}
    for name, value in detection.items():
        if name == "condition":
            result[name] = value
            continue
        converted = {}
        for key, item in value.items():
            column, _, modifiers = key.partition("|")
            converted[COLUMN_TO_BETA[column] + ("|" + modifiers if modifiers else "")] = item
        result[name] = converted
    return result


def sigmahq_rule(index: int, beta: bool = False) -> tuple[str, dict]:
    """Rule `index` of the SigmaHQ-style corpus: (file name, rule)."""
    source, stem, tags, build = SHAPES[index % len(SHAPES)]
    rng = random.Random(f"sigmahq/{index}")
    detection = build(rng)
    rule = {
        "title": f"{stem} (variant {index:04d})",
        "id": str(uuid.uuid5(NAMESPACE, f"sigmahq/{index}")),
        "status": "test",
        "description": f"Variant {index} of SigmaHQ's {source} (Detection Rule License 1.1), with other values.",
        "references": ["https://github.com/SigmaHQ/sigma/tree/master/rules/cloud/azure/signin_logs"],
        "author": "entra-sigma benchmark",
        "date": "2026-11-27",
        "tags": tags,
        "logsource": {"product": "entra", "service": "interactive"} if beta
        else {"product": "azure", "service": "signinlogs"},
        "detection": _beta_detection(detection) if beta else detection,
        "falsepositives": ["Unknown"],
        "level": LEVELS[index % len(LEVELS)],
    }
    return f"{index:04d}-{source}", rule


# -- the beta corpus -----------------------------------------------------------------------------
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]


def _catalog() -> dict:
    return json.loads((ROOT / "schemas" / "signin-catalog.json").read_text(encoding="utf-8"))


def _value_for(field: dict, enums: dict, modifiers: list[str], rng: random.Random, path: str):
    """Another value of the field's catalog type, valid for the modifiers."""
    kind = field["type"]
    if "exists" in modifiers or "fieldref" in modifiers:
        return None  # keep the original
    if kind == "enum":
        members = [m for m in enums[field["enum"]]["members"] if m != "unknownFutureValue"]
        return rng.choice(members)
    if kind == "bool":
        return rng.choice([True, False])
    if kind in ("int", "long"):
        return rng.randint(1, 60000) if any(m in modifiers for m in ("gt", "gte", "lt", "lte")) \
            else rng.choice(ERRORS)[0]
    if kind == "double":
        return round(rng.uniform(-80, 80), 3)
    if kind == "string":
        if path.lower().endswith("id"):
            return str(uuid.UUID(int=rng.getrandbits(128)))
        if "cidr" in modifiers:
            return f"10.{rng.randint(0, 255)}.0.0/16"
        if path.lower().endswith("ipaddress"):
            return f"203.0.113.{rng.randint(1, 254)}"
        return f"{rng.choice(WORDS)}-{rng.randint(0, 9999)}"
    return None


def _vary(value, field, enums, modifiers, rng, path):
    if isinstance(value, list):
        return [_vary(v, field, enums, modifiers, rng, path) for v in value]
    new = _value_for(field, enums, modifiers, rng, path)
    return value if new is None else new


def bundled_variant(rule: dict, index: int, catalog: dict) -> dict:
    """A bundled rule with other values (of each field's catalog type), id, title and level."""
    rng = random.Random(f"beta/bundled/{index}")
    data = copy.deepcopy(rule)
    for name, selection in data["detection"].items():
        if name == "condition":
            continue
        maps = selection if isinstance(selection, list) else [selection]
        for item in maps:
            for key in list(item):
                path, *modifiers = key.split("|")
                field = catalog["fields"].get(path)
                if field is not None:
                    item[key] = _vary(item[key], field, catalog["enums"], modifiers, rng, path)
    data["id"] = str(uuid.uuid5(NAMESPACE, f"beta/{index}"))
    data["title"] = f"{data['title']} (variant {index:04d})"
    data["level"] = LEVELS[index % len(LEVELS)]
    return data


def field_rule(index: int, path: str, catalog: dict) -> dict:
    """A rule on one catalog field, with an operator that suits its type, and `fields`."""
    rng = random.Random(f"beta/field/{index}")
    field = catalog["fields"][path]
    kind = field["type"]
    if kind == "string" and not path.lower().endswith("id") and rng.random() < 0.6:
        modifier = rng.choice(["contains", "startswith", "endswith"])
        key, value = f"{path}|{modifier}", [_value_for(field, catalog["enums"], [], rng, path) for _ in range(2)]
    elif kind in ("int", "long", "double") and rng.random() < 0.5:
        key, value = f"{path}|gte", _value_for(field, catalog["enums"], ["gte"], rng, path)
    else:
        key, value = path, _value_for(field, catalog["enums"], [], rng, path)
    return {
        "title": f"Sign-ins by {path} (variant {index:04d})",
        "id": str(uuid.uuid5(NAMESPACE, f"beta/{index}")),
        "status": "experimental",
        "description": f"Benchmark rule {index}: one condition on {path}.",
        "tags": ["attack.initial_access", "attack.t1078.004"],
        "logsource": {"product": "entra", "service": rng.choice(["signins", "interactive", "noninteractive"])},
        "detection": {
            "selection": {key: value},
            "failed": {"status.errorCode": rng.choice(ERRORS)[0]},
            "condition": "selection and not failed" if rng.random() < 0.5 else "selection or failed",
        },
        "fields": ["userPrincipalName", "ipAddress", "appDisplayName"],
        "level": LEVELS[index % len(LEVELS)],
    }


def field_candidates(catalog: dict) -> list[str]:
    """Scalar catalog paths outside arrays (a field rule on each is tried)."""
    return sorted(p for p, f in catalog["fields"].items()
                  if f["type"] not in ("object", "dateTime") and not f.get("arrays") and not f.get("collection"))


def bundled_rules() -> list[dict]:
    """The single-event rules of rules/ (files holding a correlation are left out, and those with
    a placeholder, whose values come from an environment of entra-sigma.toml)."""
    found = []
    for path in sorted((ROOT / "rules").rglob("*.yml")):
        if path.name.endswith(".tests.yml") or "|expand" in path.read_text(encoding="utf-8"):
            continue
        documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        if len(documents) == 1 and "correlation" not in documents[0]:
            found.append(documents[0])
    return found


def write_rule(folder: Path, name: str, rule: dict) -> None:
    text = yaml.safe_dump(rule, sort_keys=False, allow_unicode=True, width=120)
    (folder / name).write_text(text, encoding="utf-8")


def write_sigmahq(folder: Path, count: int, beta: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        name, rule = sigmahq_rule(index, beta)
        write_rule(folder, name, rule)


def write_beta(folder: Path, count: int, valid) -> int:
    """`count` valid beta rules: bundled variants and field rules, alternating. `valid(folder)`
    returns the names of the files that entra-sigma accepts; refused candidates are dropped
    and the next candidates tried, so the corpus is always `count` rules long."""
    catalog = _catalog()
    bundled = bundled_rules()
    paths = field_candidates(catalog)
    folder.mkdir(parents=True, exist_ok=True)
    index, dropped, written = 0, 0, 0
    while written < count:
        batch = []
        for _ in range(count - written):
            if index % 2 == 0:
                rule = bundled_variant(bundled[(index // 2) % len(bundled)], index, catalog)
            else:
                rule = field_rule(index, paths[(index // 2) % len(paths)], catalog)
            name = f"{index:04d}.yml"
            write_rule(folder, name, rule)
            batch.append(name)
            index += 1
        accepted = valid(folder)
        for name in batch:
            if name not in accepted:
                (folder / name).unlink()
                dropped += 1
        written = len(list(folder.glob("*.yml")))
    return dropped
