"""The generated reference pages under docs/reference/ are up to date with schemas/."""

from __future__ import annotations

from pathlib import Path

import pytest
from entra_sigma.dev.docs import FIELDS_PAGE, MAPPINGS_PAGE, cell, render_docs, table_order
from entra_sigma.map.tables import Registry
from entra_sigma.validate.catalog import default_catalog

ROOT = Path(__file__).resolve().parents[1]
HINT = "run `python -m compiler.dev.docs` to regenerate docs/reference/"


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return render_docs()


def test_render_docs_is_deterministic(pages):
    assert render_docs() == pages
    assert set(pages) == {FIELDS_PAGE, MAPPINGS_PAGE}
    for relative, content in pages.items():
        assert "\r" not in content and content.endswith("\n") and not content.endswith("\n\n"), relative


@pytest.mark.parametrize("relative", [FIELDS_PAGE, MAPPINGS_PAGE])
def test_committed_docs_equal_generated_output(pages, relative):
    committed = ROOT / relative
    assert committed.is_file(), f"{relative} is missing: {HINT}"
    assert committed.read_text(encoding="utf-8") == pages[relative], f"{relative} is out of date: {HINT}"


def test_cells_are_single_line_and_escape_pipes():
    assert cell("a | b\n  c") == r"a \| b c"
    assert cell(None) == ""


def test_fields_page_lists_every_path_and_enum(pages):
    catalog = default_catalog()
    text = pages[FIELDS_PAGE]
    for path in catalog.fields:
        assert f"| `{path}` |" in text, path
    for name in catalog.enums:
        assert f"### Enum `{name}`" in text, name
    assert "the tables write them as `primaryRefreshToken, refreshToken`" in text
    assert "## What real rows show" in text
    assert "| `deviceDetail.isManaged` | false is written as absence" in text


def test_mappings_page_has_one_row_per_path_and_a_column_per_table(pages):
    registry = Registry.bundled()
    order = table_order(registry)
    assert order[:4] == ["SigninLogs", "AADNonInteractiveUserSignInLogs",
                         "AADServicePrincipalSignInLogs", "AADManagedIdentitySignInLogs"]
    assert set(order[4:]) == {"EntraIdSignInEvents", "AADSignInEventsBeta", "EntraIdSpnSignInEvents"}
    text = pages[MAPPINGS_PAGE]
    header = next(line for line in text.splitlines() if line.startswith("| Path |"))
    assert header == "| Path | " + " | ".join(f"`{t}`" for t in order) + " |"
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == len(default_catalog().fields)
    assert all(row.count(" | ") == len(order) for row in rows)
    assert "| `status.errorCode` | `ResultType` |" in text
    assert "`todynamic(DeviceDetail).isManaged` (JSON text)" in text
    assert "`IsManaged` (1/0)" in text
    assert "| `isInteractive` | `IsInteractive` | constant false |" in text
    assert "- `SigninLogs`: `SignInEventTypes`." in text
    assert "| — (not read: EntraIdSignInEvents.TokenIssuerType became a string column" in text
