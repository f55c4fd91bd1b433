"""``manage.py seed_vendor_demo``: the vendor half of the embedded demo (idempotent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from vendor_server import keys
from vendor_server.models import School, hash_api_key
from vendor_server.schools import create_school, forget_key

DEMO_SCHOOL = "Demo School"


class Command(BaseCommand):
    help = (
        "Create the vendor key if missing, a demo school with a fixed API key, and "
        "var/demo-agent.env so the demo agent can talk to this vendor server."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if not keys.secret_fingerprints():
            fingerprint = keys.generate_key(
                "CLMS Demo Vendor",
                "demo-vendor@clms.invalid",
                passphrase=settings.VENDOR_KEY_PASSPHRASE,
            )
            self.stdout.write(f"Created the demo vendor key {fingerprint}.")
        fingerprint = keys.signing_fingerprint()
        var = Path(settings.VAR_DIR)
        var.mkdir(parents=True, exist_ok=True)
        key_file = var / "vendor-public-key.asc"
        key_file.write_text(keys.export_public_key(fingerprint))

        api_key = settings.VENDOR_DEMO_API_KEY
        school = School.objects.filter(name=DEMO_SCHOOL).first()
        if school is None:
            school, _ = create_school(DEMO_SCHOOL, api_key=api_key)
        elif school.api_key_hash != hash_api_key(api_key):
            school.set_api_key(api_key)
            school.revoked_at = None
            school.save()
            forget_key(school.api_key_hash)

        env_file = var / "demo-agent.env"
        env_file.write_text(
            "UPDATES_VENDOR_URL=http://127.0.0.1:8000\n"
            f"UPDATES_VENDOR_API_KEY={api_key}\n"
            f"UPDATES_VENDOR_KEY_FINGERPRINTS={fingerprint}\n"
            f"UPDATES_VENDOR_PUBLIC_KEY_FILE={key_file}\n"
        )
        env_file.chmod(0o600)
        self.stdout.write(
            f"Demo school {school.name!r}: API key {api_key}\n"
            f"Vendor key fingerprint: {fingerprint}\n"
            f"Agent settings written to {env_file}."
        )
