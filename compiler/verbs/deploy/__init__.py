"""The `deploy` and `schema pull` verbs: talk to Sentinel, Defender and Log Analytics.

A verb over the compiler, not a step of it: `desired.py` takes what `build` writes, the API
clients (`sentinel.py`, `defender.py`, over `pipeline.py`) read what is deployed, `plan.py`
compares the two, `apply.py` carries the plan out, and `report.py` prints it.
"""
