"""The vendor staff's admin: publish and steer releases, manage schools' keys."""

from __future__ import annotations

import json
from typing import Any

import yaml
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from clms_updates.actions import VIA_ADMIN, ActionRefused, Actor
from vendor_server import actions, rollouts, roots
from vendor_server.changelog import render_changelog
from vendor_server.forms import MarkCriticalForm, ReleasePublishForm, SchoolForm
from vendor_server.models import (
    CheckIn,
    FleetAnalytics,
    Release,
    School,
    UpdateReport,
)
from vendor_server.releases import (
    installed_anywhere,
    previous_release,
    project_changes,
)


def _actor(request: HttpRequest) -> Actor:
    return Actor.from_request(request, via=VIA_ADMIN)


def _each(
    request: HttpRequest, queryset: QuerySet[Any], verb: str, change: Any
) -> None:
    """Call the action ``change(pk, actor)`` per row; say what was done and refused."""
    done = []
    actor = _actor(request)
    for obj in queryset:
        try:
            change(obj.pk, actor)
        except ActionRefused as e:
            messages.error(request, f"{obj}: {e}")
        else:
            done.append(str(obj))
    if done:
        messages.success(request, f"{verb.capitalize()}: {', '.join(done)}.")


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    """Releases: publish (validated, signed), steer the rollout, re-sign, delete."""

    class Media:
        css = {"all": ("vendor_server/admin.css",)}

    list_display = (
        "version",
        "product",
        "channel",
        "state",
        "critical",
        "deadline",
        "rollout_percent",
        "report_figures",
        "published_at",
    )
    list_filter = (
        "product",
        "channel",
        "enabled",
        "critical",
        ("paused_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("version", "changelog")
    date_hierarchy = "published_at"
    actions = (
        "enable",
        "disable",
        "pause",
        "resume",
        "mark_critical",
        "resign",
        "delete_unused",
    )
    readonly_fields = (
        "product",
        "version",
        "channel",
        "changelog_html",
        "critical",
        "deadline",
        "min_version",
        "enabled",
        "state",
        "pause_reason",
        "report_figures",
        "project_changes",
        "image_list",
        "compose_yaml",
        "setting_list",
        "bundle_file",
        "bundle_sha256",
        "bundle_size",
        "migration_text",
        "health_text",
        "published_at",
        "published_by",
        "manifest_sha256",
        "signed_at",
        "release_signatures",
        "signed_manifest",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Release]:
        return (
            super()
            .get_queryset(request)
            .annotate(**rollouts.figure_expressions("reports__"))
        )

    def get_form(  # type: ignore[override]
        self, request: HttpRequest, obj: Any = None, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = ReleasePublishForm
            form = super().get_form(request, obj, **kwargs)
            actor = _actor(request)

            class BoundPublishForm(form):  # type: ignore[valid-type,misc]
                def __init__(self, *args: Any, **kw: Any) -> None:
                    super().__init__(*args, actor=actor, **kw)

            return BoundPublishForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return [
                "product",
                *ReleasePublishForm.Meta.fields,
                "compose_file",
                "resolve_tags",
                "confirmed",
                "images_text",
                "bundle",
                "migration_service",
                "migration_command",
                "health_path",
                "health_expected_status",
                "health_successes",
                "health_timeout_seconds",
            ]
        return ["rollout_percent", *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.readonly_fields

    def save_model(
        self, request: HttpRequest, obj: Release, form: Any, change: bool
    ) -> None:
        if not change:
            return  # ReleasePublishForm's action validated, signed, saved, audited.
        if "rollout_percent" in form.changed_data:
            try:
                actions.set_rollout_percent(
                    obj.pk, obj.rollout_percent, actor=_actor(request)
                )
            except ActionRefused as e:
                messages.error(request, str(e))

    @admin.display(description="changes against the previous release")
    def project_changes(self, obj: Release) -> str:
        previous = previous_release(obj)
        lines = project_changes(obj, previous).lines() or ["no change to the project"]
        against = f"against {previous.version}" if previous else "first release"
        return format_html(
            "<p>{}</p><ul>{}</ul>",
            against,
            format_html_join("", "<li>{}</li>", ((line,) for line in lines)),
        )

    @admin.display(description="compose project")
    def compose_yaml(self, obj: Release) -> str:
        if not obj.compose:
            return "image-only release"
        return format_html(
            '<pre class="clms-wrap">{}</pre>',
            yaml.safe_dump(obj.compose, sort_keys=False),
        )

    @admin.display(description="force after (deadline)", ordering="force_after")
    def deadline(self, obj: Release) -> str:
        """The deadline with its zone: the admin's time zone is not the schools'."""
        if obj.force_after is None:
            return "-"
        return timezone.localtime(obj.force_after).strftime("%Y-%m-%d %H:%M %Z")

    @admin.display(description="images")
    def image_list(self, obj: Release) -> str:
        rows = [(i.get("service", ""), i.get("reference", "")) for i in obj.images]
        if not rows:
            return "-"
        return format_html(
            '<table class="clms-readable"><tr><th>Service</th><th>Image (pinned '
            "by digest)</th></tr>{}</table>",
            format_html_join("", "<tr><td>{}</td><td><code>{}</code></td></tr>", rows),
        )

    @admin.display(description="settings it asks schools for")
    def setting_list(self, obj: Release) -> str:
        rows = [
            (
                s.get("name", ""),
                s.get("description", ""),
                "required" if s.get("required") else "optional",
                "secret" if s.get("secret") else s.get("default", "") or "-",
            )
            for s in obj.settings or []
        ]
        if not rows:
            return "none"
        return format_html(
            '<table class="clms-readable"><tr><th>Name</th><th>What</th><th></th>'
            "<th>Default</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                rows,
            ),
        )

    @admin.display(description="migration")
    def migration_text(self, obj: Release) -> str:
        migration = obj.migration or {}
        if not migration:
            return "none"
        command = migration.get("command", "")
        if isinstance(command, list):
            command = " ".join(str(part) for part in command)
        return format_html(
            "in service <code>{}</code>: <code>{}</code>",
            migration.get("service", ""),
            command,
        )

    @admin.display(description="health check")
    def health_text(self, obj: Release) -> str:
        health = obj.health_check or {}
        if not health:
            return "the default (GET /health answers 200)"
        return format_html(
            "GET <code>{}</code> answers {}, {} time(s) in a row, within {} s",
            health.get("path", "/health"),
            health.get("expected_status", 200),
            health.get("successes", 1),
            health.get("timeout_seconds", "?"),
        )

    @admin.display(description="signed manifest")
    def signed_manifest(self, obj: Release) -> str:
        """What schools verify, folded away: readable above, exact here."""
        try:
            pretty = json.dumps(json.loads(obj.manifest_json), indent=2, sort_keys=True)
        except ValueError:
            pretty = obj.manifest_json
        return format_html(
            '<details class="clms-raw"><summary>Show the signed manifest (JSON, '
            "{} bytes)</summary><pre>{}</pre></details>"
            '<details class="clms-raw"><summary>Show its detached signature'
            "</summary><pre>{}</pre></details>",
            len(obj.manifest_json.encode()),
            pretty,
            obj.manifest_signature,
        )

    @admin.display(description="state")
    def state(self, obj: Release) -> str:
        if not obj.enabled:
            return "disabled"
        if obj.is_paused:
            return "PAUSED"
        if not obj.release_signed:
            return "awaiting release signatures"
        return "live"

    @admin.display(description="release signatures")
    def release_signatures(self, obj: Release) -> str:
        signers, needed = roots.release_signers(obj)
        text = f"{len(signers)} of the {needed} needed"
        if signers:
            text += f" ({', '.join(s[-16:] for s in signers)})"
        if len(signers) < needed:
            text += (
                "; release managers sign it where their keys live: "
                f"manage.py sign_release export {obj.version} …"
            )
        return text

    @admin.display(description="schools reporting (failed)")
    def report_figures(self, obj: Release) -> str:
        total: int | None = getattr(obj, "report_total", None)
        failed: int = getattr(obj, "report_failed", 0)
        if total is None:
            figures = rollouts.failure_figures(obj)
            total, failed = figures.total, figures.failed
        if not total:
            return "none yet"
        return f"{total} ({failed} failed, {100 * failed / total:.0f}%)"

    @admin.display(description="changelog")
    def changelog_html(self, obj: Release) -> str:
        return render_changelog(obj.changelog)

    @admin.action(description="Enable selected releases")
    def enable(self, request: HttpRequest, queryset: QuerySet[Release]) -> None:
        _each(
            request,
            queryset,
            "enabled",
            lambda pk, actor: actions.set_enabled(pk, True, actor=actor),
        )

    @admin.action(description="Disable selected releases (leave every index)")
    def disable(self, request: HttpRequest, queryset: QuerySet[Release]) -> None:
        _each(
            request,
            queryset,
            "disabled",
            lambda pk, actor: actions.set_enabled(pk, False, actor=actor),
        )

    @admin.action(description="Pause rollouts (leave every index until resumed)")
    def pause(self, request: HttpRequest, queryset: QuerySet[Release]) -> None:
        reason = f"Paused by {request.user.get_username()}."
        _each(
            request,
            queryset,
            "paused",
            lambda pk, actor: actions.pause_release(pk, actor=actor, reason=reason),
        )

    @admin.action(description="Resume paused rollouts")
    def resume(self, request: HttpRequest, queryset: QuerySet[Release]) -> None:
        _each(
            request,
            queryset,
            "resumed",
            lambda pk, actor: actions.resume_release(pk, actor=actor),
        )

    @admin.action(description="Re-sign manifests")
    def resign(self, request: HttpRequest, queryset: QuerySet[Release]) -> None:
        _each(
            request,
            queryset,
            "re-signed",
            lambda pk, actor: actions.resign_release(pk, actor=actor),
        )

    @admin.action(description="Delete (only releases no school installed)")
    def delete_unused(self, request: HttpRequest, queryset: QuerySet[Release]) -> None:
        _each(
            request,
            queryset,
            "deleted",
            lambda pk, actor: actions.delete_release(pk, actor=actor),
        )

    @admin.action(description="Mark critical with a deadline…")
    def mark_critical(
        self, request: HttpRequest, queryset: QuerySet[Release]
    ) -> HttpResponse | None:
        form = MarkCriticalForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            deadline = form.cleaned_data["force_after"]
            _each(
                request,
                queryset,
                "marked critical",
                lambda pk, actor: actions.mark_critical(pk, deadline, actor=actor),
            )
            return None
        return TemplateResponse(
            request,
            "vendor_server/mark_critical.html",
            {
                **self.admin_site.each_context(request),
                "title": "Mark critical with a deadline",
                "form": form,
                "releases": queryset,
                "opts": self.model._meta,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            },
        )

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        # The stock bulk delete would skip the "installed somewhere" rule.
        actions.pop("delete_selected", None)
        return actions

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        release = self.get_object(request, object_id)
        if release is not None and installed_anywhere(release):
            messages.error(
                request,
                f"{release.version} was installed by at least one school, so it cannot "
                "be deleted; disable it instead.",
            )
            return redirect("admin:vendor_server_release_change", release.pk)
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request: HttpRequest, obj: Release) -> None:
        try:
            actions.delete_release(obj.pk, actor=_actor(request))
        except ActionRefused as e:
            messages.error(request, str(e))


@admin.register(School)
class SchoolAdmin(admin.ModelAdmin):
    """Schools: the API key is shown once at creation and rotation."""

    form = SchoolForm
    list_display = (
        "name",
        "channel",
        "current_version",
        "agent_version",
        "last_seen",
        "key_state",
    )
    list_filter = ("channel", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "current_version")
    readonly_fields = (
        "api_key_hint",
        "revoked_at",
        "current_version",
        "agent_version",
        "last_seen",
        "created_at",
    )
    actions = ("rotate_key", "revoke", "reinstate")

    @admin.display(description="API key")
    def key_state(self, obj: School) -> str:
        return "revoked" if obj.is_revoked else f"{obj.api_key_hint}…"

    def save_model(
        self, request: HttpRequest, obj: School, form: Any, change: bool
    ) -> None:
        if change:
            actions.save_school_changes(obj, form.changed_data, actor=_actor(request))
            return
        try:
            school, key = actions.create_school(
                obj.name,
                actor=_actor(request),
                channel=obj.channel,
                time_zone=obj.time_zone,
            )
        except ActionRefused as e:
            messages.error(request, str(e))
            return
        obj.pk, obj.api_key_hash, obj.api_key_hint = (
            school.pk,
            school.api_key_hash,
            school.api_key_hint,
        )
        messages.warning(
            request,
            format_html(
                "API key of {}: <code>{}</code> — copy it now, it is shown only once "
                "(the server keeps only its hash).",
                obj.name,
                key,
            ),
        )

    @admin.action(description="Rotate API key (shows the new key once)")
    def rotate_key(self, request: HttpRequest, queryset: QuerySet[School]) -> None:
        for school in queryset:
            key = actions.rotate_school_key(school.pk, actor=_actor(request))
            messages.warning(
                request,
                format_html(
                    "New API key of {}: <code>{}</code> — shown only once; the old key "
                    "no longer works.",
                    school.name,
                    key,
                ),
            )

    @admin.action(description="Revoke API key")
    def revoke(self, request: HttpRequest, queryset: QuerySet[School]) -> None:
        for school in queryset:
            actions.revoke_school_key(school.pk, actor=_actor(request))
        messages.success(request, f"Revoked {queryset.count()} key(s).")

    @admin.action(description="Reinstate revoked API key")
    def reinstate(self, request: HttpRequest, queryset: QuerySet[School]) -> None:
        for school in queryset:
            actions.reinstate_school_key(school.pk, actor=_actor(request))
        messages.success(request, f"Reinstated {queryset.count()} key(s).")


@admin.register(UpdateReport)
class UpdateReportAdmin(admin.ModelAdmin):
    """What schools reported (read-only)."""

    list_display = (
        "school",
        "from_version",
        "to_version",
        "outcome",
        "error_code",
        "received_at",
    )
    list_filter = ("outcome", "to_version")
    search_fields = ("school__name", "to_version", "error_code")
    list_select_related = ("school",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CheckIn)
class CheckInAdmin(admin.ModelAdmin):
    """Polls as flushed each minute (read-only)."""

    list_display = ("school", "seen_at", "clms_version", "agent_version")
    list_select_related = ("school",)
    date_hierarchy = "seen_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(FleetAnalytics)
class FleetAnalyticsAdmin(admin.ModelAdmin):
    """An admin index entry that opens the fleet analytics page."""

    def changelist_view(
        self, request: HttpRequest, extra_context: Any = None
    ) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("vendor_server:analytics"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
