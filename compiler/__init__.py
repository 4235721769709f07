"""entra-sigma: Sigma rules on Microsoft Graph beta signIn fields → KQL.

Pipeline: load → validate → map → convert → render → write (one module per step).
"""

__version__ = "0.1.0"
