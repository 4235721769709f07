"""Render step for deployable formats: one entry point per output format.

Each format is a template under templates/ fed with the rule, its query text and the
deployment decisions (render/settings.py). Python decides; templates lay out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .settings import MAX_QUERY_LENGTH

if TYPE_CHECKING:  # the renderer reads FORMATS: import it only for the annotations
    from .renderer import Renderer
    from .settings import Deployment

@dataclass(frozen=True)
class OutputFormat:
    """One kind of output file. Every list of formats elsewhere is derived from FORMATS, so a
    new format is one entry here plus its template."""

    name: str
    platform: str  # whose query it embeds (sentinel or defender)
    template: str  # under templates/
    layout: str  # its path in a build; {name} is the rule's output name
    bare: bool = False  # the query text itself: no deployment settings
    max_query: int | None = None  # the longest query the service accepts in this format
    event_rows: bool = False  # the service needs event rows (no correlation) naming an impacted asset
    readback: str | None = None  # how the file is read back before it is written (render/readback.py)


FORMATS: tuple[OutputFormat, ...] = (
    OutputFormat("kql", "sentinel", "kql/query.kql.j2", "kql/{name}.kql", bare=True),
    OutputFormat("sentinel-yaml", "sentinel", "sentinel/analytics-rule.yaml.j2", "sentinel/{name}.yaml",
                 max_query=MAX_QUERY_LENGTH, readback="yaml"),
    OutputFormat("arm", "sentinel", "arm/alert-rule.json.j2", "arm/{name}.json", max_query=MAX_QUERY_LENGTH,
                 readback="arm"),
    OutputFormat("defender-hunting", "defender", "defender/hunting-query.kql.j2", "defender/hunting/{name}.kql", bare=True),
    OutputFormat("defender-detection", "defender", "defender/detection-rule.json.j2", "defender/detections/{name}.json",
                 event_rows=True),
)
BY_NAME = {f.name: f for f in FORMATS}
ALL_FORMATS = tuple(f.name for f in FORMATS)
KQL_FORMATS = tuple(f.name for f in FORMATS if f.bare)  # what a reviewer reads first
QUERY_TEMPLATES = {f.platform: f.template for f in FORMATS if f.bare}  # the query of each platform


def platforms_of(formats: tuple[str, ...]) -> tuple[str, ...]:
    """The platforms whose queries these formats embed, in FORMATS order (Sentinel first)."""
    return tuple(dict.fromkeys(BY_NAME[f].platform for f in formats))


def formats_for(platforms: tuple[str, ...]) -> tuple[str, ...]:
    """Every format of these platforms (an environment without Defender builds Sentinel's only)."""
    return tuple(f.name for f in FORMATS if f.platform in platforms)

# Sentinel entity identifiers → Defender entity mapping columns
DEFENDER_ENTITIES = {
    "Account": ("accounts", {"FullName": "upnColumn", "AadUserId": "aadUserIdColumn", "Name": "nameColumn", "Sid": "sidColumn", "UPNSuffix": "upnSuffixColumn", "NTDomain": "ntDomainColumn", "DnsDomain": "dnsDomainColumn"}),
    "IP": ("ips", {"Address": "addressColumn"}),
    "CloudApplication": ("cloudApplications", {"AppId": "appIdColumn", "Name": "nameColumn"}),
}


@dataclass(frozen=True)
class Rendered:
    format: str
    path: str
    text: str


def defender_entities(deployment: Deployment, returned: set[str]) -> dict[str, list[dict[str, str]]]:
    """Sentinel's entity mappings in Defender's shape, limited to columns the Defender query returns."""
    entities: dict[str, list[dict[str, str]]] = {}
    for mapping in deployment.entity_mappings:
        if mapping.entity_type not in DEFENDER_ENTITIES:
            continue
        key, columns = DEFENDER_ENTITIES[mapping.entity_type]
        item = {columns[i]: column for i, column in mapping.fields if i in columns and column in returned}
        if item:
            entities.setdefault(key, []).append(item)
    return entities


def render_format(
    renderer: Renderer, fmt: str, deployment: Deployment | None, query_text: str, name: str, returned: set[str]
) -> Rendered:
    """One output file. Bare query formats need no deployment settings."""
    spec = BY_NAME[fmt]
    if spec.bare:
        text = query_text
    else:
        text = renderer.render(
            spec.template, rule=deployment.rule, d=deployment, query=query_text,
            entities=defender_entities(deployment, returned),
        )
    return Rendered(fmt, spec.layout.format(name=name), text)


def readback_problem(renderer: Renderer, rendered: Rendered, deployment: Deployment, query_text: str) -> str | None:
    """Why a rendered deployable file does not read back as what it was built from (None: it does)."""
    from .readback import check_arm, check_sentinel_yaml

    spec = BY_NAME[rendered.format]
    if spec.readback is None:
        return None
    source, bundled = renderer.sources(spec.template)
    if spec.readback == "arm":
        return check_arm(rendered.text, deployment, query_text, source)
    return check_sentinel_yaml(rendered.text, deployment, query_text, bundled)
