"""``manage.py publish_release --manifest FILE [--bundle FILE]``: scripted publishing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clms_updates.actions import Actor
from vendor_server import actions, keys
from vendor_server.publishing import PublishError, ReleaseDraft, load_manifest_file


class Command(BaseCommand):
    help = (
        "Publish a release from a JSON manifest (version, channel, images by digest, "
        "…) and an optional offline bundle, with the same checks as the admin form."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--manifest", required=True, type=Path)
        parser.add_argument("--bundle", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        bundle: Path | None = options["bundle"]
        if bundle is not None and not bundle.is_file():
            raise CommandError(
                f"the bundle {bundle} does not exist; nothing was published"
            )
        try:
            keys.signing_fingerprint()
            draft = ReleaseDraft.from_manifest_file(
                load_manifest_file(options["manifest"]), bundle
            )
            release = actions.publish_release(draft, actor=Actor.command())
        except PublishError as e:
            raise CommandError(
                "The release was refused and nothing was published:\n  - "
                + "\n  - ".join(e.messages)
            ) from e
        except keys.SigningKeyError as e:
            raise CommandError(f"{e}; nothing was published") from e
        self.stdout.write(
            f"Published {release.version} ({release.channel}); manifest sha256 "
            f"{release.manifest_sha256}."
        )
