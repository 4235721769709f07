"""The beta field × rule grid of a rule pack as SVG, written directly (no plotting library).

Rows are the beta fields the rules match on, columns the rules (by short name), a filled cell
a rule that uses the field. Text is monospace so its width can be computed without fonts;
coordinates are integers, so the bytes are the same on every machine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

if TYPE_CHECKING:
    from .views import Coverage

CELL = 18  # pitch of the grid; a cell is CELL - 2 wide
CHAR = 8  # width of a 12px monospace character, rounded up
MARGIN = 12
COLOURS = {"detection": "#2f7d32", "correlation": "#6a3d9a", "empty": "#e8e8e8", "text": "#222222"}
TITLE = "Beta fields (rows) each rule (columns) uses"
LEGEND = (("detection", "matched in the condition"), ("correlation", "grouped or counted by a correlation"))


def _text(x: int, y: int, text: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x}" y="{y}" text-anchor="{anchor}"{extra}>{escape(text)}</text>'


def render_svg(coverage: Coverage) -> str:
    rules = list(coverage.rules)
    fields = coverage.by_field()
    label_width = CHAR * max([len(f) for f in fields] + [8]) + 8
    header = CHAR * max([len(r.key) for r in rules] + [4]) + 8
    x0, y0 = MARGIN + label_width, MARGIN + 24 + header
    count_width = CHAR * 4
    legend = sum(CELL + 20 + CHAR * len(label) for _, label in LEGEND)
    width = max(x0 + CELL * len(rules) + count_width, CHAR * len(TITLE), legend) + MARGIN
    height = y0 + CELL * len(fields) + 44
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" '
        f'font-size="12" fill="{COLOURS["text"]}">',
        f"<title>{escape(TITLE)}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        _text(MARGIN, MARGIN + 12, TITLE, extra=' font-weight="bold"'),
    ]
    for column, rule in enumerate(rules):
        x = x0 + column * CELL + CELL // 2 + 4
        parts.append(_text(x, y0 - 6, rule.key, extra=f' transform="rotate(-90 {x} {y0 - 6})"'))
    parts.append(_text(x0 + CELL * len(rules) + 4, y0 - 6, "rules"))
    for row, (path, users) in enumerate(fields.items()):
        y = y0 + row * CELL
        parts.append(_text(x0 - 8, y + 13, path, anchor="end"))
        for column, rule in enumerate(rules):
            used = rule in users
            colour = COLOURS["empty"] if not used else COLOURS["detection" if rule.kind == "detection" else "correlation"]
            cell = f'<rect x="{x0 + column * CELL}" y="{y}" width="{CELL - 2}" height="{CELL - 2}" fill="{colour}"'
            parts.append(f"{cell}><title>{escape(f'{path}: {rule.key}')}</title></rect>" if used else f"{cell}/>")
        parts.append(_text(x0 + CELL * len(rules) + 4, y + 13, str(len(users))))
    legend_y = y0 + CELL * len(fields) + 22
    x = MARGIN
    for kind, label in LEGEND:
        parts.append(f'<rect x="{x}" y="{legend_y - 12}" width="{CELL - 2}" height="{CELL - 2}" fill="{COLOURS[kind]}"/>')
        parts.append(_text(x + CELL + 4, legend_y, label))
        x += CELL + 20 + CHAR * len(label)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"

