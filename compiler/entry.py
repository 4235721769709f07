"""The `entra-sigma` console script: import the command line, then run it.

Importing pySigma, jsonschema and Jinja takes most of a second; a Ctrl-C in that time would
otherwise print a traceback. Here it ends the command quietly, with the shell's usual 130.
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from .cli import main as run

        run()
    except KeyboardInterrupt:
        sys.stderr.write("entra-sigma: interrupted\n")
        sys.exit(130)
