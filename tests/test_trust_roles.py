"""Roles of trust end to end: the real vendor server over HTTP and the agent checking it.

Keys: the server's online key (what schools pin, root 0), two root keys and
two release managers' keys in an "offline" GnuPG home the server never sees.
The classes: a stolen online key cannot make a release installable; a root
needs a threshold of the old root keys and of the new; agents follow a
rotation by themselves and refuse the revoked key afterwards; one key signing
twice counts once; a stored root altered in the database is refused.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from clms_updates.manifest import (
    IndexEntry,
    ReleaseIndex,
    join_signatures,
    parse_manifest,
    sign_detached,
)
from conftest import generate_signing_key
from updates import checking
from updates.models import AgentState, AvailableRelease, TrustedRoot, UpdateCheck
from updates.sources import SignedDocument, Source, VendorSource
from updates.trust import CheckRefused, current_root
from vendor_server import indexing
from vendor_server.models import Release
from vendor_server.publishing import ReleaseDraft, publish
from vendor_server.schools import create_school

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

IMAGE = "registry.invalid/clms/web@sha256:" + "b" * 64


def _home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    home.chmod(0o700)
    return home


def _copy_public(fingerprint: str, source: Path, target: Path) -> None:
    armored = subprocess.run(
        ["gpg", "--homedir", str(source), "--armor", "--export", fingerprint],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(
        ["gpg", "--homedir", str(target), "--batch", "--import"],
        input=armored,
        check=True,
        capture_output=True,
    )


@dataclass
class Fleet:
    server_home: Path
    online: str
    offline_home: Path
    root_keys: list[str]
    managers: list[str]
    agent_home: Path
    api_key: str
    url: str
    tmp: Path

    def source(self) -> VendorSource:
        return VendorSource(self.url, self.api_key, "1.0.0")

    def check(self) -> UpdateCheck:
        indexing.forget_local_caches()
        return checking.run_check(sources=[self.source()])

    def draft_root(self, version: int, *, index_key: str, out: str) -> Path:
        path = self.tmp / out
        call_command(
            "vendor_root",
            "draft",
            "--version",
            str(version),
            *[a for key in self.root_keys for a in ("--root-key", key)],
            "--root-threshold",
            "2",
            *[a for key in self.managers for a in ("--release-key", key)],
            "--release-threshold",
            "2",
            "--index-key",
            index_key,
            "--gnupghome",
            str(self.offline_home),
            "--out",
            str(path),
        )
        return path

    def sign(self, command: str, path: Path, key: str, home: Path) -> None:
        call_command(command, "sign", str(path), "--key", key, "--gnupghome", str(home))


@pytest.fixture
def fleet(live_server, settings, tmp_path: Path) -> Iterator[Fleet]:
    server_home, offline_home, agent_home = _home(), _home(), _home()
    online = generate_signing_key(server_home, "CLMS Online")
    root_keys = [generate_signing_key(offline_home, f"CLMS Root {i}") for i in (1, 2)]
    managers = [
        generate_signing_key(offline_home, f"CLMS Release Manager {i}") for i in (1, 2)
    ]
    _copy_public(online, server_home, offline_home)
    settings.VENDOR_GNUPG_HOME = server_home
    settings.VENDOR_SIGNING_KEY = online
    settings.VENDOR_KEY_PASSPHRASE = ""
    settings.VENDOR_REGISTRY_CHECK = False
    settings.VENDOR_BUNDLE_DIR = tmp_path / "bundles"
    settings.UPDATES_GNUPG_HOME = agent_home
    settings.UPDATES_VENDOR_KEY_FINGERPRINTS = [online]
    settings.UPDATES_VENDOR_PUBLIC_KEY_FILE = ""
    settings.UPDATES_CHANNEL = "stable"
    AgentState.objects.update_or_create(pk=1, defaults={"installed_version": "1.0.0"})
    _, api_key = create_school("Roles Primary")
    indexing.forget_local_caches()
    yield Fleet(
        server_home,
        online,
        offline_home,
        root_keys,
        managers,
        agent_home,
        api_key,
        live_server.url,
        tmp_path,
    )
    indexing.forget_local_caches()
    for home in (server_home, offline_home, agent_home):
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "all"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(home, ignore_errors=True)


def _release(version: str) -> Release:
    return publish(
        ReleaseDraft(version=version, images=[{"service": "web", "reference": IMAGE}]),
        published_by="tests",
    )


def _publish_root_one(fleet: Fleet) -> None:
    """Root 1: two root keys (2 of 2), two release managers (2 of 2), the online index key."""
    path = fleet.draft_root(1, index_key=fleet.online, out="root-1.json")
    # Root 0 is the online key: it signs root 1 once, with the new root keys.
    fleet.sign("vendor_root", path, fleet.online, fleet.server_home)
    for key in fleet.root_keys:
        fleet.sign("vendor_root", path, key, fleet.offline_home)
    call_command("vendor_root", "publish", str(path))


def test_a_release_is_installable_only_with_its_managers_signatures(fleet: Fleet):
    release = _release("1.0.1")
    assert release.release_signed  # root 0: the online key is the release key
    _publish_root_one(fleet)
    release.refresh_from_db()
    assert not release.release_signed  # the online signature alone no longer counts

    check = fleet.check()
    assert check.outcome == UpdateCheck.Outcome.OK, check.reason
    assert check.found_version == ""
    assert TrustedRoot.objects.get().version == 1  # the agent followed root 1
    assert current_root().role("release").keys == tuple(fleet.managers)

    manifest = fleet.tmp / "clms-1.0.1.json"
    call_command("sign_release", "export", "1.0.1", "--out", str(manifest))
    fleet.sign("sign_release", manifest, fleet.managers[0], fleet.offline_home)
    call_command("sign_release", "attach", "1.0.1", str(manifest) + ".asc")
    assert not Release.objects.get(pk=release.pk).release_signed  # 1 of 2
    assert fleet.check().found_version == ""

    fleet.sign("sign_release", manifest, fleet.managers[1], fleet.offline_home)
    call_command("sign_release", "attach", "1.0.1", str(manifest) + ".asc")
    assert Release.objects.get(pk=release.pk).release_signed
    check = fleet.check()
    assert check.outcome == UpdateCheck.Outcome.OK, check.reason
    assert check.found_version == "1.0.1"


def test_a_signature_by_a_key_that_is_no_release_key_is_not_attached(fleet: Fleet):
    _release("1.0.1")
    _publish_root_one(fleet)
    manifest = fleet.tmp / "m.json"
    call_command("sign_release", "export", "1.0.1", "--out", str(manifest))
    fleet.sign("sign_release", manifest, fleet.root_keys[0], fleet.offline_home)
    with pytest.raises(CommandError, match="not a pinned vendor key"):
        call_command("sign_release", "attach", "1.0.1", str(manifest) + ".asc")


class StolenOnlineKey(Source):
    """A hostile server holding the online key: it signs an index and a manifest."""

    name = "stolen"

    def __init__(self, fleet: Fleet, real: VendorSource, manifest: bytes) -> None:
        self.fleet, self.real, self.manifest = fleet, real, manifest
        self.sequence = 10_000  # well ahead, and new on every answer

    def _sign(self, data: bytes) -> str:
        return sign_detached(
            data, gnupghome=self.fleet.server_home, fingerprint=self.fleet.online
        )

    def fetch_roots(self, after: int) -> list[SignedDocument]:
        return self.real.fetch_roots(after)

    def fetch_keys(self) -> str:
        return self.real.fetch_keys()

    def fetch_index(self) -> SignedDocument:
        now = timezone.now().replace(microsecond=0)
        self.sequence += 1
        index = ReleaseIndex(
            product="clms",
            sequence=self.sequence,
            generated_at=now,
            expires=now + timedelta(days=1),
            releases=(IndexEntry.for_manifest(parse_manifest(self.manifest)),),
        )
        data = index.to_bytes()
        return SignedDocument(data, self._sign(data))

    def fetch_manifest(self, version: str) -> SignedDocument:
        return SignedDocument(self.manifest, self._sign(self.manifest))


def test_a_stolen_online_key_cannot_make_a_critical_release_installable(fleet: Fleet):
    forged = publish(
        ReleaseDraft(
            version="9.9.9",
            images=[{"service": "web", "reference": IMAGE}],
            critical=True,
            force_after=timezone.now() + timedelta(days=1),
        ),
        published_by="attacker",
    )
    attacker = StolenOnlineKey(fleet, fleet.source(), forged.manifest_json.encode())
    # Under root 0 the online key is everything: the attack works.
    assert checking.run_check(sources=[attacker]).found_version == "9.9.9"
    AvailableRelease.objects.all().delete()

    _publish_root_one(fleet)
    check = checking.run_check(sources=[attacker])
    assert check.outcome == UpdateCheck.Outcome.REFUSED
    assert "needs valid signatures of 2 of the 2 release key(s), has 0" in check.reason
    assert not AvailableRelease.objects.exists()


def test_a_root_needs_a_threshold_of_the_old_root_keys_and_of_its_own(fleet: Fleet):
    path = fleet.draft_root(1, index_key=fleet.online, out="root-1.json")
    fleet.sign("vendor_root", path, fleet.online, fleet.server_home)
    fleet.sign("vendor_root", path, fleet.root_keys[0], fleet.offline_home)
    with pytest.raises(CommandError, match="has 1"):  # 1 of its own 2 root keys
        call_command("vendor_root", "publish", str(path))

    lone = fleet.draft_root(1, index_key=fleet.online, out="lone.json")
    for key in fleet.root_keys:
        fleet.sign("vendor_root", lone, key, fleet.offline_home)
    with pytest.raises(CommandError, match="previous root"):  # root 0 did not sign
        call_command("vendor_root", "publish", str(lone))

    skipped = fleet.draft_root(2, index_key=fleet.online, out="root-2.json")
    fleet.sign("vendor_root", skipped, fleet.online, fleet.server_home)
    with pytest.raises(CommandError, match="does not follow root 0"):
        call_command("vendor_root", "publish", str(skipped))


def test_agents_follow_a_rotation_and_refuse_the_revoked_key(fleet: Fleet, settings):
    _release("1.0.1")
    _publish_root_one(fleet)
    assert fleet.check().outcome == UpdateCheck.Outcome.OK
    # The online key is thought stolen: root 2 names a new one for the index.
    new_online = generate_signing_key(fleet.server_home, "CLMS Online 2")
    _copy_public(new_online, fleet.server_home, fleet.offline_home)
    path = fleet.draft_root(2, index_key=new_online, out="root-2.json")
    for key in fleet.root_keys:  # the old and the new root keys are the same two
        fleet.sign("vendor_root", path, key, fleet.offline_home)
    with pytest.raises(CommandError, match="does not list this server's signing key"):
        call_command("vendor_root", "publish", str(path))
    settings.VENDOR_SIGNING_KEY = new_online
    call_command("vendor_root", "publish", str(path))

    check = fleet.check()
    assert check.outcome == UpdateCheck.Outcome.OK, check.reason
    assert current_root().version == 2
    # An index signed by the old, revoked online key is refused from now on.
    manifest = Release.objects.get(version="1.0.1").manifest_json.encode()
    old = StolenOnlineKey(fleet, fleet.source(), manifest)
    settings.VENDOR_SIGNING_KEY = fleet.online
    refused = checking.run_check(sources=[old])
    assert refused.outcome == UpdateCheck.Outcome.REFUSED
    assert "not a pinned vendor key" in refused.reason


def test_one_key_signing_twice_counts_once(fleet: Fleet):
    _release("1.0.1")
    _publish_root_one(fleet)
    manifest = fleet.tmp / "m.json"
    call_command("sign_release", "export", "1.0.1", "--out", str(manifest))
    data = manifest.read_bytes()
    twice = join_signatures(
        sign_detached(data, gnupghome=fleet.offline_home, fingerprint=fleet.managers[0])
        for _ in range(2)
    )
    (fleet.tmp / "twice.asc").write_text(twice)
    call_command("sign_release", "attach", "1.0.1", str(fleet.tmp / "twice.asc"))
    assert not Release.objects.get(version="1.0.1").release_signed


def test_a_stored_root_changed_in_the_database_is_refused(fleet: Fleet):
    _publish_root_one(fleet)
    assert fleet.check().outcome == UpdateCheck.Outcome.OK
    stored = TrustedRoot.objects.get()
    TrustedRoot.objects.filter(pk=stored.pk).update(
        root_json=stored.root_json.replace('"threshold":2', '"threshold":1', 1)
    )
    with pytest.raises(CheckRefused, match="no longer verifies"):
        current_root()
    check = fleet.check()
    assert check.outcome == UpdateCheck.Outcome.REFUSED
    assert "no longer verifies" in check.reason


def test_a_mirror_follows_the_vendors_roots_and_passes_them_on(
    fleet: Fleet, settings
) -> None:
    import requests

    _publish_root_one(fleet)
    settings.UPDATES_VENDOR_URL = fleet.url
    settings.UPDATES_VENDOR_API_KEY = fleet.api_key
    settings.UPDATES_MIRROR_TOKENS = ["lan-token"]
    settings.UPDATES_SOURCES = ["mirror", "vendor"]
    settings.UPDATES_CACHE_DIR = fleet.tmp / "cache"
    base = f"{fleet.url}/api/updates/mirror/vendor/api/v1/roots"
    auth = {"Authorization": "Bearer lan-token"}
    answer = requests.get(base, params={"after": 0}, headers=auth, timeout=20)
    assert answer.status_code == 200, answer.text
    (root,) = answer.json()["roots"]
    assert root["version"] == 1
    assert TrustedRoot.objects.get().version == 1  # the mirror checked it first
    bad = requests.get(base, params={"after": "-1"}, headers=auth, timeout=5)
    assert bad.status_code == 400 and bad.json()["code"] == "bad_after"
