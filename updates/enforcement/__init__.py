"""Critical deadlines: warnings, the automatic schedule, the block and overrides.

A verified release marked critical carries a ``force_after`` deadline. Until it:

- every school page shows a red countdown (``enforcement_state`` feeds it);
- admins are emailed at each of ``UPDATES_CRITICAL_WARNING_HOURS`` before it,
  once each (``send_deadline_warnings``);
- the update is scheduled into the last maintenance window that starts before
  the deadline (``plan_critical_update``), unless a run is already pending.

After it, the installation is *blocked* until a version at or above the
critical one is installed (``enforcement_state(...).blocked``): the middleware
answers 423 and shows the blocking dialog, and the CLMS app asks
``GET /api/updates/enforcement``. A school admin may lift the block for at most
``UPDATES_OVERRIDE_MAX_HOURS`` with a reason (``grant_override``); every
override, revocation and expiry is audited. Installing the update lifts the
block at once, because the state is computed from the installed version.
"""

from updates.enforcement.deadlines import (
    critical_slot_start,
    enforcement_tick,
    move_critical_update,
    plan_critical_update,
    send_deadline_warnings,
)
from updates.enforcement.overrides import (
    OverrideRefused,
    grant_override,
    record_expired_overrides,
    revoke_override,
)
from updates.enforcement.state import (
    EnforcementState,
    active_override,
    enforcement_state,
    is_blocked,
    pending_critical_release,
)

__all__ = [
    "EnforcementState",
    "OverrideRefused",
    "active_override",
    "critical_slot_start",
    "enforcement_state",
    "enforcement_tick",
    "grant_override",
    "is_blocked",
    "move_critical_update",
    "pending_critical_release",
    "plan_critical_update",
    "record_expired_overrides",
    "revoke_override",
    "send_deadline_warnings",
]
