"""Carry a plan out: a bounded pool of writes, each one independent of the others.

A write that fails (after the pipeline's retries) is recorded on its change and the others go
on; a re-run plans again from what is then deployed, so it finishes the job. A write refused
because the rule changed since it was read (ETag, precondition, or a moved
lastModifiedDateTime) is re-read: if what the service holds is exactly what we meant to
write, an earlier try of ours landed and lost its answer; otherwise the change is reported
and nothing is overwritten.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .content import field_changes
from .pipeline import RequestFailed
from .plan import CREATE, DELETE, DRIFT, Change, Outcome, Plan
from .rules import Conflict, DeployedRule

DONE = {CREATE: "created", DRIFT: "restored", DELETE: "deleted"}


def apply_plan(plan: Plan, target, concurrency: int) -> None:
    """Set `outcome` on every change that writes."""
    writes = [change for change in plan.changes if change.writes]
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for change, outcome in zip(writes, pool.map(lambda c: apply_change(target, c), writes)):
            change.outcome = outcome
    plan.applied = True


def apply_change(target, change: Change) -> Outcome:
    done = DONE.get(change.action, "updated")
    try:
        if change.action == CREATE:
            stored = target.create(change.desired)
        elif change.action == DELETE:
            target.delete(change.deployed)
            return Outcome(done)
        else:
            stored = target.update(change.desired, change.deployed)
    except Conflict as conflict:
        return after_conflict(target, change, done, str(conflict))
    except RequestFailed as failure:
        return Outcome("failed", "E601", f"{failure.method} failed: {failure.answer()}")
    return Outcome(done, warnings=stored_differs(change, stored))


def is_written(change: Change, current: DeployedRule | None) -> bool:
    """The service holds exactly what this change writes."""
    if change.action == DELETE:
        return current is None
    return (
        current is not None and current.ours and current.content == change.desired.content
        and current.marker.digest == change.desired.digest
    )


def after_conflict(target, change: Change, done: str, message: str) -> Outcome:
    try:
        current = target.read(change.id)
    except RequestFailed as failure:
        return Outcome("conflict", "E602", f"{message}; reading it again failed: {failure.answer()}")
    if is_written(change, current):
        return Outcome(done)
    if current is None:
        now = "it has been deleted"
    elif not current.ours:
        now = "it is now a rule entra-sigma did not create"
    else:
        before = change.deployed.content if change.deployed is not None else {}
        paths = [c.path for c in field_changes(before, current.content)] or ["the marker"]
        now = f"changed since it was read: {', '.join(paths)}"
    return Outcome("conflict", "E602", f"{message}; {now}. Nothing was overwritten: plan again to see the rule as it is now")


def stored_differs(change: Change, stored: DeployedRule | None) -> list[tuple[str, str]]:
    """W601 when the service's answer holds other values than were sent: the next plan would
    show them as changes (the service rewrites them)."""
    if stored is None:
        return []
    paths = [c.path for c in field_changes(change.desired.content, stored.content)]
    if not stored.ours:
        paths.append("description (the marker)")
    if not paths:
        return []
    return [("W601", f"the service stored other values than were sent for {', '.join(paths)}")]
