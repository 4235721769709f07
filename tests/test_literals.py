"""Every value a rule author writes reaches KQL as one intact constant: proved with Kusto.Language.

Rules come from many authors and are deployed by pipelines, so a value that broke out of its
string literal would put the author's KQL into production unreviewed. Hypothesis generates
values full of quotes, backslashes, line breaks, `//`, `|`, `;`, NUL, bidi overrides, combining
marks, astral characters and very long runs. Each value is compiled twice: into the rule as
generated, and with a harmless placeholder in its place. Kusto.Language (the test session's
one `check.js --serve` process, the `kusto` fixture) then reads both queries and must find:

- no diagnostics;
- the same tokens (nothing was injected: no extra operator, pipe, comment or statement);
- the same literals, except that where the placeholder's constant was, the value's own
  constant is, exactly as Sigma defines it (wildcards and `\\` escapes resolved).

Examples are few and derandomised so the suite stays fast and repeatable; set
ENTRA_SIGMA_EXAMPLES=2000 for a deeper run.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import tempfile
from pathlib import Path

import pytest
import re2
import yaml
from entra_sigma.build import Compiler, build_outputs
from entra_sigma.convert.kql import KqlGenerator
from entra_sigma.dev.kusto_language import KustoLiteral
from entra_sigma.load.loader import parse_yaml
from entra_sigma.validate.catalog import default_catalog
from entra_sigma.validate.fields import regex_problem
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from .helpers import REGISTRY

EXAMPLES = int(os.environ.get("ENTRA_SIGMA_EXAMPLES", "10"))
PROPERTY = settings(
    max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
COMPILER = Compiler()
CATALOG = default_catalog()
RULE_ID = "5b8e2c1d-3f4a-4b6c-8d7e-9f0a1b2c3d4e"

# Characters and fragments that break naive quoting, comments, YAML, JSON or review.
HOSTILE = [
    '"', "'", "\\", "\\\\", '\\"', "\n", "\r", "\r\n", "\t", "//", "/*", "*/", "|", ";", "`", "@", '@"',
    "{", "}", "(", ")", "[", "]", "$", "%", "%0A", ",", ":", "::", "#", "---", "...", "- ", "&a", "*a", "!!",
    "\x00", "\x01", "\x1b", "\x7f", "\x85", "\x9f", "\xa0", "\u2028", "\u2029", "\u200b", "\u200d",
    "\u200e", "\u202e", "\u2066", "\u061c", "\ufeff", "\ufffe", "\uffff", "\u0301", "e\u0301", "é",
    "ß", "İ", "\u05d0\u05d1", "\u0627\u0644", "😀", "👩\u200d💻", "\U000e0001", "\U0010ffff", "\U0001d173",
    " ", "  ", "let x = 1;", "| take 1", "\n| union T", '" or true or "', "' or 1==1 //",
]
fragment = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=4))
plain_text = st.lists(fragment, max_size=10).map("".join)
long_text = st.tuples(st.sampled_from(HOSTILE + ["x"]), st.integers(1_000, 10_000)).map(lambda t: (t[0] * t[1])[: t[1]])
any_text = st.one_of(plain_text, plain_text, plain_text, long_text)
# Sigma gives `*` and `?` meaning (wildcards) and `\` escapes them; these values have none.
sigma_free_text = any_text.map(lambda s: s.replace("*", "").replace("?", ""))


# -- the oracle: Sigma's string syntax, written from the specification ---------------------------
def sigma_parts(value: str) -> list[str | None]:
    """Literal runs and wildcards (None for `*`, '' marker for `?` is not needed here): `\\`
    escapes `*`, `?` and `\\`; any other backslash is literal."""
    parts: list[str | None] = [""]
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in "*?\\":
            parts[-1] += value[i + 1]
            i += 2
            continue
        if ch in "*?":
            parts += [ch, ""]  # a wildcard marker, then the next literal run
        else:
            parts[-1] += ch
        i += 1
    return parts


def sigma_literal(value: str) -> str:
    parts = sigma_parts(value)
    assert len(parts) == 1, "value has wildcards"
    return parts[0]


# -- compiling and reading back ---------------------------------------------------------------------
def yaml_quoted(value: str) -> str:
    """A YAML double-quoted scalar for any text: everything but printable, non-breaking
    characters escaped (PyYAML's own emitter folds some line breaks, e.g. runs of U+0085)."""
    out = []
    for ch in value:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= code < 0x7F or (0xA0 <= code <= 0xFFFD and ch not in "\u2028\u2029\ufeff" and not 0xD800 <= code < 0xE000):
            out.append(ch)
        elif code > 0xFFFF:
            out.append(f"\\U{code:08x}")
        else:
            out.append(f"\\u{code:04x}")
    return '"' + "".join(out) + '"'


def to_yaml(value, indent: int = 0) -> str:
    pad = "  " * indent
    if isinstance(value, dict):
        return "".join(
            f"{pad}{yaml_quoted(str(k))}:" + (f"\n{to_yaml(v, indent + 1)}" if isinstance(v, (dict, list)) and v else f" {to_yaml(v)}\n")
            for k, v in value.items()
        )
    if isinstance(value, list):
        return "".join(f"{pad}- {to_yaml(v).strip()}\n" if not isinstance(v, (dict, list)) else f"{pad}-\n{to_yaml(v, indent + 1)}" for v in value) if value else "[]"
    if isinstance(value, str):
        return yaml_quoted(value)
    return yaml.safe_dump(value).removesuffix("\n...\n").strip()  # 1e-05 as 1.0e-05, which YAML 1.1 reads as a number


def rule_yaml(detection: dict, service: str = "interactive", **extra) -> str:
    data = {
        "title": extra.pop("title", "literal check"),
        "id": RULE_ID,
        "logsource": {"product": "entra", "service": service},
        "detection": {**detection, "condition": "sel"},
        **extra,
    }
    text = to_yaml(data)
    assert yaml.safe_load(text) == data, "the test's own YAML lost the value"
    return text


def compile_detection(detection: dict, service: str = "interactive", platform: str = "sentinel", **extra):
    document, diagnostics = parse_yaml(rule_yaml(detection, service, **extra), Path("r.yml"), "r.yml")
    assert diagnostics == []
    rules, diagnostics = COMPILER.rules([document])
    if diagnostics:
        return None, diagnostics
    compiled, diagnostics = COMPILER.compile_rule(rules[0], (platform,))
    return compiled.texts.get(platform), diagnostics


_PLACEHOLDERS: dict[str, object] = {}


def assert_same_shape(kusto, hostile_kql: str, placeholder_kql: str, replacements: dict[str, str]) -> None:
    """Both queries parse cleanly into the same tokens; the hostile query's literals are the
    placeholder's, with each placeholder constant replaced by the expected one."""
    if placeholder_kql not in _PLACEHOLDERS:  # the same for every example of a test: read it once
        _PLACEHOLDERS[placeholder_kql] = kusto.analyze_one(placeholder_kql)
    placeholder = _PLACEHOLDERS[placeholder_kql]
    hostile = kusto.analyze_one(hostile_kql)
    assert placeholder.diagnostics == [], placeholder_kql
    assert hostile.diagnostics == [], hostile_kql
    assert hostile.tokens == placeholder.tokens
    assert any(lit.value in replacements for lit in placeholder.literals), "placeholder constant not found"
    expected = [KustoLiteral(lit.kind, replacements.get(lit.value, lit.value)) for lit in placeholder.literals]
    assert hostile.literals == expected


def check_string_modifier(kusto, key: str, value, placeholder, expected: dict[str, str], service="interactive", platform="sentinel"):
    hostile_kql, problems = compile_detection({"sel": {key: value}}, service, platform)
    assert problems == [] and hostile_kql, problems
    placeholder_kql, problems = compile_placeholder(key, placeholder, service, platform)
    assert problems == [] and placeholder_kql, problems
    assert_same_shape(kusto, hostile_kql, placeholder_kql, expected)


@functools.lru_cache(maxsize=None)
def _compile_placeholder(key: str, placeholder: str, service: str, platform: str):
    return compile_detection({"sel": {key: json.loads(placeholder)}}, service, platform)


def compile_placeholder(key: str, placeholder, service: str = "interactive", platform: str = "sentinel"):
    return _compile_placeholder(key, json.dumps(placeholder), service, platform)


# -- the checker itself reads literals back ------------------------------------------------------
def test_the_checker_reports_literals_tokens_names_and_comments(kusto):
    analysis = kusto.analyze_one(
        '// head\nSigninLogs | where UserAgent == "a\\"b\\\\c\\n\\u0000\\ud83d\\ude00" '
        'and UserAgent matches regex @"x""y\\d" | project n = 12, ["odd name"] = 1.5'
    )
    assert analysis.diagnostics == []
    assert analysis.literals == [
        KustoLiteral("String", 'a"b\\c\n\x00😀'), KustoLiteral("String", 'x"y\\d'),
        KustoLiteral("Long", "12"), KustoLiteral("Real", "1.5"),
    ]
    assert analysis.strings == ['a"b\\c\n\x00😀', 'x"y\\d']
    assert ("SigninLogs", "Table") in analysis.names and ("UserAgent", "Column") in analysis.names
    assert ("odd name", "Declaration") in analysis.names
    assert analysis.comments == ["// head"]
    assert analysis.tokens[:3] == ["IdentifierToken", "BarToken", "WhereKeyword"]


def test_an_injected_string_changes_the_tokens(kusto):
    """The proof's own check can fail: a naively quoted value parses cleanly, with new tokens."""
    value = '" or true or UserAgent == "'
    naive = kusto.analyze_one(f'SigninLogs | where UserAgent == "{value}"')
    proper = kusto.analyze_one(f"SigninLogs | where UserAgent == {KqlGenerator.string(value)}")
    assert naive.diagnostics == [] and proper.diagnostics == []
    assert naive.tokens != proper.tokens
    assert proper.strings == [value]


# -- string values, one test per modifier ------------------------------------------------------------
STRING_KEYS = {
    "plain": "userAgent", "cased": "userAgent|cased", "neq": "userAgent|neq",
    "contains": "userAgent|contains", "contains-cased": "userAgent|contains|cased",
    "startswith": "userAgent|startswith", "startswith-cased": "userAgent|startswith|cased",
    "endswith": "userAgent|endswith", "endswith-cased": "userAgent|endswith|cased",
}


@pytest.mark.parametrize("name", STRING_KEYS)
@PROPERTY
@given(value=sigma_free_text)
@example(value='" or true or "')
@example(value="x\"\n| take 1 //")
@example(value="\\\\")
def test_string_values_reach_kql_intact(kusto, name, value):
    literal = sigma_literal(value)
    if name not in ("plain", "cased", "neq"):
        assume(literal)  # `contains: ''` means "any value", which has no constant
    check_string_modifier(kusto, STRING_KEYS[name], value, "PLACEHOLDER", {"PLACEHOLDER": literal})


@pytest.mark.parametrize("modifier", ["", "|cased", "|contains", "|contains|all"])
@PROPERTY
@given(values=st.lists(sigma_free_text, min_size=2, max_size=4, unique_by=sigma_literal))
def test_lists_of_values_reach_kql_intact(kusto, modifier, values):
    """A list becomes `in~ (…)` (or one test per value): every value its own constant, in order."""
    literals = [sigma_literal(v) for v in values]
    if "contains" in modifier:
        assume(all(literals))
    placeholders = [f"PLACEHOLDER{i}" for i in range(len(values))]
    check_string_modifier(
        kusto, "userAgent" + modifier, values, placeholders, dict(zip(placeholders, literals)),
    )


@pytest.mark.parametrize("platform,service", [("defender", "signins"), ("sentinel", "signins")])
@PROPERTY
@given(value=sigma_free_text)
def test_values_reach_every_table_intact(kusto, platform, service, value):
    """The Defender dialect, and a union of two tables, quote the same way."""
    check_string_modifier(
        kusto, "userAgent|contains", value, "PLACEHOLDER", {"PLACEHOLDER": sigma_literal(value)},
        service=service, platform=platform,
    ) if sigma_literal(value) else None


@PROPERTY
@given(value=sigma_free_text)
def test_values_inside_array_elements_reach_kql_intact(kusto, value):
    """A field inside an array is matched in `mv-apply`, on a dynamic element."""
    check_string_modifier(
        kusto, "authenticationDetails.authenticationMethodDetail", value, "PLACEHOLDER",
        {"PLACEHOLDER": sigma_literal(value)},
    )


# -- wildcards: the constant is a regular expression of the literal parts ---------------------------
wildcard_text = st.lists(st.one_of(fragment, st.sampled_from(["*", "?", "\\*", "\\?"])), min_size=1, max_size=10).map("".join)


@pytest.mark.parametrize("key", ["userAgent", "userAgent|cased"])
@PROPERTY
@given(value=wildcard_text)
def test_wildcard_values_become_a_regex_of_their_literal_parts(kusto, key, value):
    parts = sigma_parts(value)
    wild = parts[1::2]
    assume(wild and not all(w == "*" for w in wild) or (wild and any(parts[0::2][1:-1])))
    kql, problems = compile_detection({"sel": {key: value}})
    assert problems == [] and kql
    analysis = kusto.analyze_one(kql)
    assert analysis.diagnostics == [], kql
    if "matches regex" not in kql:  # contains/startswith/endswith: the one literal part
        literals = [p for p in parts[0::2] if p]
        assert analysis.strings == literals
        return
    (pattern,) = analysis.strings
    flags = "(?s)" if "cased" in key else "(?is)"
    assert pattern.startswith(flags + "^") and pattern.endswith("$")
    # RE2 (what KQL runs) matches the literal parts with any text for `*` and one character for `?`
    options = re2.Options()
    options.log_errors = False
    compiled = re2.compile(pattern, options=options)
    sample = "".join(p if i % 2 == 0 else ("xyz" if p == "*" else "q") for i, p in enumerate(parts))
    assert compiled.fullmatch(sample)
    literal = "".join(parts[0::2])
    if literal:  # changing one literal character must stop the match
        altered = sample.replace(literal[0], "\x00" if literal[0] != "\x00" else "\x01", 1)
        if altered != sample and literal[0].lower() not in "xyzq" and literal[0] not in "\n":
            assert not compiled.fullmatch(altered)


# -- regular expressions -----------------------------------------------------------------------------
regex_text = st.lists(
    st.one_of(fragment, st.sampled_from(["^", "$", ".*", "[a-z]+", "\\d", "(a|b)", "(?=x)", "(?<=y)", "\\1", "(?P<n>x)", "a{2,3}", "\\z", "\\Z", "a++", "(?>x)", "\\p{Greek}"])),
    max_size=8,
).map("".join)


@pytest.mark.parametrize("modifier,flags", [("", ""), ("|i", "i"), ("|i|m|s", "ims")])
@PROPERTY
@given(pattern=regex_text)
@example(pattern='"@"" //')
@example(pattern="(?<=a)b")
def test_regular_expressions_reach_kql_intact_or_get_a_located_error(kusto, modifier, flags, pattern):
    kql, problems = compile_detection({"sel": {"userAgent|re" + modifier: pattern}})
    if regex_problem(pattern) is not None:
        assert kql is None
        assert [(d.code, str(d.location)) for d in problems] == [("E105", "r.yml:8:5")]
        return
    assert problems == [] and kql, problems
    prefix = f"(?{flags})" if flags else ""
    placeholder, _ = compile_placeholder("userAgent|re" + modifier, "PLACEHOLDER")
    assert_same_shape(kusto, kql, placeholder, {prefix + "PLACEHOLDER": prefix + pattern})


@pytest.mark.parametrize("pattern,detail", [
    ("(?=admin)", "invalid perl operator: (?="),
    ("(?!admin)", "invalid perl operator: (?!"),
    ("(?<=x)y", "invalid perl operator: (?<"),
    ("(?<!x)y", "invalid perl operator: (?<"),
    ("(a)\\1", "invalid escape sequence: \\1"),
    ("(?>a)", "invalid perl operator: (?>"),
    ("a++", "bad repetition operator: ++"),
    ("a\\Z", "invalid escape sequence: \\Z"),
    ("(?(1)a|b)", "invalid perl operator: (?("),
    ("[a", "missing ]: [a"),
])
def test_regex_features_re2_lacks_get_a_located_error(pattern, detail):
    kql, problems = compile_detection({"sel": {"userAgent|re": pattern}})
    assert kql is None
    (problem,) = problems
    assert (problem.code, str(problem.location)) == ("E105", "r.yml:8:5")
    assert detail in problem.message


# -- typed values: numbers, date-times, enums, networks ----------------------------------------------
EXACT = 2**53  # pySigma rounds integers beyond this (it keeps them as floats)


@pytest.mark.parametrize("key", ["status.errorCode|gt", "status.errorCode|lte", "autonomousSystemNumber|gte"])
@PROPERTY
@given(number=st.integers(-EXACT + 1, EXACT - 1))
def test_integers_reach_kql_intact(kusto, key, number):
    placeholder = -7 if number < 0 else 7
    kql, problems = compile_detection({"sel": {key: number}})
    assert problems == [] and kql
    placeholder_kql, _ = compile_placeholder(key, placeholder)
    assert_same_shape(kusto, kql, placeholder_kql, {"7": str(abs(number))})


@PROPERTY
@given(number=st.floats(allow_nan=False, allow_infinity=False))
def test_real_numbers_reach_kql_intact(kusto, number):
    kql, problems = compile_detection({"sel": {"location.geoCoordinates.latitude|lt": number}})
    assert problems == [] and kql
    analysis = kusto.analyze_one(kql)
    assert analysis.diagnostics == [], kql
    (literal,) = [lit for lit in analysis.literals if lit.kind in ("Real", "Long")]  # pySigma keeps 2.0 as 2
    token = analysis.tokens.index(literal.kind + "LiteralToken")
    sign = -1 if analysis.tokens[token - 1] == "MinusToken" else 1
    assert sign * float(literal.value) == number


datetimes = st.builds(
    lambda d, t, frac, zone: d.isoformat() + (("T" + t.strftime("%H:%M:%S") + frac + zone) if t else ""),
    st.dates(), st.one_of(st.none(), st.times()), st.sampled_from(["", ".1", ".123", ".1234567"]),
    st.sampled_from(["", "Z", "+01:00", "-05:30"]),
)


@PROPERTY
@given(value=datetimes)
def test_datetimes_reach_kql_intact(kusto, value):
    check_string_modifier(kusto, "createdDateTime", value, "2000-01-01T00:00:00Z", {"2000-01-01T00:00:00Z": value})


@pytest.mark.parametrize("value", ["2025-01-31)00:00:00", "2025-01-31|00:00", "2025-01-31\n00:00", "2025-W05-1", "20250131"])
def test_datetimes_kusto_cannot_read_are_refused(value):
    kql, problems = compile_detection({"sel": {"createdDateTime": value}})
    assert kql is None and [d.code for d in problems] == ["E107"]


@pytest.mark.parametrize("key", ["status.errorCode|gt", "autonomousSystemNumber"])
@pytest.mark.parametrize("value", [EXACT, EXACT + 1, -EXACT - 1, 2**63, 10**30])
def test_integers_pysigma_would_round_are_refused(key, value):
    kql, problems = compile_detection({"sel": {key: value}})
    assert kql is None and [(d.code, str(d.location)) for d in problems] == [("E107", "r.yml:8:5")]


ENUM_FIELDS = sorted(p for p, f in CATALOG.fields.items() if f.enum and not f.arrays and not f.flags)


@PROPERTY
@given(data=st.data())
def test_enum_members_reach_kql_as_graph_spells_them(kusto, data):
    path = data.draw(st.sampled_from(ENUM_FIELDS))
    members = CATALOG.enums[CATALOG.fields[path].enum].members
    member = data.draw(st.sampled_from(members))
    written = data.draw(st.sampled_from([member, member.upper(), member.lower(), member.swapcase()]))
    kql, problems = compile_detection({"sel": {path: written}})
    if kql is None:  # a field no user table has: a located diagnostic, never a query
        assert problems and all(d.code in ("E201", "E202") for d in problems)
        return
    analysis = kusto.analyze_one(kql)
    assert analysis.diagnostics == [], kql
    assert member in analysis.strings or any(lit.kind in ("Long", "Int") for lit in analysis.literals)


def network_text(address, prefix: int, exploded: bool) -> str:
    """A network without host bits (pySigma refuses those), in short or long spelling."""
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return network.exploded if exploded else str(network)


networks = st.one_of(
    st.builds(network_text, st.ip_addresses(v=4), st.integers(0, 32), st.booleans()),
    st.builds(network_text, st.ip_addresses(v=6), st.integers(0, 128), st.booleans()),
)


@PROPERTY
@given(network=networks)
def test_networks_reach_kql_as_their_canonical_form(kusto, network):
    expected = str(ipaddress.ip_network(network))
    placeholder = "10.0.0.0/8" if "." in expected else "2001:db8::/32"
    check_string_modifier(kusto, "ipAddress|cidr", network, placeholder, {placeholder: expected})


@PROPERTY
@given(value=plain_text)
def test_a_value_that_is_no_network_gets_a_located_error(value):
    try:
        ipaddress.ip_network(value, strict=False)
        assume(False)
    except ValueError:
        pass
    kql, problems = compile_detection({"sel": {"ipAddress|cidr": value}})
    assert kql is None and problems and all(d.location.line for d in problems)


@PROPERTY
@given(value=st.one_of(plain_text, st.integers()))
def test_exists_takes_only_a_boolean(value):
    assume(value not in ("true", "false", "yes", "no"))
    kql, problems = compile_detection({"sel": {"userAgent|exists": value}})
    assert kql is None and problems and all(d.location.line for d in problems)


@pytest.mark.parametrize("modifier", ["base64", "base64offset", "utf16", "utf16le", "wide", "windash", "minute"])
@PROPERTY
@given(value=sigma_free_text)
def test_modifiers_without_meaning_on_sign_ins_are_refused(modifier, value):
    kql, problems = compile_detection({"sel": {f"userAgent|{modifier}": value}})
    assert kql is None and problems and all(d.code.startswith("E") and d.location.line for d in problems)


# -- names: only catalog fields and table columns reach the query ------------------------------------
FIELD_PATHS = sorted(CATALOG.fields)
COLUMNS = {name for table in REGISTRY.tables.values() for name in table.columns}


@PROPERTY
@given(target=st.one_of(st.sampled_from(FIELD_PATHS), any_text))
def test_fieldref_names_only_catalog_fields(kusto, target):
    kql, problems = compile_detection({"sel": {"homeTenantId|fieldref": target}})
    if target not in CATALOG.fields:
        assert kql is None and [d.code for d in problems] in (["E101"], ["E003"]), problems
        return
    if kql is None:  # a field of another type or kind: refused with a location
        assert problems and all(d.code in ("E102", "E103", "E104", "E201", "E202") and d.location.line for d in problems)
        return
    analysis = kusto.analyze_one(kql)
    assert analysis.diagnostics == [], kql
    declared = {name for name, kind in analysis.names if kind == "Declaration"}
    columns = {name for name, kind in analysis.names if kind == "Column"}
    assert columns <= COLUMNS | declared


@PROPERTY
@given(key=st.text(min_size=1, max_size=30))
def test_field_names_outside_the_catalog_never_reach_the_query(key):
    assume(key.split("|")[0] not in CATALOG.fields)
    kql, problems = compile_detection({"sel": {key: "x"}})
    assert kql is None and problems


@PROPERTY
@given(name=any_text.filter(bool))
def test_odd_column_names_are_bracketed_intact(kusto, name):
    """Workspace schemas (--table-schema) may bring any column name; `member` quotes it."""
    analysis = kusto.analyze_one(f"print {KqlGenerator.member(name)} = 1")
    assert analysis.diagnostics == []
    assert analysis.names == [(name, "Declaration")]


# -- rule text in comments, YAML and JSON outputs ------------------------------------------------------
title_text = any_text.map(lambda s: s[:256]).filter(lambda s: s.strip())


def build_rule(**extra) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as folder:
        rules = Path(folder) / "rules"
        rules.mkdir()
        (rules / "r.yml").write_text(rule_yaml({"sel": {"userAgent|contains": "x"}}, "signins", **extra), encoding="utf-8")
        outputs = build_outputs(COMPILER, [rules])
        assert [d for d in outputs.diagnostics if d.severity == "error"] == []
        return outputs.files


@functools.lru_cache(maxsize=None)
def placeholder_outputs(kusto):
    return kusto.analyze_one(build_rule(title="PLACEHOLDER", description="PLACEHOLDER")["kql/r.kql"])


@PROPERTY
@given(title=title_text, description=any_text)
@example(title="*/ // \" '", description="line one\n  line two\n\n*/ // ---\n...\n")
@example(title="a\x00b\u2028c\x85d", description="\ttab first\r\nCRLF\rCR\x85NEL\u2029PS\x01")
@example(title=" leading and trailing ", description="   indented first line\nsecond")
@example(title="x", description="trailing spaces   \nand a line of spaces\n   \nend")
def test_rule_text_cannot_break_the_outputs(kusto, title, description):
    files = build_rule(title=title, description=description)
    shown = description.strip() or title
    query = files["kql/r.kql"]
    found = {"hostile": kusto.analyze_one(query), "placeholder": placeholder_outputs(kusto)}
    assert found["hostile"].diagnostics == [] and found["hostile"].tokens == found["placeholder"].tokens
    assert found["hostile"].literals == found["placeholder"].literals
    assert len(found["hostile"].comments) == len(found["placeholder"].comments)

    sentinel = yaml.safe_load(files["sentinel/r.yaml"])
    assert sentinel["name"] == title and sentinel["query"].rstrip("\n") == query.rstrip("\n")
    assert sentinel["description"].rstrip("\n") == shown.rstrip("\n")
    arm = json.loads(files["arm/r.json"])["resources"][0]["properties"]
    assert (arm["displayName"], arm["description"], arm["query"]) == (title, shown, query)
    detection = json.loads(files["defender/detections/r.json"])
    assert (detection["displayName"], detection["description"]) == (title, shown)
    assert detection["queryCondition"]["queryText"] == files["defender/hunting/r.kql"]
