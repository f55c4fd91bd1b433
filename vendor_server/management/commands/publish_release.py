"""``manage.py publish_release --manifest FILE [--compose FILE] [--bundle FILE]``.

Scripted publishing, with the same checks as the admin form. ``--compose``
makes it a compose release: the file is the vendor's compose file (services,
volumes, networks, and its ``x-clms-settings`` / ``x-clms-migration`` /
``x-clms-health`` parts); ``--resolve-tags`` pins images given by tag to the
digest the registry holds now, and prints what it pinned. ``--dry-run``
signs nothing: it prints the pinned digests and what the project changes
against the previous release (``--write-pinned FILE`` keeps the compose file
with those digests, to publish exactly that).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clms_updates.actions import Actor
from vendor_server import actions, keys
from vendor_server.publishing import (
    PublishError,
    ReleaseDraft,
    load_manifest_file,
    preview,
)


class Command(BaseCommand):
    help = (
        "Publish a release from a JSON manifest (version, channel, images by digest, "
        "…) and an optional offline bundle, with the same checks as the admin form."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--manifest", required=True, type=Path)
        parser.add_argument("--compose", type=Path, help="the release's compose file")
        parser.add_argument(
            "--resolve-tags",
            action="store_true",
            help="pin images given by tag to the registry's digest (printed)",
        )
        parser.add_argument("--bundle", type=Path)
        parser.add_argument(
            "--source",
            type=Path,
            help="a source release: the source folder (its tree digest is signed)",
        )
        parser.add_argument(
            "--held-back",
            action="store_true",
            help="publish it disabled: signed, but no school sees it until staff "
            "enable it in the admin",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="check only: print the pinned digests and the project's changes",
        )
        parser.add_argument(
            "--write-pinned",
            type=Path,
            help="with --dry-run: write the compose file with the pinned digests here",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        bundle: Path | None = options["bundle"]
        if bundle is not None and not bundle.is_file():
            raise CommandError(
                f"the bundle {bundle} does not exist; nothing was published"
            )
        compose_text = ""
        if options["compose"] is not None:
            try:
                compose_text = options["compose"].read_text()
            except OSError as e:
                raise CommandError(
                    f"the compose file cannot be read ({e}); nothing was published"
                ) from None
        try:
            keys.signing_fingerprint()
            draft = ReleaseDraft.from_manifest_file(
                load_manifest_file(options["manifest"]),
                bundle,
                compose_text=compose_text,
                resolve_tags=options["resolve_tags"],
            )
            draft.source_dir = options["source"]
            if options["dry_run"]:
                self._preview(draft, options["write_pinned"])
                return
            release = actions.publish_release(
                draft, actor=Actor.command(), held_back=options["held_back"]
            )
        except PublishError as e:
            raise CommandError(
                "The release was refused and nothing was published:\n  - "
                + "\n  - ".join(e.messages)
            ) from e
        except keys.SigningKeyError as e:
            raise CommandError(f"{e}; nothing was published") from e
        for line in draft.pinned:
            self.stdout.write(f"Pinned {line}")
        held = "; held back until enabled in the admin" if not release.enabled else ""
        self.stdout.write(
            f"Published {release.version} ({release.channel}){held}; manifest sha256 "
            f"{release.manifest_sha256}."
        )

    def _preview(self, draft: ReleaseDraft, write_to: Path | None) -> None:
        shown = preview(draft)
        if shown.problems:
            raise PublishError(shown.problems)
        for line in shown.pinned:
            self.stdout.write(f"Would pin {line}")
        against = f"against {shown.previous}" if shown.previous else "(first release)"
        self.stdout.write(f"Changes {against}:")
        for line in shown.changes or ["no change to the project"]:
            self.stdout.write(f"  - {line}")
        if write_to is not None and draft.compose_text:
            write_to.write_text(shown.compose_text)
            self.stdout.write(f"Wrote the pinned compose file to {write_to}.")
        self.stdout.write("Dry run: nothing was signed or published.")
