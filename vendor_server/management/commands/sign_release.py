"""``manage.py sign_release``: release managers sign a release where their key lives.

On the vendor server: ``sign_release export 1.2.0 --out clms-1.2.0.json``.
Where the release key lives: ``sign_release sign clms-1.2.0.json --key F``
(appends to ``clms-1.2.0.json.asc``). Back on the server:
``sign_release attach 1.2.0 clms-1.2.0.json.asc``. The release is listed once
the signatures meet the current root's release threshold;
``sign_release status`` shows what each release still needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from clms_updates.actions import ActionRefused, Actor
from vendor_server import actions, roots
from vendor_server.management.commands.vendor_root import add_signing_arguments, sign
from vendor_server.models import Release


class Command(BaseCommand):
    help = "Export a release manifest, sign it offline, attach the signature, or show status."

    def add_arguments(self, parser: CommandParser) -> None:
        steps = parser.add_subparsers(dest="step", required=True)
        export = steps.add_parser("export", help="Write the manifest to sign (server).")
        export.add_argument("version")
        export.add_argument("--product", default="")
        export.add_argument("--out", type=Path, required=True)
        add_signing_arguments(steps.add_parser("sign", help="Add your signature."))
        attach = steps.add_parser("attach", help="Store signatures (server).")
        attach.add_argument("version")
        attach.add_argument("signature", type=Path)
        attach.add_argument("--product", default="")
        status = steps.add_parser("status", help="Signatures each release has.")
        status.add_argument("version", nargs="?")
        status.add_argument("--product", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"_{options['step']}")(options)

    def _release(self, options: dict[str, Any]) -> Release:
        product = options["product"] or settings.VENDOR_PRODUCT
        release = Release.objects.of(product).filter(version=options["version"]).first()
        if release is None:
            raise CommandError(f"there is no release {product} {options['version']}")
        return release

    def _export(self, options: dict[str, Any]) -> None:
        release = self._release(options)
        options["out"].write_bytes(release.manifest_json.encode("utf-8"))
        self.stdout.write(
            f"Wrote the manifest of {release} to {options['out']}; sign it with "
            "`sign_release sign` where a release key lives."
        )

    def _sign(self, options: dict[str, Any]) -> None:
        sign(self, options)

    def _attach(self, options: dict[str, Any]) -> None:
        release = self._release(options)
        try:
            text = options["signature"].read_text()
        except OSError as e:
            raise CommandError(f"{e.filename} cannot be read ({e.strerror})") from None
        try:
            release = actions.attach_release_signature(
                release.pk, text, actor=Actor.command()
            )
        except ActionRefused as e:
            raise CommandError(str(e)) from None
        self._status_line(release)

    def _status(self, options: dict[str, Any]) -> None:
        product = options["product"] or settings.VENDOR_PRODUCT
        releases = Release.objects.of(product)
        if options["version"]:
            releases = releases.filter(version=options["version"])
        for release in releases:
            self._status_line(release)

    def _status_line(self, release: Release) -> None:
        signers, needed = roots.release_signers(release)
        state = (
            "listed when enabled"
            if release.release_signed
            else f"waits for {needed - len(signers)} more"
        )
        self.stdout.write(
            f"{release}: signed by {len(signers)} of the {needed} release keys needed "
            f"({', '.join(signers) or 'none'}); {state}"
        )
