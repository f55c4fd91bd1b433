"""Critical deadlines: the pending critical release, its deadline, the block.

A verified release marked critical carries a ``force_after`` deadline. Until it:

- every school page shows a red countdown (``enforcement_state`` feeds it);
- admins are warned at each of ``UPDATES_CRITICAL_WARNING_HOURS`` before it,
  once each (``deadlines.send_deadline_warnings``);
- beat plans the update into the last maintenance window that starts before
  the deadline, unless a run is already pending
  (``updates.actions.plan_critical_update``).

After it, the installation is *blocked* until a version at or above the
critical one is installed (``enforcement_state(...).blocked``): the middleware
answers 423 and shows the blocking dialog, and the CLMS app asks
``GET /api/updates/enforcement``. A school admin may lift the block for at most
``UPDATES_OVERRIDE_MAX_HOURS`` with a reason (``updates.actions.grant_override``);
every override, revocation and expiry is audited. Installing the update lifts
the block at once, because the state is computed from the installed version.

The feature's pages are ``views``, its API ``api``, its beat task ``tasks``,
its templates ``templates/updates/enforcement/``.
"""

from updates.enforcement.state import (
    EnforcementState,
    active_override,
    enforcement_state,
    is_blocked,
    pending_critical_release,
)

__all__ = [
    "EnforcementState",
    "active_override",
    "enforcement_state",
    "is_blocked",
    "pending_critical_release",
]
