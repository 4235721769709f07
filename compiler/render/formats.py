"""Render step for deployable formats: one entry point per output format.

Each format is a template under templates/ fed with the rule, its query text and the
deployment decisions (render/settings.py). Python decides; templates lay out.
"""

from __future__ import annotations

from dataclasses import dataclass

from .renderer import Renderer
from .settings import Deployment

# format → (platform whose query it embeds, template, folder and suffix in a build)
FORMATS: dict[str, tuple[str, str, str]] = {
    "kql": ("sentinel", "kql/query.kql.j2", "kql/{name}.kql"),
    "sentinel-yaml": ("sentinel", "sentinel/analytics-rule.yaml.j2", "sentinel/{name}.yaml"),
    "arm": ("sentinel", "arm/alert-rule.json.j2", "arm/{name}.json"),
    "defender-hunting": ("defender", "defender/hunting-query.kql.j2", "defender/hunting/{name}.kql"),
    "defender-detection": ("defender", "defender/detection-rule.json.j2", "defender/detections/{name}.json"),
}

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
    _platform, template, layout = FORMATS[fmt]
    if fmt in ("kql", "defender-hunting"):
        text = query_text
    else:
        text = renderer.render(
            template, rule=deployment.rule, d=deployment, query=query_text,
            entities=defender_entities(deployment, returned),
        )
    return Rendered(fmt, layout.format(name=name), text)
