"""The signed index: sequence, expiry, refresh by beat, per-school contents."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from clms_updates.actions import Actor
from clms_updates.manifest import (
    parse_index,
    school_token,
    verify_detached,
    visible_part,
)
from vendor_server import actions, indexing, keys
from vendor_server.tasks import refresh_index
from vendor_server.tests.conftest import FAKE_IMAGE
from vendor_server.tests.factories import make_release, make_school

pytestmark = [pytest.mark.django_db, pytest.mark.services]

STAFF = Actor.system()


def test_the_sequence_grows_by_one_on_every_change(offline) -> None:
    seen = [indexing.current_sequence()]

    def step() -> None:
        seen.append(indexing.current_sequence())

    release = make_release("1.0.0", FAKE_IMAGE)
    step()
    actions.set_enabled(release.pk, False, actor=STAFF)
    step()
    actions.set_enabled(release.pk, True, actor=STAFF)
    step()
    actions.set_rollout_percent(release.pk, 30, actor=STAFF)
    step()
    actions.pause_release(release.pk, actor=STAFF, reason="testing")
    step()
    actions.resume_release(release.pk, actor=STAFF)
    step()
    actions.mark_critical(release.pk, timezone.now() + timedelta(days=3), actor=STAFF)
    step()
    actions.resign_release(release.pk, actor=STAFF)
    step()
    actions.delete_release(release.pk, actor=STAFF)
    step()
    assert seen == list(range(seen[0], seen[0] + 10))


def test_the_index_is_signed_and_lists_what_the_school_sees(offline) -> None:
    stable = make_release("1.0.0", FAKE_IMAGE)
    make_release("1.1.0-beta.1", FAKE_IMAGE, channel="beta")
    school, _ = make_school("stable")
    beta_school, _ = make_school("beta")

    document = indexing.signed_index_for(school.api_key_hash, school.channel)
    data = document.text.encode()
    verify_detached(
        data, document.signature, gnupghome=keys.gnupg_home(), pinned=[offline]
    )
    index = parse_index(data)
    assert [e.version for e in index.releases] == ["1.0.0"]
    assert index.releases[0].manifest_sha256 == stable.manifest_sha256
    assert index.sequence == indexing.current_sequence()
    assert index.expires - index.generated_at == timedelta(days=7)

    beta_index = parse_index(
        indexing.signed_index_for(beta_school.api_key_hash, "beta").text.encode()
    )
    assert [e.version for e in beta_index.releases] == ["1.0.0", "1.1.0-beta.1"]


def test_schools_with_the_same_view_share_one_signature(offline, monkeypatch) -> None:
    make_release("1.0.0", FAKE_IMAGE)
    first, _ = make_school()
    second, _ = make_school()
    document = indexing.signed_index_for(first.api_key_hash, "stable")
    calls = []
    monkeypatch.setattr(keys, "sign", lambda data: calls.append(data) or "")
    indexing.forget_local_caches()
    assert indexing.signed_index_for(second.api_key_hash, "stable") == document
    assert calls == []


def test_beat_refreshes_the_expiry_well_before_it_passes(offline) -> None:
    school, _ = make_school()
    start = indexing.index_state()
    assert refresh_index() is False
    with time_machine.travel(start.expires - timedelta(days=4), tick=False):
        assert refresh_index() is True
        state = indexing.index_state()
        assert state.sequence == start.sequence + 1
        assert state.expires == timezone.now() + timedelta(days=7)
        index = parse_index(
            indexing.signed_index_for(school.api_key_hash, "stable").text.encode()
        )
        assert index.expires == state.expires.replace(microsecond=0)
        assert index.expires > timezone.now() + timedelta(days=6)


def test_agents_that_read_channel_indexes_get_one_document_per_channel(
    offline,
) -> None:
    """Every school of a channel reads the same bytes; the rollout is decided by
    the agent with the rule the server applies to manifests (format 2)."""
    make_release("1.0.0", FAKE_IMAGE)
    staged = make_release("1.1.0", FAKE_IMAGE, rollout_percent=30)
    make_release("1.2.0-beta.1", FAKE_IMAGE, channel="beta")
    answers = []
    reached = []
    for _ in range(40):
        _, key = make_school("stable")
        client = APIClient()
        client.credentials(
            HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_X_CLMS_INDEX_FORMAT="2"
        )
        answer = client.get("/vendor/api/v1/index").json()
        answers.append(answer["index"])
        index = parse_index(answer["index"].encode())
        mine = [e.version for e in visible_part(index, school_token(key)).releases]
        manifest = client.get("/vendor/api/v1/releases/1.1.0/manifest")
        assert (manifest.status_code == 200) == ("1.1.0" in mine)
        reached.append("1.1.0" in mine)
    assert len(set(answers)) == 1  # one signed document for the whole channel
    index = parse_index(answers[0].encode())
    assert index.channel == "stable" and index.format == 2
    assert [(e.version, e.rollout_percent) for e in index.releases] == [
        ("1.0.0", 100),
        ("1.1.0", staged.rollout_percent),
    ]
    assert 0 < sum(reached) < 40  # the staged release reached some schools only


def test_after_a_restore_the_index_goes_above_anything_the_cache_served(
    offline,
) -> None:
    """The shared cache outlives a database restored from a backup."""
    from django.core.cache import cache

    from vendor_server.models import IndexState

    first = indexing.signed_channel_index("stable")
    other = "f" * 32  # a database whose cache says it is far ahead
    cache.set(indexing.SEQUENCE_CACHE_KEY.format(epoch=other), 999, None)
    IndexState.objects.filter(pk=1).update(epoch=other)
    indexing.forget_local_caches()
    # After a restore: above anything served under the old epoch, a new epoch,
    # and none of its documents.
    sequence = indexing.resume_after_restore()
    assert sequence == 1000
    indexing.forget_local_caches()
    assert indexing.current_sequence() == 1000
    assert IndexState.objects.get().epoch != other
    again = indexing.signed_channel_index("stable")
    assert parse_index(again.text.encode()).sequence == 1000
    assert again.text != first.text
    assert indexing.resume_after_restore(at_least=5000) == 5001  # Redis lost too
