"""Where the project's committed data lives (read at run time, never ../shared).

Installed from a wheel, `schemas/`, `templates/` and the bundled `rules/` sit inside the
`entra_sigma` package; in a checkout (and an editable install) they sit beside `compiler/`.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_ROOT = PACKAGE_DIR if (PACKAGE_DIR / "schemas").is_dir() else PACKAGE_DIR.parent
SCHEMAS_DIR = DATA_ROOT / "schemas"
TEMPLATES_DIR = DATA_ROOT / "templates"
RULE_PACK_DIR = DATA_ROOT / "rules"

# The checkout, for maintainers' commands in compiler/dev (they regenerate files in the repository).
PROJECT_ROOT = PACKAGE_DIR.parent
