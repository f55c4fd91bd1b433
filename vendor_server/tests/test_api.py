"""The school API: auth, throttling, ETags, manifests, bundles, reports, check-ins."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from clms_updates.manifest import parse_index, parse_manifest, verify_detached
from vendor_server import checkins, keys, schools
from vendor_server.models import CheckIn, School, UpdateReport
from vendor_server.tests.conftest import FAKE_IMAGE
from vendor_server.tests.factories import make_release, make_school

pytestmark = [pytest.mark.django_db, pytest.mark.services]

BASE = "/vendor/api/v1/"


def client_for(key: str) -> APIClient:
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {key}",
        HTTP_X_CLMS_VERSION="1.0.0",
        HTTP_X_AGENT_VERSION="0.9.0",
    )
    return client


def test_an_unknown_or_missing_key_gets_401_json(offline) -> None:
    missing = APIClient().get(BASE + "index")
    assert missing.status_code == 401
    assert missing.json()["code"] == "missing_key"
    wrong = client_for("clms_not-a-key").get(BASE + "index")
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "invalid_key"
    assert "Bearer" in wrong["WWW-Authenticate"]


def test_a_revoked_key_gets_403_and_a_rotated_key_works(offline) -> None:
    school, key = make_school()
    assert client_for(key).get(BASE + "index").status_code == 200
    schools.revoke(school)
    refused = client_for(key).get(BASE + "index")
    assert refused.status_code == 403
    assert refused.json()["code"] == "revoked_key"
    schools.reinstate(school)
    new_key = schools.rotate_key(school)
    assert client_for(key).get(BASE + "index").status_code == 401
    assert client_for(new_key).get(BASE + "index").status_code == 200
    assert School.objects.get().api_key_hash not in (key, new_key)


def test_requests_past_the_rate_get_429_with_retry_after(offline, settings) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "vendor_school": "3/minute",
        },
    }
    _, key = make_school()
    _, other_key = make_school()
    client = client_for(key)
    codes = [client.get(BASE + "index").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    throttled = client.get(BASE + "index")
    assert 1 <= int(throttled["Retry-After"]) <= 60
    assert throttled.json()["code"] == "throttled"
    assert client_for(other_key).get(BASE + "index").status_code == 200


def test_the_index_answers_304_to_a_matching_etag_until_it_changes(offline) -> None:
    release = make_release("1.0.0", FAKE_IMAGE)
    _, key = make_school()
    client = client_for(key)
    first = client.get(BASE + "index")
    etag = first["ETag"]
    again = client.get(BASE + "index", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    from clms_updates.actions import Actor
    from vendor_server import actions

    actions.set_enabled(release.pk, False, actor=Actor.system())
    changed = client.get(BASE + "index", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert parse_index(changed.json()["index"].encode()).releases == ()


def test_index_raw_forms_verify_like_the_wrapped_one(offline) -> None:
    make_release("1.0.0", FAKE_IMAGE)
    _, key = make_school()
    client = client_for(key)
    wrapped = client.get(BASE + "index").json()
    raw = client.get(BASE + "index.json").content
    signature = client.get(BASE + "index.json.asc").content.decode()
    assert raw == wrapped["index"].encode("utf-8")
    assert signature == wrapped["signature"]
    home = keys.gnupg_home()
    assert verify_detached(raw, signature, gnupghome=home, pinned=[offline]) == offline
    assert "BEGIN PGP PUBLIC KEY BLOCK" in client.get(BASE + "keys").content.decode()


def test_a_manifest_is_served_only_to_schools_that_may_see_it(offline) -> None:
    make_release("1.0.0", FAKE_IMAGE)
    make_release("2.0.0-beta.1", FAKE_IMAGE, channel="beta")
    _, key = make_school("stable")
    client = client_for(key)
    answer = client.get(BASE + "releases/1.0.0/manifest")
    assert answer.status_code == 200
    assert parse_manifest(answer.json()["manifest"].encode()).version == "1.0.0"
    assert (
        client.get(
            BASE + "releases/1.0.0/manifest", HTTP_IF_NONE_MATCH=answer["ETag"]
        ).status_code
        == 304
    )
    assert (
        client.get(BASE + "releases/1.0.0/manifest.json").content
        == answer.json()["manifest"].encode()
    )
    hidden = client.get(BASE + "releases/2.0.0-beta.1/manifest")
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "release_not_found"
    assert client.get(BASE + "releases/9.9.9/manifest.json.asc").status_code == 404


def test_the_bundle_streams_and_resumes_with_range(offline, tmp_path: Path) -> None:
    from clms_updates.manifest import Image
    from vendor_server.tests.test_publishing import make_bundle

    bundle = make_bundle(tmp_path / "clms-1.0.0.zip", "1.0.0", FAKE_IMAGE)
    assert Image("web", FAKE_IMAGE)
    make_release("1.0.0", FAKE_IMAGE, bundle_path=bundle, bundle_name=bundle.name)
    _, key = make_school()
    client = client_for(key)
    whole = client.get(BASE + "releases/1.0.0/bundle")
    assert whole.status_code == 200
    assert whole["Accept-Ranges"] == "bytes"
    body = b"".join(whole.streaming_content)
    assert body == bundle.read_bytes()
    part = client.get(BASE + "releases/1.0.0/bundle", HTTP_RANGE="bytes=10-")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 10-{len(body) - 1}/{len(body)}"
    assert b"".join(part.streaming_content) == body[10:]
    assert zipfile.is_zipfile(bundle)
    beyond = client.get(
        BASE + "releases/1.0.0/bundle", HTTP_RANGE=f"bytes={len(body)}-"
    )
    assert beyond.status_code == 416


def test_a_release_without_bundle_answers_404(offline) -> None:
    make_release("1.0.0", FAKE_IMAGE)
    _, key = make_school()
    answer = client_for(key).get(BASE + "releases/1.0.0/bundle")
    assert answer.status_code == 404
    assert answer.json()["code"] == "bundle_not_found"


def test_reports_are_stored_and_bad_ones_get_field_errors(offline) -> None:
    release = make_release("1.1.0", FAKE_IMAGE)
    school, key = make_school()
    client = client_for(key)
    answer = client.post(
        BASE + "reports",
        {
            "run_id": 7,
            "from_version": "1.0.0",
            "to_version": "1.1.0",
            "outcome": "succeeded",
            "duration_seconds": 42,
            "error_code": "",
            "log_excerpt": "ok",
        },
        format="json",
    )
    assert answer.status_code == 201
    report = UpdateReport.objects.get(pk=answer.json()["id"])
    assert report.release == release
    assert report.school == school
    assert School.objects.get().current_version == "1.1.0"
    bad = client.post(
        BASE + "reports",
        {
            "run_id": "x",
            "to_version": "1.1.0",
            "outcome": "exploded",
            "log_excerpt": "x" * 4001,
        },
        format="json",
    )
    assert bad.status_code == 400
    assert {"run_id", "outcome", "log_excerpt", "from_version"} <= set(bad.json())


def test_check_ins_are_buffered_then_flushed_without_a_write_per_request(
    offline, django_assert_max_num_queries
) -> None:
    school, key = make_school()
    client = client_for(key)
    client.get(BASE + "index")
    with django_assert_max_num_queries(0):
        client.get(BASE + "index")
    assert CheckIn.objects.count() == 0
    assert checkins.flush_checkins() == 1
    school.refresh_from_db()
    assert school.current_version == "1.0.0"
    assert school.agent_version == "0.9.0"
    assert school.last_seen is not None
    checkin = CheckIn.objects.get()
    assert (checkin.clms_version, checkin.agent_version) == ("1.0.0", "0.9.0")
    assert checkins.flush_checkins() == 0


def test_a_flush_writes_every_school_in_batches_and_keeps_versions_not_sent(
    monkeypatch,
) -> None:
    """Many schools in one flush (more than a batch); a poll without versions
    changes only when the school was seen."""
    monkeypatch.setattr(checkins, "BATCH", 2)
    schools = [make_school()[0] for _ in range(5)]
    School.objects.filter(pk=schools[0].pk).update(
        current_version="1.0.0", agent_version="0.9.0"
    )
    for n, school in enumerate(schools):
        checkins.record_checkin(school.pk, "" if n == 0 else f"1.{n}.0", "")
    assert checkins.flush_checkins() == 5
    first = School.objects.get(pk=schools[0].pk)
    assert (first.current_version, first.agent_version) == ("1.0.0", "0.9.0")
    assert first.last_seen is not None
    assert [
        s.current_version
        for s in School.objects.filter(pk__in=[s.pk for s in schools[1:]]).order_by(
            "pk"
        )
    ] == ["1.1.0", "1.2.0", "1.3.0", "1.4.0"]
    assert CheckIn.objects.count() == 5


def test_old_check_in_history_is_pruned_and_schools_keep_their_last_seen(
    settings,
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    settings.VENDOR_CHECKIN_KEEP_DAYS = 30
    school, _ = make_school()
    now = timezone.now()
    school.last_seen = now - timedelta(days=40)
    school.save(update_fields=["last_seen"])
    for days in (45, 31, 29, 1):
        CheckIn.objects.create(school=school, seen_at=now - timedelta(days=days))
    assert checkins.prune_checkins(now=now, batch=1) == 2  # in batches of one
    kept = sorted((now - c.seen_at).days for c in CheckIn.objects.filter(school=school))
    assert kept == [1, 29]
    school.refresh_from_db()
    assert school.last_seen == now - timedelta(days=40)
    assert checkins.prune_checkins(now=now) == 0
