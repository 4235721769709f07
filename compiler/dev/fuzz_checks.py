"""The fuzzer's checks of the outputs that are not KQL (compiler/dev/fuzz.py calls them per batch).

Each reads an output the way its reader does and compares with the rule documents the batch
was generated from:

- ARM templates: the strings ARM would evaluate are the template's own expression only, and
  the title and description read back exactly after ARM's unescaping;
- Sentinel YAML: it loads (no key written twice) with the title, the description (plus the
  final line break of a literal block), the query of the .kql file, and the entity mappings and
  custom details the rule wrote;
- Markdown: a `deploy` plan and a `diff` comment of the batch's rules, rendered as GitHub does,
  hold no live mention or reference, and each title stays on its one line;
- console lines: the same plan and diff as text, and every diagnostic, hold no line a CI
  runner would take as a command, and no hidden character.

Each returns (output path or rule file, problem) pairs.
"""

from __future__ import annotations

import json

import yaml

from ..console import one_line
from ..diagnostics import format_text
from ..render.readback import StrictLoader, arm_literal, arm_strings, block_text
from ..verbs.deploy.plan import CREATE, Change, Plan
from ..verbs.deploy.report import render_markdown as plan_markdown, render_text as plan_text
from ..verbs.diff.compare import FileDiff, RuleChange, RuleDiff, unified_diff
from ..verbs.diff.report import render_markdown as diff_markdown, render_text as diff_text
from .readers import live_mentions, runner_commands

ARM_OWN = {"[format('Microsoft.OperationalInsights/workspaces/{0}', parameters('workspace'))]"}


def deployable_problems(outputs, documents: dict[str, dict]) -> list[tuple[str, str]]:
    """ARM and Sentinel YAML read back as built. `documents`: rule id → its generated document."""
    found = []
    for path, text in sorted(outputs.files.items()):
        if not path.startswith(("arm/", "sentinel/")):
            continue
        try:
            problem = _arm(text, documents) if path.startswith("arm/") else _yaml(path, text, outputs.files, documents)
        except Exception as error:  # any failure to read an output back is a finding
            problem = f"{type(error).__name__}: {error}"
        if problem:
            found.append((path, problem))
    return found


def _arm(text: str, documents: dict[str, dict]) -> str | None:
    document = json.loads(text)
    expressions = {value for _, value in arm_strings(document) if arm_literal(value) is None}
    if expressions - ARM_OWN:
        return f"ARM would evaluate {sorted(expressions - ARM_OWN)[0][:80]!r}"
    resource = document["resources"][0]
    rule = documents[arm_literal(resource["name"])]
    properties = resource["properties"]
    if arm_literal(properties["displayName"]) != rule["title"]:
        return "the title does not read back"
    if arm_literal(properties["description"]) != _description(rule):
        return "the description does not read back"
    return None


def _description(rule: dict) -> str:
    """The description as a rule holds it (white space around it dropped), else the title."""
    return str(rule.get("description") or "").strip() or rule["title"]


def _yaml(path: str, text: str, files: dict[str, str], documents: dict[str, dict]) -> str | None:
    loaded = yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader that refuses duplicate keys)
    rule = documents[loaded["id"]]
    if loaded["name"] != rule["title"]:
        return "the title does not read back"
    if loaded["description"] != block_text(_description(rule)):
        return "the description does not read back"
    kql = files.get("kql/" + path.removeprefix("sentinel/").removesuffix(".yaml") + ".kql")
    if kql is not None and loaded["query"].rstrip("\n") != kql.rstrip("\n"):
        return "the query differs from the .kql file"
    settings = rule.get("sentinel") or {}
    if "entityMappings" in settings:
        written = [(m["entityType"], [f["identifier"] for f in m["fieldMappings"]]) for m in loaded["entityMappings"]]
        wanted = [(m["entityType"], [f["identifier"] for f in m["fieldMappings"]]) for m in settings["entityMappings"]]
        if written != wanted:
            return f"entity mappings {written} are not the rule's {wanted}"
    if "customDetails" in settings and set(loaded.get("customDetails") or {}) != set(settings["customDetails"]):
        return "the custom details are not the rule's"
    return None


def reader_problems(outputs, documents: dict[str, dict]) -> list[tuple[str, str]]:
    """The batch's rules in a plan and a diff, as Markdown and as text, and the diagnostics."""
    entries = outputs.manifest["rules"]
    plan = Plan("sentinel", "fuzz", [Change(CREATE, e["id"], e["title"], e["source"]) for e in entries])
    added = [
        RuleChange("added", e["id"], e["title"], e["source"],
                   diffs=[FileDiff(None, p, unified_diff("", outputs.files[p], None, p)) for p in e["files"] if p.endswith(".kql")],
                   new_diagnostics=[d for d in outputs.diagnostics if d.location.path == e["source"]])
        for e in entries
    ]
    diff = RuleDiff("rules", _Base(), added, [], [], 0, list(outputs.diagnostics), [])
    found = []
    for name, markdown in (("deploy plan (markdown)", plan_markdown(plan)), ("diff (markdown)", diff_markdown(diff))):
        found += [(name, f"live mention or reference: {m!r}") for m in live_mentions(markdown)[:3]]
        found += [(name, f"a command line: {line[:80]!r}") for line in runner_commands(markdown)[:3]]
    for name, text in (("deploy plan (text)", plan_text(plan)), ("diff (text)", diff_text(diff)),
                       ("diagnostics (text)", format_text(outputs.diagnostics))):
        found += [(name, f"a command line: {line[:80]!r}") for line in runner_commands(text)[:3]]
        found += [(name, f"a hidden character in {line[:80]!r}") for line in text.split("\n") if not line.isprintable()][:3]
    for name, text in (("deploy plan (text)", plan_text(plan)), ("diff (text)", diff_text(diff))):
        lines = text.split("\n")
        found += [(name, f"the title {e['title'][:60]!r} is not on one line") for e in entries
                  if not any(one_line(" ".join(e["title"].split())) in line or one_line(e["title"]) in line for line in lines)][:3]
    return found


class _Base:
    @staticmethod
    def describe(code=None) -> str:
        return "base"
