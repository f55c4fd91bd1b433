"""The Backup manager page: list, create, verify, restore (typed name), copy, delete."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from backups import copying, creating, retention, tasks
from backups.errors import BackupError
from backups.models import Backup
from backups.storage import LocalTarget, copy_target
from clms_updates.permissions import is_school_admin, is_school_viewer


def _require(request: HttpRequest, admin: bool) -> None:
    allowed = is_school_admin(request.user) if admin else is_school_viewer(request.user)
    if not allowed:
        raise PermissionDenied(
            "Only school admins may change backups."
            if admin
            else "You need to be a school viewer or admin to see backups."
        )


@login_required
def backup_list(request: HttpRequest) -> HttpResponse:
    """Every backup with status, size, verified time and where its copies live."""
    _require(request, admin=False)
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
        },
    )


@login_required
@require_POST
def backup_create(request: HttpRequest) -> HttpResponse:
    """Start a backup (made and verified by a worker)."""
    _require(request, admin=True)
    reason = request.POST.get("reason", "").strip()[:200] or "manual (page)"
    backup = creating.new_backup(reason=reason, user=request.user)
    transaction.on_commit(lambda: tasks.create_backup_task.delay(backup.pk))
    messages.success(
        request, f"Backup {backup.name} started; it is verified when done."
    )
    return redirect("backups:list")


@login_required
@require_POST
def backup_verify(request: HttpRequest, backup_id: int) -> HttpResponse:
    """Verify a backup again."""
    _require(request, admin=True)
    backup = get_object_or_404(Backup, pk=backup_id)
    if backup.status not in (Backup.Status.CREATED, Backup.Status.VERIFIED):
        messages.error(
            request, f"Backup {backup.name} is {backup.status}; it cannot be verified."
        )
    else:
        transaction.on_commit(lambda: tasks.verify_backup_task.delay(backup.pk))
        messages.success(request, f"Verifying {backup.name}.")
    return redirect("backups:list")


@login_required
@require_POST
def backup_restore(request: HttpRequest, backup_id: int) -> HttpResponse:
    """Restore a verified backup once the admin typed its name."""
    _require(request, admin=True)
    backup = get_object_or_404(Backup, pk=backup_id)
    typed = request.POST.get("confirm", "").strip()
    if typed != backup.name:
        messages.error(
            request,
            f"Nothing was restored: type the backup's name ({backup.name}) exactly to "
            "confirm.",
        )
    elif not backup.is_usable:
        messages.error(
            request, f"Backup {backup.name} is not verified; it cannot be restored."
        )
    else:
        user_id = request.user.pk
        reason = request.POST.get("reason", "").strip()[:500]
        transaction.on_commit(
            lambda: tasks.restore_backup_task.delay(backup.pk, user_id, reason)
        )
        messages.success(request, f"Restoring {backup.name} into the CLMS database.")
    return redirect("backups:list")


@login_required
@require_POST
def backup_delete(request: HttpRequest, backup_id: int) -> HttpResponse:
    """Delete a backup (refused for held, busy or the newest verified one)."""
    _require(request, admin=True)
    backup = get_object_or_404(Backup, pk=backup_id)
    try:
        name = retention.delete_backup(backup.pk, user=request.user, request=request)
    except BackupError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"Deleted {name}.")
    return redirect("backups:list")


@login_required
@require_POST
def backup_copy(request: HttpRequest, backup_id: int) -> HttpResponse:
    """Copy a verified backup to the second target (done by a worker)."""
    _require(request, admin=True)
    backup = get_object_or_404(Backup, pk=backup_id)
    target = copy_target()
    refusal = copying.copy_refusal(backup, target)
    if refusal:
        messages.error(request, refusal)
    else:
        user_id = request.user.pk
        transaction.on_commit(lambda: tasks.copy_backup_task.delay(backup.pk, user_id))
        messages.success(
            request, f"Copying {backup.name} to {copying.copy_target_label(target)}."
        )
    return redirect("backups:list")


@login_required
@require_POST
def backup_fetch(request: HttpRequest, backup_id: int) -> HttpResponse:
    """Fetch a backup's lost local file back from its copy, then verify it."""
    _require(request, admin=True)
    backup = get_object_or_404(Backup, pk=backup_id)
    refusal = copying.fetch_refusal(backup, copy_target())
    if refusal:
        messages.error(request, refusal)
    else:
        user_id = request.user.pk
        transaction.on_commit(lambda: tasks.fetch_backup_task.delay(backup.pk, user_id))
        messages.success(
            request, f"Fetching {backup.name} from its copy; it is verified again next."
        )
    return redirect("backups:list")
