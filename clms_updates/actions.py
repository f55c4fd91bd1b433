"""What every action shares: who acts, and the one error a refused action raises.

Each app keeps its changes in its own ``actions`` module (``updates.actions``,
``backups.actions``, ``vendor_server.actions``): one function per change a
person or a schedule can make. An action takes an ``Actor``, checks every
rule, does the change in one transaction, records the audit entry and queues
its work on commit. Pages, API views, management commands, beat tasks and the
bundle flow only parse input, call the action, and turn an ``ActionRefused``
into their own kind of answer (a form error, a 400/409, a ``CommandError``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The entry points an action can be reached through (recorded in the audit log).
VIA_PAGE = "page"
VIA_API = "api"
VIA_COMMAND = "command"
VIA_ADMIN = "admin"
VIA_SCHEDULE = "schedule"
VIA_SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a person (through a page, the API, a command) or the system.

    ``user`` is an authenticated Django user or ``None`` (the system, or a
    command run without ``--user``); ``address`` is the client's IP address
    when the change came over HTTP; ``via`` names the entry point.
    """

    user: Any = None
    address: str | None = None
    via: str = VIA_SYSTEM

    @classmethod
    def from_request(cls, request: Any, via: str = VIA_PAGE) -> Actor:
        """The logged-in user of a page or API request, and where it came from."""
        user = getattr(request, "user", None)
        if user is not None and not getattr(user, "is_authenticated", False):
            user = None
        # DRF's Request wraps the Django one; both expose META.
        meta = getattr(request, "META", {}) or {}
        return cls(user=user, address=meta.get("REMOTE_ADDR") or None, via=via)

    @classmethod
    def system(cls, via: str = VIA_SYSTEM) -> Actor:
        """The agent or the vendor server acting on its own (beat, recovery)."""
        return cls(user=None, address=None, via=via)

    @classmethod
    def command(cls, user: Any = None) -> Actor:
        """Someone at the server's shell, through a management command."""
        return cls(user=user, address=None, via=VIA_COMMAND)

    def to_task(self) -> dict[str, Any]:
        """This actor as JSON, for a task that acts on its behalf later."""
        return {
            "user_id": self.user.pk if self.user is not None else None,
            "address": self.address,
            "via": self.via,
        }

    @classmethod
    def from_task(cls, data: dict[str, Any] | None) -> Actor:
        """The actor a task was queued for (``to_task``); the system if none."""
        if not data:
            return cls.system()
        from django.contrib.auth import get_user_model

        user = None
        if data.get("user_id") is not None:
            user = get_user_model().objects.filter(pk=data["user_id"]).first()
        return cls(
            user=user, address=data.get("address"), via=data.get("via", VIA_SYSTEM)
        )

    @property
    def is_person(self) -> bool:
        return self.user is not None or self.via in (VIA_PAGE, VIA_API, VIA_COMMAND)

    @property
    def over_http(self) -> bool:
        """Whether the change came through a page, the API or the admin (a login)."""
        return self.via in (VIA_PAGE, VIA_API, VIA_ADMIN)

    @property
    def username(self) -> str:
        return self.user.get_username() if self.user is not None else ""

    def describe(self) -> str:
        """``alice (page)`` or ``the system (schedule)``: for messages and logs."""
        who = self.username or ("a shell user" if self.via == VIA_COMMAND else "")
        return f"{who or 'the system'} ({self.via})"


class ActionRefused(Exception):
    """An action that did not go ahead: nothing was changed.

    ``field`` names the input the refusal is about (``version``, ``at``, …;
    ``None`` when it is about the state of the installation, not one input),
    ``code`` is short and stable (tests, API clients and the audit log key on
    it), and the message says what happened, why, and what to do next.
    ``conflict`` marks refusals caused by the current state (another run is
    active, the release was withdrawn) rather than by the input itself: the
    API answers 409 for those and 400 for the rest.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        field: str | None = None,
        conflict: bool = False,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field
        self.conflict = conflict
        self._status = status

    @property
    def status(self) -> int:
        """The HTTP status an API answers this refusal with."""
        if self._status is not None:
            return self._status
        return 409 if self.conflict else 400

    def as_dict(self) -> dict[str, Any]:
        """The JSON body of an API refusal (DRF's field-error shape plus detail)."""
        body: dict[str, Any] = {"detail": self.message, "code": self.code}
        body[self.field or "non_field_errors"] = [self.message]
        if self.field:
            body["field"] = self.field
        return body
