"""The update pipeline: preflight → fetch → verify → backup → maintenance → apply
→ migrate → health → commit, and the rollback when something fails after the
backup. ``steps`` is the table of steps (``rollback.ROLLBACK_STEPS`` the
rollback's), ``runner`` drives a run through it, ``rollback`` undoes,
``recovery`` picks up what a killed worker left, ``reporting`` tells the vendor.
"""

from updates.pipeline.errors import LeaseLost, StepFailed
from updates.pipeline.recovery import Recovery, on_worker_start, recover_runs
from updates.pipeline.runner import drive, execute_run, take_over

__all__ = [
    "LeaseLost",
    "Recovery",
    "StepFailed",
    "drive",
    "execute_run",
    "on_worker_start",
    "recover_runs",
    "take_over",
]
