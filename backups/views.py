"""The Backup manager page: list, create, verify, restore (typed name), copy, delete.

Thin views: each form post calls one action of ``backups.actions`` and shows
what it did, or why it refused.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from backups import actions, copying
from backups.models import Backup
from backups.storage import LocalTarget
from clms_updates.actions import VIA_PAGE, ActionRefused, Actor
from clms_updates.pages import show_refusal
from clms_updates.permissions import admin_required, is_school_admin, viewer_required


@require_GET
@viewer_required
def backup_list(request: HttpRequest) -> HttpResponse:
    """Every backup with status, size, verified time and where its copies live."""
    backups = list(Backup.objects.all()[:200])
    local = LocalTarget()
    # Only backups with a copy can be fetched back, so only those are looked up.
    local_missing = {
        b.pk
        for b in backups
        if b.copies and b.file_name and not local.exists(b.file_name)
    }
    return render(
        request,
        "backups/backup_list.html",
        {
            "backups": backups,
            "can_change": is_school_admin(request.user),
            "copy_target": copying.copy_target_label(),
            "local_missing": local_missing,
            "restoring": _int_or_none(request.GET.get("restoring")),
        },
    )


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() and len(text) < 12 else None


def _act(
    request: HttpRequest, action: Callable[[Actor], str], *, follow: int | None = None
) -> HttpResponse:
    """Call an action for the logged-in admin; show its message or its refusal.

    ``follow`` is a backup whose job the list then follows live (a restore).
    """
    try:
        said = action(Actor.from_request(request, VIA_PAGE))
    except ActionRefused as e:
        show_refusal(request, e)
    else:
        messages.success(request, said)
        if follow is not None:
            return redirect(
                f"{reverse('backups:list')}?restoring={follow}#backup-{follow}"
            )
    return redirect("backups:list")


@require_POST
@admin_required
def backup_create(request: HttpRequest) -> HttpResponse:
    """Start a backup (made and verified by a worker)."""
    reason = request.POST.get("reason", "")

    def create(actor: Actor) -> str:
        backup = actions.create_backup(actor=actor, reason=reason)
        return f"Backup {backup.name} started; it is verified when done."

    return _act(request, create)


@require_POST
@admin_required
def backup_verify(request: HttpRequest, backup_id: int) -> HttpResponse:
    """Verify a backup again."""

    def verify(actor: Actor) -> str:
        return f"Verifying {actions.verify_backup(backup_id, actor=actor).name}."

    return _act(request, verify)


@require_POST
@admin_required
def backup_restore(request: HttpRequest, backup_id: int) -> HttpResponse:
    """Restore a verified backup once the admin typed its name."""
    typed = request.POST.get("confirm", "")
    reason = request.POST.get("reason", "").strip()[:500]

    def restore(actor: Actor) -> str:
        backup = actions.restore_backup(
            backup_id, actor=actor, reason=reason, confirm=typed
        )
        return (
            f"Restoring {backup.name} into the CLMS database; its row below says "
            "when it is done."
        )

    return _act(request, restore, follow=backup_id)


@require_POST
@admin_required
def backup_delete(request: HttpRequest, backup_id: int) -> HttpResponse:
    """Delete a backup (refused for held, busy or the newest verified one)."""

    def delete(actor: Actor) -> str:
        return f"Deleted {actions.delete_backup(backup_id, actor=actor)}."

    return _act(request, delete)


@require_POST
@admin_required
def backup_copy(request: HttpRequest, backup_id: int) -> HttpResponse:
    """Copy a verified backup to the second target (done by a worker)."""

    def copy(actor: Actor) -> str:
        backup = actions.copy_backup(backup_id, actor=actor)
        return f"Copying {backup.name} to {copying.copy_target_label()}."

    return _act(request, copy)


@require_POST
@admin_required
def backup_fetch(request: HttpRequest, backup_id: int) -> HttpResponse:
    """Fetch a backup's lost local file back from its copy, then verify it."""

    def fetch(actor: Actor) -> str:
        backup = actions.fetch_backup(backup_id, actor=actor)
        return f"Fetching {backup.name} from its copy; it is verified again next."

    return _act(request, fetch)
