"""Coverage of a rule pack: which beta fields, tables and ATT&CK techniques its rules cover.

Everything is read from the compiler, never from the YAML by hand: fields from each rule's
IR condition (a correlation rule: the fields it groups and counts by), tables from the
compiled Sentinel and Defender queries, tactics and techniques from the ATT&CK tags read the
way `render/settings.py` reads them, against `schemas/attack.json`. The views (the Markdown catalog,
an ATT&CK Navigator layer, the field × rule grid in `verbs/coverage/svg.py`) are deterministic.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ...build import Compiler, rule_output_name
from ...diagnostics import Diagnostic
from ...load.loader import load_documents
from ...model import ir
from ...model.rule import Rule
from ...render.markdown import code_span, table_cell
from ...render.renderer import Renderer
from ...render.settings import attack_data, attack_tags
from .svg import render_svg

PAGE_TEMPLATE = "docs/catalog.md.j2"
STANDARD_OUTPUT = Path("-")  # an output file named `-` is standard output
NAVIGATOR_VERSION, LAYER_VERSION = "5.2.0", "4.5"  # the Navigator release that reads layer format 4.5 on ATT&CK v18
GRADIENT = ("#ffe766", "#8ec843", "#2f7d32")  # few rules → many rules


# -- ATT&CK ----------------------------------------------------------------------------------
class Attack:
    """ATT&CK data as the deployment step reads it: tactics by tag, techniques with their tactics."""

    def __init__(self, data: dict):
        self.tactics = {t["shortname"]: t for t in data["tactics"]}
        self.order = [t["shortname"] for t in data["tactics"]]
        self.techniques: dict[str, dict] = data["techniques"]
        found = re.search(r"(\d+(?:\.\d+)?)", data.get("source", {}).get("attackVersion", ""))
        self.version = found.group(1) if found else ""

    @classmethod
    def bundled(cls) -> "Attack":
        return cls(attack_data())

    def tactic_name(self, shortname: str) -> str:
        """'command-and-control' → 'Command and Control', as ATT&CK writes tactic names."""
        return " ".join(w if w == "and" else w.capitalize() for w in shortname.split("-"))

    def technique_name(self, technique: str) -> str:
        """'T1110.003' → 'Brute Force: Password Spraying'; empty for an unknown technique."""
        own = self.techniques.get(technique, {}).get("name", "")
        parent = technique.split(".")[0]
        if own and parent != technique and parent in self.techniques:
            return f"{self.techniques[parent]['name']}: {own}"
        return own

    def classify(self, tags: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[tuple[str, str | None], ...]]:
        """(tactic shortnames in ATT&CK order, (technique, tactic) pairs) of a rule's tags.
        A technique is placed under each listed tactic it belongs to; under None when the
        rule lists none of them (`validate` reports that as E302)."""
        listed_tactics, tagged = attack_tags(tags, {short.replace("-", "_"): short for short in self.tactics})
        tactics = set(listed_tactics)
        pairs = []
        for technique in sorted({technique for _, technique in tagged}):
            own = self.techniques.get(technique, {}).get("tactics", [])
            listed = [t for t in self.order if t in tactics and t in own]
            pairs += [(technique, t) for t in listed] or [(technique, None)]
        return tuple(t for t in self.order if t in tactics), tuple(pairs)


# -- the model -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RuleCoverage:
    key: str  # unique short name: the file's path below its folder, without suffix
    title: str
    level: str
    file: Path
    kind: str  # "detection", or the correlation type (event_count, temporal, ...)
    standalone: bool  # False: only a building block of correlations
    tactics: tuple[str, ...]  # shortnames, ATT&CK order
    pairs: tuple[tuple[str, str | None], ...]  # (technique, tactic)
    fields: tuple[str, ...]  # beta paths, sorted
    correlates: tuple[str, ...]  # keys of the correlated rules
    sentinel: tuple[str, ...]  # tables, in query order
    defender: tuple[str, ...]
    defender_gap: str  # why there is no Defender query

    @property
    def techniques(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for t, _ in self.pairs))


@dataclass(frozen=True)
class Coverage:
    rules: tuple[RuleCoverage, ...]
    attack: Attack
    catalog_size: int  # beta paths in the catalog
    files: int = 0  # rule files read, for the error summary

    def by_field(self) -> dict[str, list[RuleCoverage]]:
        fields: dict[str, list[RuleCoverage]] = {}
        for rule in self.rules:
            for path in rule.fields:
                fields.setdefault(path, []).append(rule)
        return dict(sorted(fields.items()))

    def alerting(self) -> list[RuleCoverage]:
        """The rules that raise alerts: building blocks of correlations do not."""
        return [r for r in self.rules if r.standalone]

    def by_technique(self) -> dict[tuple[str | None, str], list[RuleCoverage]]:
        """(tactic, technique) → alerting rules, tactics in ATT&CK order (None last), then technique."""
        found: dict[tuple[str | None, str], list[RuleCoverage]] = {}
        for rule in self.alerting():
            for technique, tactic in rule.pairs:
                found.setdefault((tactic, technique), []).append(rule)
        order = {t: i for i, t in enumerate(self.attack.order)}
        return dict(sorted(found.items(), key=lambda item: (order.get(item[0][0], len(order)), item[0][1])))

    def counts(self) -> dict[str, int]:
        return {
            "rules": len(self.rules),
            "correlations": sum(1 for r in self.rules if r.kind != "detection"),
            "fields": len(self.by_field()),
            "catalog": self.catalog_size,
            "techniques": len({t for r in self.alerting() for t in r.techniques}),
            "tactics": len({t for r in self.alerting() for t in r.tactics}),
            "sentinel": sum(1 for r in self.rules if r.sentinel),
            "defender": sum(1 for r in self.rules if r.defender),
        }

    def summary(self) -> str:
        n = self.counts()
        return (
            f"{n['rules']} rule(s), {n['correlations']} of them correlation(s); "
            f"{n['fields']} of {n['catalog']} beta fields; "
            f"{n['techniques']} ATT&CK technique(s) in {n['tactics']} tactic(s); "
            f"{n['sentinel']} with a Sentinel query, {n['defender']} with a Defender query"
        )


def condition_fields(rule: Rule) -> tuple[str, ...]:
    """The beta paths a rule matches on; for a correlation, those it groups and counts by."""
    correlation = rule.correlation
    if correlation is None:
        matches = list(ir.walk_matches(rule.condition)) if rule.condition is not None else []
        paths = [m.field for m in matches] + [m.value for m in matches if m.op == "fieldref"]
        return tuple(sorted(set(paths)))
    return tuple(sorted(correlation.beta_paths()))


def rule_keys(rules: list[Rule], roots: list[Path]) -> dict[int, str]:
    """A unique short name per rule: its output name (`identity/prt`). When one file holds
    several rules (a correlation and the rules it correlates), each rule with a Sigma `name`
    adds it (`spray/wrong_password`); one unnamed rule keeps the bare name, several add their
    document number."""
    groups: dict[str, list[Rule]] = {}
    for rule in rules:
        groups.setdefault(rule_output_name(rule, roots), []).append(rule)
    keys = {}
    for base, group in groups.items():
        unnamed = [id(r) for r in group if not isinstance(r.data.get("name"), str)]
        for rule in group:
            name = rule.data.get("name")
            if len(group) == 1 or unnamed == [id(rule)]:
                keys[id(rule)] = base
            else:
                keys[id(rule)] = f"{base}/{name if isinstance(name, str) else rule.document.index + 1}"
    return _distinct(keys, rules)


def _distinct(keys: dict[int, str], rules: list[Rule]) -> dict[int, str]:
    """Keys still shared (x.yml in two folders given as roots or files): the path as shown in
    diagnostics, then a running number."""
    counts: dict[str, int] = {}
    for key in keys.values():
        counts[key] = counts.get(key, 0) + 1
    seen: set[str] = set()
    for rule in rules:
        key = keys[id(rule)]
        if counts[key] > 1:
            key = f"{rule.source}#{rule.document.index + 1}"
        number, unique = 1, key
        while unique in seen:
            number += 1
            unique = f"{key}~{number}"
        seen.add(unique)
        keys[id(rule)] = unique
    return keys


def collect(compiler: Compiler, paths: list[Path]) -> tuple[Coverage, list[Diagnostic]]:
    """Load, validate and compile every rule for both platforms. A Defender gap is not a
    problem here (it is a column of the catalog); every other diagnostic is returned."""
    documents, diagnostics = load_documents(paths)
    rules, problems = compiler.rules(documents)
    diagnostics += problems
    attack = Attack.bundled()
    keys = rule_keys(rules, paths)
    by_id = {rule.id: keys[id(rule)] for rule in rules}
    entries = []
    for rule in rules:
        compiled, problems = compiler.compile_rule(rule, ("sentinel", "defender"))
        diagnostics += [d for d in problems if d.target != "defender"]
        gap = "" if "defender" in compiled.queries else "; ".join(dict.fromkeys(
            d.message for d in problems if d.target == "defender" and d.severity == "error"
        ))
        correlation = rule.correlation
        tactics, pairs = attack.classify(rule.tags)
        entries.append(RuleCoverage(
            key=keys[id(rule)], title=rule.title, level=rule.level, file=rule.document.path,
            kind=correlation.type if correlation is not None else "detection",
            standalone=rule.standalone,
            tactics=tactics, pairs=pairs, fields=condition_fields(rule),
            correlates=tuple(by_id.get(r.id, r.id) for r in correlation.rules) if correlation is not None else (),
            sentinel=tuple(compiled.queries["sentinel"].tables) if "sentinel" in compiled.queries else (),
            defender=tuple(compiled.queries["defender"].tables) if "defender" in compiled.queries else (),
            defender_gap=gap or ("" if "defender" in compiled.queries else "no query"),
        ))
    entries.sort(key=lambda e: e.key)
    files = len({d.location.path for d in diagnostics if d.code in ("E000", "E001")} | {d.display_path for d in documents})
    return Coverage(tuple(entries), attack, len(compiler.catalog.fields), files), diagnostics


# -- views -----------------------------------------------------------------------------------
def relative_link(target: Path, page: Path) -> str:
    """A link target relative to the page, percent-encoded: a file name with a space, `)` or
    `@` could otherwise end the link and leave its text live (a mention)."""
    return quote(Path(os.path.relpath(target.resolve(), page.resolve().parent)).as_posix())


def technique_url(technique: str) -> str:
    return "https://attack.mitre.org/techniques/" + technique.replace(".", "/") + "/"


def page_context(coverage: Coverage, page: Path, image: Path | None) -> dict:
    """Plain values for the catalog template: links made relative to the page."""
    attack = coverage.attack

    def technique(tid: str) -> dict:
        return {"id": tid, "url": technique_url(tid), "name": attack.technique_name(tid) or "not in this ATT&CK version"}

    rules = [{
        "key": r.key, "title": r.title, "level": r.level, "link": relative_link(r.file, page),
        "kind": r.kind, "standalone": r.standalone, "correlates": list(r.correlates),
        "tactics": [attack.tactic_name(t) for t in r.tactics],
        "techniques": [technique(t) for t in r.techniques],
        "fields": list(r.fields), "sentinel": list(r.sentinel), "defender": list(r.defender), "gap": r.defender_gap,
    } for r in coverage.rules]
    fields = [{"field": f, "rules": [r.key for r in rs]} for f, rs in coverage.by_field().items()]
    techniques = [{
        "tactic": attack.tactic_name(tactic) if tactic else "(no listed tactic)",
        **technique(tid), "rules": [r.key for r in rs],
    } for (tactic, tid), rs in coverage.by_technique().items()]
    return {
        "rules": rules, "fields": fields, "techniques": techniques, "counts": coverage.counts(),
        "attack_version": attack.version,
        "image": relative_link(image, page) if image is not None else None,
    }


def render_markdown(coverage: Coverage, page: Path, image: Path | None, templates: Path | None = None) -> str:
    renderer = Renderer(templates)
    renderer.environment.filters.update(md=table_cell, code=code_span)
    return renderer.render(PAGE_TEMPLATE, **page_context(coverage, page, image))


def navigator_layer(coverage: Coverage, name: str = "entra-sigma rules") -> dict:
    """An ATT&CK Navigator layer (format 4.5): one entry per technique and tactic the rules
    tag, scored by how many rules do, with their titles as the comment."""
    entries = []
    for (tactic, technique), rules in coverage.by_technique().items():
        if technique not in coverage.attack.techniques:
            continue  # the Navigator would drop it; `validate` reports it (E301)
        entry = {"techniqueID": technique}
        if tactic:
            entry["tactic"] = tactic
        entry.update(score=len(rules), comment="; ".join(r.title for r in rules))
        entries.append(entry)
    entries.sort(key=lambda e: (e["techniqueID"], e.get("tactic", "")))
    top = max([e["score"] for e in entries], default=1)
    return {
        "name": name,
        "versions": {"attack": coverage.attack.version.split(".")[0], "navigator": NAVIGATOR_VERSION, "layer": LAYER_VERSION},
        "domain": "enterprise-attack",
        "description": f"Generated by entra-sigma coverage: {coverage.summary()}",
        "sorting": 3,
        "layout": {"layout": "side", "showID": True, "showName": True, "expandedSubtechniques": "annotated"},
        "hideDisabled": False,
        "techniques": entries,
        "gradient": {"colors": list(GRADIENT), "minValue": 0, "maxValue": max(top, 1)},
        "legendItems": [],
        "showTacticRowBackground": False,
        "selectTechniquesAcrossTactics": True,
        "selectSubtechniquesWithParent": False,
        "selectVisibleTechniques": False,
        "metadata": [{"name": "generator", "value": "entra-sigma coverage"}],
    }


def navigator_json(coverage: Coverage) -> str:
    return json.dumps(navigator_layer(coverage), indent=2, ensure_ascii=False) + "\n"


# -- files -----------------------------------------------------------------------------------
def coverage_files(
    coverage: Coverage, markdown: Path | None = None, navigator: Path | None = None, svg: Path | None = None,
    templates: Path | None = None,
) -> dict[Path, str]:
    """The requested views by output path (`-` is standard output); the catalog page shows
    the SVG when both are asked for and the SVG goes to a file."""
    files = {}
    if markdown is not None:
        image = svg if svg != STANDARD_OUTPUT else None
        files[markdown] = render_markdown(coverage, markdown, image, templates)
    if navigator is not None:
        files[navigator] = navigator_json(coverage)
    if svg is not None:
        files[svg] = render_svg(coverage)
    return files


def stale_files(files: dict[Path, str]) -> list[Path]:
    """The files that are missing or differ from what would be written."""
    return [p for p, text in files.items() if not p.is_file() or p.read_bytes() != text.encode("utf-8")]


def write_files(files: dict[Path, str]) -> None:
    for path, text in files.items():
        if path == STANDARD_OUTPUT:
            sys.stdout.write(text)
            sys.stdout.flush()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
