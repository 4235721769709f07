"""entra-sigma: Sigma rules on Microsoft Graph beta signIn fields → KQL.

Pipeline: load → validate → model → map → convert → render → write, one package per step
(write.py alone); build.py drives it, cli.py holds the verbs, verbs/ what they add, dev/ the
maintainers' commands.
"""

__version__ = "0.1.0"
