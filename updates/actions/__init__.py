"""Every change a person or a schedule makes to the school agent: one function each.

Pages, API views, management commands, beat tasks and the bundle flow parse
their input and call one of these; each checks every rule (``rules``),
changes what it changes in one transaction with its audit entry, and queues
its work on commit. A refusal is an ``ActionRefused`` naming the field, the
rule and what to do; nothing has changed then.

- runs: ``schedule_update``, ``update_now``, ``apply_bundle``, ``cancel_run``,
  ``roll_back`` (and ``plan_schedule`` / ``plan_update_now`` /
  ``plan_roll_back`` to show a confirmation, or why not, before doing it);
- critical deadlines: ``grant_override``, ``revoke_override``,
  ``move_critical_update``, ``plan_critical_update`` and ``enforcement_tick``
  (beat), ``expire_overrides``;
- the agent: ``check_for_updates``, ``scan_offline``, ``download_bundle``,
  ``replace_windows``, ``replace_blackouts``, ``dismiss_banner``,
  ``provide_settings`` (the values a release asks the school for),
  ``check_drift`` (the stack against its project, between updates);
- the agent itself: ``update_agent`` / ``plan_update_agent``,
  ``start_pending_agent_update`` (beat, and when a run ends),
  ``plan_critical_agent_update`` (after a check found a critical one).
"""

from updates.actions.agent import (
    RECENT_CHECK_SECONDS,
    check_drift,
    check_for_updates,
    declared_settings,
    dismiss_banner,
    download_bundle,
    make_support_bundle,
    provide_settings,
    recent_check_or_new,
    replace_blackouts,
    replace_windows,
    scan_offline,
)
from updates.actions.enforcement import (
    enforcement_tick,
    expire_overrides,
    grant_override,
    move_critical_update,
    plan_critical_update,
    revoke_override,
)
from updates.actions.runs import (
    SchedulePlan,
    apply_bundle,
    cancel_run,
    plan_roll_back,
    plan_schedule,
    plan_update_now,
    roll_back,
    schedule_update,
    start_now,
    update_now,
)
from updates.actions.selfupdate import (
    plan_critical_agent_update,
    plan_update_agent,
    start_pending_agent_update,
    update_agent,
)

__all__ = [
    "RECENT_CHECK_SECONDS",
    "SchedulePlan",
    "apply_bundle",
    "cancel_run",
    "check_drift",
    "check_for_updates",
    "declared_settings",
    "dismiss_banner",
    "download_bundle",
    "enforcement_tick",
    "expire_overrides",
    "grant_override",
    "make_support_bundle",
    "move_critical_update",
    "plan_critical_agent_update",
    "plan_critical_update",
    "plan_roll_back",
    "plan_schedule",
    "plan_update_agent",
    "plan_update_now",
    "provide_settings",
    "recent_check_or_new",
    "replace_blackouts",
    "replace_windows",
    "revoke_override",
    "roll_back",
    "scan_offline",
    "schedule_update",
    "start_now",
    "start_pending_agent_update",
    "update_agent",
    "update_now",
]
