"""Drive a run through its steps; roll back, finish and report whatever happens.

``execute_run`` is what the beat-fired task calls: it claims the run with the
model's conditional update (so one worker drives it) and drives it;
``take_over`` adopts a run whose worker died. Either way ``drive`` holds the
lease while it works and ends every path in ``ending.finish_run``. An agent
update (``UpdateRun.Kind.AGENT``) is driven by ``updates.selfupdate`` instead:
its first half here, the rest by its own driver container.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

from clms_updates import logcontext, progress
from clms_updates.manifest import HealthCheck
from clms_updates.notify import notify
from updates import scheduling
from updates.models import UpdateRun
from updates.pipeline import rollback
from updates.pipeline.context import Context
from updates.pipeline.ending import finish_run
from updates.pipeline.errors import LeaseLost, NeedsInput, StepFailed
from updates.pipeline.lease import Lease, worker_identity
from updates.pipeline.lease import take_over as take_lease
from updates.pipeline.plan import Plan, plan_for
from updates.pipeline.records import (
    FAILED,
    SKIPPED,
    WAITING,
    begin_step,
    end_step,
    is_done,
    save_checkpoint,
)
from updates.pipeline.steps import UPDATE_POSITIONS, UPDATE_STEPS
from updates.selfupdate import handoff

logger = logging.getLogger(__name__)


def execute_run(run_id: int) -> None:
    """Claim run ``run_id`` and drive it to an end state.

    A run that is not scheduled (cancelled, finished, or being driven) is left
    alone, except one whose worker died: that one is taken over.
    """
    run = UpdateRun.claim(run_id)
    if run is None:
        if not take_over(run_id):
            logger.info("Run %s is not scheduled (cancelled, taken or over)", run_id)
        return
    # A fresh attempt starts from scratch: an earlier attempt that was retried
    # changed nothing, and its backup is too old to protect today's data.
    run.steps = []
    run.checkpoint = {}
    run.backup_id = None
    run.save(update_fields=["steps", "checkpoint", "backup_id"])
    drive(run)


def take_over(run_id: int, owner: str | None = None) -> bool:
    """Adopt run ``run_id`` if its worker is gone and drive it on; True if taken."""
    owner = owner or worker_identity()
    run = take_lease(run_id, owner)
    if run is None:
        return False
    if run.kind == UpdateRun.Kind.AGENT:
        # Its driver (a container of its own) carries it; start it again if gone.
        return handoff.recover(run)
    logger.warning(
        "Run %s was left %s in step %s by a worker that stopped; taking it over",
        run.pk,
        run.state,
        run.current_step or "?",
    )
    drive(run, owner=owner, resumed=True)
    return True


def drive(run: UpdateRun, *, owner: str | None = None, resumed: bool = False) -> None:
    """Run every step not done yet, or the rollback; then finish the run."""
    with (
        logcontext.bind(run_id=run.pk, release=run.to_version),
        Lease(run, owner) as lease,
    ):
        try:
            _drive(run, lease, resumed=resumed)
        except LeaseLost:
            logger.warning("Run %s: another worker took over; stopping here", run.pk)


def _drive(run: UpdateRun, lease: Lease, *, resumed: bool) -> None:
    """Prepare the context, guard a resume, then run the steps in their order."""
    if run.kind == UpdateRun.Kind.AGENT:
        handoff.drive_agent_run(run, lease)
        return
    ctx = _prepare(run, lease)
    if ctx is None:
        return
    if run.state == UpdateRun.State.ROLLING_BACK:
        _roll_back(ctx)
        return
    if resumed and not _resume_allowed(ctx):
        return
    current = ""
    try:
        for step in UPDATE_STEPS:
            if is_done(run, step.name):
                continue
            ctx.check_lease()
            current = step.name
            _run_step(ctx, step.name)
        progress.publish(
            run, f"CLMS {ctx.plan.to_version} is installed and healthy", percent=100
        )
        run.succeed()
        notify("run_succeeded", {"run": run}, key=f"run {run.pk}", email=False)
    except LeaseLost:
        raise
    except NeedsInput as e:
        _wait_for_input(run, current, e)
        return
    except StepFailed as e:
        _record_failure(run, current, e)
        _on_failure(ctx, e)
        return
    except Exception as e:  # a bug or a lost database: roll back if anything changed
        logger.exception("Run %s failed unexpectedly in %s", run.pk, current)
        failure = StepFailed(
            "internal_error",
            f"Unexpected error in {current or 'the pipeline'}: {type(e).__name__}: "
            f"{e}. See the agent's log.",
        )
        try:
            _record_failure(run, current, failure)
        except Exception:
            logger.exception("Could not record the failure of run %s", run.pk)
            raise e from None
        _on_failure(ctx, failure)
        return
    finish_run(run)


def _prepare(run: UpdateRun, lease: Lease) -> Context | None:
    """The run's context; without a plan, fail it (or undo what it changed)."""
    try:
        plan = plan_for(run)
    except StepFailed as e:
        if run.state == UpdateRun.State.RUNNING and not run.checkpoint.get("changed"):
            run.fail(e.code, e.message)
            finish_run(run)
            return None
        # Undoing needs no release: the old images are in the checkpoint.
        ctx = Context(run=run, plan=Plan(run.from_version, {}, HealthCheck(), None))
        ctx.lease = lease
        if run.state == UpdateRun.State.RUNNING:
            _fail_and_roll_back(ctx, e)
        else:
            _roll_back(ctx)
        return None
    return Context(run=run, plan=plan, lease=lease)


def _resume_allowed(ctx: Context) -> bool:
    """A run resumed after a crash goes on, unless it crashed too often (rolled back)."""
    run = ctx.run
    resumes = int(run.checkpoint.get("resumes", 0)) + 1
    save_checkpoint(run, resumes=resumes)
    step = run.current_step or "?"
    progress.publish(run, f"Resuming after the worker stopped during {step}")
    if resumes > settings.UPDATES_MAX_RESUMES and run.checkpoint.get("changed"):
        _fail_and_roll_back(
            ctx,
            StepFailed(
                "worker_lost",
                f"The worker driving this run stopped {resumes} times (last "
                f"during {step}); the update is rolled back rather than retried "
                "again.",
            ),
        )
        return False
    return True


def _run_step(ctx: Context, name: str) -> None:
    position = UPDATE_POSITIONS[name]
    logcontext.set_field("step", name)
    ctx.position = position
    ctx.step_started = time.monotonic()
    begin_step(
        ctx.run,
        name,
        position.step.message,
        percent=position.start_percent,
        eta_seconds=ctx.eta_seconds(),
    )
    detail = position.step.run(ctx)
    if detail is None:
        end_step(ctx.run, name, f"{name}: nothing to do", status=SKIPPED)
    else:
        end_step(
            ctx.run,
            name,
            f"{name}: {detail}",
            detail=detail,
            percent=position.percent_at(1.0),
        )


def _record_failure(run: UpdateRun, step: str, failure: StepFailed) -> None:
    end_step(
        run,
        step,
        f"{step} failed: {failure.message}",
        status=FAILED,
        detail=failure.message,
    )


def _wait_for_input(run: UpdateRun, step: str, needs: NeedsInput) -> None:
    """The release needs settings: the run waits (it keeps its slot), admins are told."""
    end_step(run, step, str(needs), status=WAITING, detail=str(needs))
    run.wait_for_input(str(needs))
    notify(
        "needs_input",
        {"run": run, "missing": needs.missing, "version": run.to_version},
        key=f"run {run.pk}",
    )


def _on_failure(ctx: Context, failure: StepFailed) -> None:
    run = ctx.run
    if run.checkpoint.get("changed"):
        _fail_and_roll_back(ctx, failure)
        return
    if failure.transient and scheduling.retry_or_fail(
        run, failure.code, failure.message
    ):
        logger.info("Run %s: %s; retry planned", run.pk, failure.message)
        return
    if run.state == UpdateRun.State.RUNNING:
        run.fail(failure.code, failure.message)
    finish_run(run)


def _fail_and_roll_back(ctx: Context, failure: StepFailed) -> None:
    rollback.start(ctx.run, failure.code, failure.message)
    _roll_back(ctx)


def _roll_back(ctx: Context) -> None:
    run = ctx.run
    try:
        rollback.roll_back(ctx)
    except rollback.RollbackFailed as e:
        run.fail(
            "rollback_failed",
            f"{run.error_code}: {run.error_message} Then the rollback failed: {e}",
        )
    else:
        run.finish_rollback()
    finish_run(run)
