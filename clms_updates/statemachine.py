"""One way to move a job through its states: update runs, backups, offline bundles.

A model declares its machine once: the field that holds the state, which
states each state may be reached from, and which states are terminal::

    MACHINE = StateMachine(
        "state",
        {"running": ("scheduled",), "cancelled": ("scheduled",), ...},
        terminal={"succeeded", "cancelled"},
    )

and every transition goes through ``MACHINE.move`` (checked, then saved with
the fields the caller changed; a tracked job also publishes its progress, whose
socket push waits for the transaction to commit) or, when two processes may
race for the same move, ``MACHINE.claim`` (one conditional ``UPDATE … WHERE
state IN (…)``: exactly one of them changes the row).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import models

from clms_updates import progress


class InvalidTransition(Exception):
    """A state change the job's state machine does not allow."""


class StateMachine:
    """The allowed moves of one model's state field (see the module docstring)."""

    def __init__(
        self,
        field: str,
        moves: Mapping[str, Iterable[str]],
        *,
        terminal: Iterable[str] = (),
    ) -> None:
        self.field = field
        self.moves = {
            str(to): tuple(str(s) for s in froms) for to, froms in moves.items()
        }
        self.terminal = frozenset(str(s) for s in terminal)

    def allowed_from(self, to: str) -> tuple[str, ...]:
        return self.moves.get(str(to), ())

    def can_move(self, instance: models.Model, to: str) -> bool:
        return str(getattr(instance, self.field)) in self.allowed_from(to)

    def check(self, instance: models.Model, to: str) -> None:
        """Raise ``InvalidTransition`` unless ``instance`` may move to ``to``."""
        current = str(getattr(instance, self.field))
        allowed = self.allowed_from(to)
        if current not in allowed:
            label = (
                getattr(instance, "name", None)
                or f"{instance._meta.verbose_name} {instance.pk}"
            )
            raise InvalidTransition(
                f"{label} is {current}; it cannot become {to} (only from "
                f"{', '.join(allowed) or 'nowhere'})"
            )

    def move(
        self,
        instance: models.Model,
        to: str,
        message: str = "",
        *,
        fields: Iterable[str] = (),
        step: str | None = None,
        percent: int | None = None,
    ) -> None:
        """Check, set and save the move (with ``fields`` the caller also changed).

        A tracked job (``progress.TrackedProgress``) records ``message`` in its
        progress and tells its followers once the transaction commits.
        """
        self.check(instance, to)
        setattr(instance, self.field, to)
        changed = (self.field, *fields)
        if isinstance(instance, progress.TrackedProgress) and message:
            progress.publish(
                instance, message, step=step, percent=percent, extra_fields=changed
            )
        else:
            instance.save(update_fields=list(dict.fromkeys(changed)))

    def claim(
        self,
        model: type[models.Model],
        pk: Any,
        to: str,
        *,
        extra_filter: Mapping[str, Any] | None = None,
        **updates: Any,
    ) -> bool:
        """Move row ``pk`` to ``to`` if it is still in a state allowed to; True if so.

        One conditional ``UPDATE``: of several processes racing for the same
        move, exactly one changes the row (and gets True).
        """
        allowed = self.allowed_from(to)
        changed = model._default_manager.filter(
            pk=pk, **{f"{self.field}__in": allowed}, **(extra_filter or {})
        ).update(**{self.field: to}, **updates)
        return bool(changed)
