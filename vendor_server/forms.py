"""Admin forms: publishing a release, marking it critical, adding a school."""

from __future__ import annotations

import tempfile
import zoneinfo
from pathlib import Path
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.http import QueryDict
from django.utils import timezone

from clms_updates.actions import Actor
from vendor_server import actions
from vendor_server.indexing import products
from vendor_server.models import Channel, Release, School
from vendor_server.publishing import Preview, PublishError, ReleaseDraft, preview


def parse_images(text: str) -> list[dict[str, str]]:
    """``service=repository@sha256:…`` per line -> image dicts (checked later)."""
    images = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        service, sep, reference = line.partition("=")
        if not sep:
            raise forms.ValidationError(
                f"line {number}: write service=repository@sha256:<digest>, got {line!r}"
            )
        images.append({"service": service.strip(), "reference": reference.strip()})
    return images


class ReleasePublishForm(forms.ModelForm):
    """Publish a release: every field of the manifest, checked, signed, then saved."""

    product = forms.ChoiceField(
        choices=(),
        required=False,
        help_text="CLMS, or CLMS Updates itself (an agent release: schools see it "
        "beside CLMS updates and the agent updates itself).",
    )
    compose_file = forms.CharField(
        label="Compose file",
        required=False,
        widget=forms.Textarea(attrs={"rows": 18, "cols": 90, "spellcheck": "false"}),
        help_text="A compose release: the release's whole project (services, volumes) "
        "with its x-clms-settings, x-clms-migration and x-clms-health parts. The "
        "first save shows the digests pinned and what changes against the previous "
        "release; nothing is signed until you confirm. Leave empty for an "
        "image-only release.",
    )
    resolve_tags = forms.BooleanField(
        label="Pin image tags to the registry's digests",
        required=False,
        help_text="Without it every image must already be repository@sha256:….",
    )
    confirmed = forms.BooleanField(
        label="I checked the pinned digests and the changes listed above: sign it",
        required=False,
    )
    images_text = forms.CharField(
        label="Images",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 90}),
        help_text="An image-only release: one per line, "
        "service=registry/repository@sha256:<digest> (by digest, never a tag). Each "
        "is looked up in the registry.",
    )
    bundle = forms.FileField(
        required=False,
        help_text="Optional offline ZIP holding manifest.json and manifest.json.asc "
        "signed with the vendor key.",
    )
    migration_service = forms.CharField(required=False)
    migration_command = forms.CharField(
        required=False, help_text="For example: python manage.py migrate --noinput"
    )
    health_path = forms.CharField(initial="/health")
    health_expected_status = forms.IntegerField(
        initial=200, min_value=100, max_value=599
    )
    health_successes = forms.IntegerField(initial=3, min_value=1, max_value=100)
    health_timeout_seconds = forms.IntegerField(initial=60, min_value=1, max_value=3600)

    class Meta:
        model = Release
        fields = (
            "version",
            "channel",
            "changelog",
            "critical",
            "force_after",
            "min_version",
            "rollout_percent",
        )

    def __init__(self, *args: Any, actor: Actor | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice = self.fields["product"]
        assert isinstance(choice, forms.ChoiceField)
        choice.choices = [(p, p) for p in products()]
        self.fields["product"].initial = products()[0]
        self.fields["force_after"].label = f"Force after ({zone_name()})"
        self.fields["force_after"].help_text = (
            "For a critical release: the deadline, in "
            f"{zone_name()}, after which schools install it outside their "
            "maintenance windows and CLMS is blocked until they do."
        )
        self.actor = actor or Actor.system()
        self.published: Release | None = None
        self.preview: Preview | None = None

    def validate_unique(self) -> None:
        # Duplicates are reported by the publishing checks with a clearer message.
        pass

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            images = parse_images(data.get("images_text", ""))
        except forms.ValidationError as e:
            self.add_error("images_text", e)
            return data
        compose_text = (data.get("compose_file") or "").strip()
        if not compose_text and not images:
            self.add_error(
                "images_text", "Give the images, or a compose file for the release."
            )
            return data
        migration = None
        if data.get("migration_command") and not compose_text:
            migration = {
                "service": data.get("migration_service") or images[0]["service"]
                if images
                else "",
                "command": data["migration_command"].split(),
            }
        draft = ReleaseDraft(
            version=data["version"].strip(),
            product=data.get("product") or "",
            channel=data.get("channel") or Channel.STABLE,
            changelog=data.get("changelog", ""),
            critical=bool(data.get("critical")),
            force_after=data.get("force_after"),
            min_version=(data.get("min_version") or "").strip(),
            images=images,
            migration=migration,
            health_check={
                "path": data["health_path"],
                "expected_status": data["health_expected_status"],
                "successes": data["health_successes"],
                "timeout_seconds": data["health_timeout_seconds"],
            },
            rollout_percent=data.get("rollout_percent") or 0,
            compose_text=compose_text,
            # Tags are resolved for the preview only; what is signed is the text
            # the preview showed, with its digests.
            resolve_tags=bool(data.get("resolve_tags")) and not data.get("confirmed"),
        )
        if compose_text and not data.get("confirmed"):
            self._show_preview(draft)
            return data
        upload: UploadedFile | None = data.get("bundle")
        # Validation and publishing happen together so a refusal shows its reasons
        # on this form and nothing is saved; the upload is only a temporary file.
        with tempfile.TemporaryDirectory(prefix="clms-upload-") as tmp:
            if upload is not None:
                path = Path(tmp) / Path(upload.name or "bundle.zip").name
                with path.open("wb") as f:
                    for chunk in upload.chunks():
                        f.write(chunk)
                draft.bundle_path = path
                draft.bundle_name = path.name
            try:
                self.published = actions.publish_release(draft, actor=self.actor)
            except PublishError as e:
                for message in e.messages:
                    self.add_error(None, message)
        return data

    def _show_preview(self, draft: ReleaseDraft) -> None:
        """Refuse this save, listing what would be signed; the pinned text replaces
        the compose file so that confirming signs exactly that."""
        shown = preview(draft)
        if shown.problems:
            for message in shown.problems:
                self.add_error(None, message)
            return
        data = QueryDict(mutable=True)
        data.update(self.data)
        data["compose_file"] = shown.compose_text
        data.pop("resolve_tags", None)
        self.data = data
        self.preview = shown
        self.add_error(
            "confirmed",
            "Nothing is signed yet: check the digests and the changes, tick this box "
            "and save again.",
        )
        for line in shown.pinned:
            self.add_error(None, f"Pinned: {line}")
        against = (
            f"against {shown.previous}" if shown.previous else "(the first release)"
        )
        for line in shown.changes or ["no change to the project"]:
            self.add_error(None, f"Changes {against}: {line}")

    def save(self, commit: bool = True) -> Release:
        assert self.published is not None
        self.instance = self.published
        self.save_m2m = lambda: None  # type: ignore[method-assign]  # no relations
        return self.published


class MarkCriticalForm(forms.Form):
    """The deadline for the release(s) being marked critical."""

    force_after = forms.DateTimeField(
        help_text="After this time schools install the release outside their "
        "maintenance window. Format: 2026-12-31 22:00",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["force_after"].label = f"Deadline ({zone_name()})"


def zone_name() -> str:
    """The zone the vendor's forms read and show times in (``TIME_ZONE``)."""
    return timezone.get_current_timezone_name()


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise forms.ValidationError(
            f"{value!r} is not an IANA time zone (for example Europe/Berlin)"
        ) from None


class SchoolForm(forms.ModelForm):
    """A school's name, time zone and channel (the API key is made on save)."""

    time_zone = forms.CharField(initial="UTC", validators=[validate_time_zone])

    class Meta:
        model = School
        fields = ("name", "time_zone", "channel")
