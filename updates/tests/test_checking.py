"""Checking for updates against a real HTTP server on loopback.

The ``vendor`` fixture is a stand-in for the vendor server's HTTP contract
(``/vendor/api/v1/index``, ``releases/<v>/manifest``, ``keys``) serving metadata
signed with a real GnuPG key through ``clms_updates.manifest``. The real vendor
server is tested against the agent by the end-to-end suite.
"""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler

import gnupg
import pytest
from django.core import mail

from clms_updates import manifest as m
from updates import checking, releases, trust
from updates.models import AgentState, AvailableRelease, UpdateCheck
from updates.tests.factories import make_index, make_manifest

pytestmark = pytest.mark.django_db

OK = UpdateCheck.Outcome.OK
REFUSED = UpdateCheck.Outcome.REFUSED
OFFLINE = UpdateCheck.Outcome.OFFLINE


def test_a_signed_release_is_verified_and_stored_with_its_changelog(vendor) -> None:
    vendor.publish([make_manifest("1.1.0"), make_manifest("1.0.1")], sequence=3)

    check = checking.run_check()

    assert check.outcome == OK, check.reason
    assert check.found_version == "1.1.0"
    assert check.index_sequence == 3
    release = AvailableRelease.objects.get()
    assert release.version == "1.1.0"
    assert "Faster loans" in release.changelog
    assert release.signer_fingerprint == vendor.fingerprint
    assert release.manifest().version == "1.1.0"
    state = AgentState.load()
    assert state.highest_sequence == 3
    assert state.last_good_check_at is not None
    assert not state.offline


def test_the_agent_sends_its_key_and_versions(vendor) -> None:
    vendor.publish([make_manifest("1.1.0")])
    checking.run_check()
    _path, headers = vendor.requests[-1]
    assert headers["Authorization"] == "Bearer school-key"
    assert headers["X-CLMS-Version"] == "1.0.0"
    assert headers["X-Agent-Version"]


def test_an_unchanged_index_is_answered_from_the_etag_cache(vendor) -> None:
    vendor.publish([make_manifest("1.1.0")])
    assert checking.run_check().outcome == OK
    assert checking.run_check().outcome == OK
    index_requests = [h for p, h in vendor.requests if p == "index"]
    assert "If-None-Match" not in index_requests[0]
    assert index_requests[1]["If-None-Match"]


def test_nothing_newer_means_up_to_date(vendor) -> None:
    vendor.publish([make_manifest("0.9.0")])
    check = checking.run_check()
    assert check.outcome == OK
    assert check.found_version == ""
    assert "up to date" in check.reason
    assert not AvailableRelease.objects.exists()


def test_admins_are_emailed_once_per_release(vendor) -> None:
    vendor.publish([make_manifest("1.1.0")])
    checking.run_check()
    checking.run_check()
    assert len(mail.outbox) == 1
    assert "CLMS 1.1.0 is available" in mail.outbox[0].subject
    assert mail.outbox[0].to == ["it@school.example"]
    assert AvailableRelease.objects.get().notified_at is not None


# ---------------------------------------------------------------------------
# Refusals: nothing stored, reason recorded
# ---------------------------------------------------------------------------


def assert_refused(check: UpdateCheck, *fragments: str) -> None:
    assert check.outcome == REFUSED, check.reason
    for fragment in fragments:
        assert fragment in check.reason
    assert not AvailableRelease.objects.exists()
    assert UpdateCheck.objects.get(pk=check.pk).reason == check.reason


def test_a_tampered_index_is_refused(vendor) -> None:
    vendor.publish([make_manifest("1.1.0")])
    text, signature = vendor.index
    vendor.index = (text.replace('"sequence":1', '"sequence":9'), signature)
    assert_refused(checking.run_check(), "index", "does not verify")


def test_a_tampered_manifest_is_refused(vendor) -> None:
    vendor.publish([make_manifest("1.1.0")])
    text, signature = vendor.manifests["1.1.0"]
    vendor.manifests["1.1.0"] = (text.replace("Faster", "Slower"), signature)
    assert_refused(checking.run_check(), "manifest 1.1.0", "does not verify")


def test_an_index_signed_by_an_unpinned_key_is_refused(vendor, rogue_key) -> None:
    vendor.publish([make_manifest("1.1.0")])
    text, _ = vendor.index
    vendor.index = (text, vendor.sign(text.encode(), *rogue_key))
    assert_refused(checking.run_check(), "not a pinned vendor key")


def test_a_known_but_unpinned_signer_is_refused(vendor, rogue_key, settings) -> None:
    rogue_public = str(gnupg.GPG(gnupghome=str(rogue_key[0])).export_keys(rogue_key[1]))
    m.import_public_keys(settings.UPDATES_GNUPG_HOME, rogue_public)
    vendor.publish([make_manifest("1.1.0")])
    text, _ = vendor.index
    vendor.index = (text, vendor.sign(text.encode(), *rogue_key))
    assert_refused(checking.run_check(), rogue_key[1], "not a pinned vendor key")


def test_a_replayed_older_index_is_refused(vendor) -> None:
    vendor.publish([make_manifest("1.0.5")], sequence=7)
    assert checking.run_check().outcome == OK
    AvailableRelease.objects.all().delete()
    vendor.publish([make_manifest("1.0.6")], sequence=6)
    assert_refused(checking.run_check(), "sequence 6 is lower than 7")
    assert AgentState.load().highest_sequence == 7


def test_the_same_sequence_with_other_contents_is_refused_as_equivocation(
    vendor,
) -> None:
    release = make_manifest("1.0.5")
    index = vendor.publish([release], sequence=7)
    assert checking.run_check().outcome == OK
    vendor.publish([release], index=index)  # the same bytes again: polling
    assert checking.run_check().outcome == OK
    # Another school's view (the release not listed) under the sequence seen.
    vendor.publish(
        [], sequence=7, generated_at=datetime.now(UTC).replace(microsecond=0)
    )
    check = checking.run_check()
    assert check.outcome == REFUSED
    assert "under sequence 7" in check.reason and "equivocation" in check.reason
    # Nothing of the other view was applied: the release is not withdrawn.
    assert AvailableRelease.objects.get(version="1.0.5").withdrawn_at is None
    vendor.publish([], sequence=8)  # a new sequence may change anything
    assert checking.run_check().outcome == OK


def channel_index(manifests, percents, *, sequence, channel="stable"):  # type: ignore[no-untyped-def]
    """A format 2 index: the channel's releases with how far each rollout reached."""
    index = make_index(manifests, sequence=sequence)
    return replace(
        index,
        channel=channel,
        releases=tuple(
            replace(entry, rollout_percent=percent)
            for entry, percent in zip(index.releases, percents, strict=True)
        ),
    )


def version_with_bucket(inside: bool, percent: int) -> str:
    """A version whose staged rollout at ``percent`` reached this school, or not."""
    token = m.school_token("school-key")  # the stand-in's key
    for n in range(1, 1000):
        version = f"1.1.{n}"
        if (m.rollout_bucket(token, "clms", version) < percent) == inside:
            return version
    raise AssertionError("no such version")


def test_a_channel_index_offers_a_staged_release_only_where_it_reached(
    vendor,
) -> None:
    waiting = make_manifest(version_with_bucket(False, 30))
    vendor.publish([waiting], index=channel_index([waiting], [30], sequence=5))
    check = checking.run_check()
    assert check.outcome == OK, check.reason
    assert check.found_version == ""  # not this school's turn yet
    reached = make_manifest(version_with_bucket(True, 30))
    both = [waiting, reached]
    vendor.publish(both, index=channel_index(both, [30, 30], sequence=6))
    assert checking.run_check().found_version == reached.version


def test_a_critical_release_reaches_every_school_of_the_channel(vendor) -> None:
    critical = make_manifest(
        version_with_bucket(False, 1),
        critical=True,
        force_after=datetime.now(UTC) + timedelta(days=2),
    )
    vendor.publish([critical], index=channel_index([critical], [0], sequence=5))
    assert checking.run_check().found_version == critical.version


def test_the_index_of_another_channel_is_refused(vendor, settings) -> None:
    beta = make_manifest("1.1.0-beta.1", channel="beta")
    vendor.publish(
        [beta], index=channel_index([beta], [100], sequence=5, channel="beta")
    )
    assert_refused(checking.run_check(), "for the beta channel", "follows stable")


def test_an_index_of_another_product_is_refused(vendor) -> None:
    vendor.publish([make_manifest("1.1.0")], product="clms-analytics")
    assert_refused(checking.run_check(), "'clms-analytics'", "UPDATES_PRODUCT")
    assert not AvailableRelease.objects.exists()


def test_an_expired_index_is_refused(vendor) -> None:
    past = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    vendor.publish(
        [make_manifest("1.1.0")], generated_at=past, expires=past + timedelta(days=1)
    )
    assert_refused(checking.run_check(), "index expired")


def test_a_manifest_whose_version_differs_from_the_index_is_refused(vendor) -> None:
    real = make_manifest("1.1.0")
    vendor.publish([real])
    other = make_manifest("1.2.0")
    data = other.to_bytes()
    vendor.manifests["1.1.0"] = (data.decode(), vendor.sign(data))
    assert_refused(checking.run_check(), "sha256", "differs from the index")


def test_a_manifest_whose_digest_differs_from_the_index_is_refused(vendor) -> None:
    vendor.publish([make_manifest("1.1.0")])
    changed = make_manifest("1.1.0", changelog="a different build")
    data = changed.to_bytes()
    vendor.manifests["1.1.0"] = (data.decode(), vendor.sign(data))
    assert_refused(checking.run_check(), "not the release the index lists")


def test_a_signed_but_malformed_index_is_refused(vendor) -> None:
    vendor.publish([make_manifest("1.1.0")])
    text = '{"kind": "release-index", "sequence": '
    vendor.index = (text, vendor.sign(text.encode()))
    assert_refused(checking.run_check(), "malformed JSON")


def test_a_response_that_is_not_json_is_refused(vendor) -> None:
    def garbage(handler: BaseHTTPRequestHandler) -> None:
        body = b"<html>not json</html>"
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    vendor.overrides["index"] = garbage
    assert_refused(checking.run_check(), "malformed JSON")


def test_an_oversized_response_is_cut_off(vendor, settings) -> None:
    settings.UPDATES_MAX_RESPONSE_BYTES = 4096

    def huge(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()  # no Content-Length: read until the cap
        for _ in range(100):
            handler.wfile.write(b"x" * 1024)

    vendor.overrides["index"] = huge
    assert_refused(checking.run_check(), "more than 4096 bytes", "cut off")


def test_a_declared_oversized_response_is_refused_before_reading(
    vendor, settings
) -> None:
    settings.UPDATES_MAX_RESPONSE_BYTES = 4096
    vendor.publish([make_manifest("1.1.0", changelog="x" * 8000)])
    check = checking.run_check()
    assert_refused(check, "over the limit of 4096")


def test_an_endless_trickling_response_is_cut_off_after_the_budget(
    vendor, settings
) -> None:
    settings.UPDATES_SOURCE_TIMEOUT_SECONDS = 0.6

    def trickle(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        try:
            for _ in range(100):
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass

    vendor.overrides["index"] = trickle
    started = time.monotonic()
    check = checking.run_check()
    assert time.monotonic() - started < 3
    assert_refused(check, "still sending after 0.6 s", "cut off")


def _trickled_headers(handler: BaseHTTPRequestHandler) -> None:
    """A status line, then one header byte every 0.1 s: never a whole answer."""
    try:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(200):
            handler.wfile.write(b"X")
            handler.wfile.flush()
            time.sleep(0.1)
    except OSError:
        pass


def _trickled_error(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(503)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    try:
        for _ in range(200):
            handler.wfile.write(b"{")
            handler.wfile.flush()
            time.sleep(0.1)
    except OSError:
        pass


@pytest.mark.parametrize(
    "server", [_trickled_headers, _trickled_error], ids=["headers", "error-body"]
)
def test_a_server_trickling_its_headers_or_error_is_cut_off_at_the_budget(
    vendor, settings, server
) -> None:
    settings.UPDATES_SOURCE_TIMEOUT_SECONDS = 0.8
    vendor.overrides["index"] = server
    started = time.monotonic()
    check = checking.run_check()
    assert time.monotonic() - started < 4  # 20 s of trickle, cut at the budget
    assert check.outcome in (OFFLINE, REFUSED, UpdateCheck.Outcome.ERROR)
    assert check.outcome != OK


def test_a_non_https_source_is_refused_in_production(vendor, settings) -> None:
    settings.DEBUG = False
    settings.UPDATES_ALLOW_INSECURE_HTTP = True  # not enough with DEBUG off
    settings.UPDATES_VENDOR_URL = "http://vendor.example.invalid"
    assert_refused(checking.run_check(), "plain HTTP", "https://")


def test_plain_http_to_another_host_needs_the_explicit_setting(settings) -> None:
    from updates.sources.vendor import check_url_allowed

    settings.DEBUG = True
    settings.UPDATES_ALLOW_INSECURE_HTTP = False
    with pytest.raises(checking.SourceRefused):
        check_url_allowed("http://10.0.0.5/vendor/api/v1/index")
    settings.UPDATES_ALLOW_INSECURE_HTTP = True
    check_url_allowed("http://10.0.0.5/vendor/api/v1/index")
    check_url_allowed("http://[::1]:8000/vendor/api/v1/index")


def test_a_wrong_api_key_is_refused_with_the_vendors_reason(vendor, settings) -> None:
    settings.UPDATES_VENDOR_API_KEY = "wrong"
    vendor.publish([make_manifest("1.1.0")])
    assert_refused(
        checking.run_check(), "401", "Unknown API key", "UPDATES_VENDOR_API_KEY"
    )


def test_nothing_pinned_means_nothing_is_trusted(vendor, settings) -> None:
    settings.UPDATES_VENDOR_KEY_FINGERPRINTS = []
    vendor.publish([make_manifest("1.1.0")])
    assert_refused(checking.run_check(), "no vendor key is pinned")


def test_keys_can_come_from_a_file_instead_of_the_source(
    vendor, settings, tmp_path
) -> None:
    key_file = tmp_path / "vendor.asc"
    key_file.write_text(vendor.public_key())
    settings.UPDATES_VENDOR_PUBLIC_KEY_FILE = str(key_file)
    vendor.publish([make_manifest("1.1.0")])
    assert checking.run_check().outcome == OK
    assert "keys" not in [p for p, _ in vendor.requests]


# ---------------------------------------------------------------------------
# Offline
# ---------------------------------------------------------------------------


@pytest.fixture
def silent_port():  # type: ignore[no-untyped-def]
    """A socket that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


def test_no_answer_within_the_budget_means_offline_and_known_releases_are_kept(
    vendor, settings, silent_port
) -> None:
    vendor.publish([make_manifest("1.1.0")])
    assert checking.run_check().outcome == OK
    good_at = AgentState.load().last_good_check_at

    settings.UPDATES_SOURCE_TIMEOUT_SECONDS = 0.5
    settings.UPDATES_VENDOR_URL = f"http://127.0.0.1:{silent_port}"
    started = time.monotonic()
    check = checking.run_check()

    assert time.monotonic() - started < 3
    assert check.outcome == OFFLINE
    assert "did not answer within 0.5 s" in check.reason
    state = AgentState.load()
    assert state.offline
    assert state.offline_since is not None
    assert "did not answer" in state.offline_reason
    assert state.last_good_check_at == good_at
    assert AvailableRelease.objects.filter(version="1.1.0").exists()

    settings.UPDATES_VENDOR_URL = vendor.url
    assert checking.run_check().outcome == OK
    assert not AgentState.load().offline


def test_a_refused_connection_means_offline(vendor, settings) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    settings.UPDATES_VENDOR_URL = f"http://127.0.0.1:{port}"
    check = checking.run_check()
    assert check.outcome == OFFLINE
    assert "could not be reached" in check.reason


def test_unknown_sources_are_skipped_and_the_next_one_is_used(vendor, settings) -> None:
    settings.UPDATES_SOURCES = ["mirror", "vendor", "offline"]
    vendor.publish([make_manifest("1.1.0")])
    check = checking.run_check()
    assert check.outcome == OK
    assert check.source == "vendor"


def test_no_usable_source_is_an_error_that_says_what_to_set(settings) -> None:
    settings.UPDATES_SOURCES = ["mirror"]
    check = checking.run_check()
    assert check.outcome == UpdateCheck.Outcome.ERROR
    assert "UPDATES_SOURCES" in check.reason


# ---------------------------------------------------------------------------
# Choosing: SemVer precedence, channel, min_version
# ---------------------------------------------------------------------------


def test_semver_precedence_follows_the_specification_examples() -> None:
    spec_order = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "2.0.0",
        "2.1.0",
        "2.1.1",
    ]
    shuffled = list(reversed(spec_order))
    shuffled[2], shuffled[7] = shuffled[7], shuffled[2]
    assert checking.sort_versions(shuffled) == spec_order


def index_of(*entries: tuple[str, str, str | None]) -> m.ReleaseIndex:
    return make_index(
        [make_manifest(v, channel=c, min_version=mv) for v, c, mv in entries]
    )


def test_the_newest_release_wins_by_precedence_not_by_text() -> None:
    index = index_of(("1.9.0", "stable", None), ("1.10.0", "stable", None))
    assert checking.choose_release(index, "1.0.0", "stable").entry.version == "1.10.0"


def test_a_stable_installation_ignores_beta_releases() -> None:
    index = index_of(("1.1.0", "stable", None), ("1.2.0-beta.1", "beta", None))
    assert checking.choose_release(index, "1.0.0", "stable").entry.version == "1.1.0"
    assert (
        checking.choose_release(index, "1.0.0", "beta").entry.version == "1.2.0-beta.1"
    )


def test_a_release_above_min_version_is_offered_through_its_stepping_stone() -> None:
    index = index_of(("1.5.0", "stable", None), ("2.0.0", "stable", "1.5.0"))
    choice = checking.choose_release(index, "1.0.0", "stable")
    assert choice.entry.version == "1.5.0"
    assert "2.0.0 needs at least 1.5.0" in choice.note
    assert checking.choose_release(index, "1.5.0", "stable").entry.version == "2.0.0"


def test_an_unreachable_release_says_a_stepping_stone_is_missing() -> None:
    index = index_of(("2.0.0", "stable", "1.5.0"))
    choice = checking.choose_release(index, "1.0.0", "stable")
    assert choice.entry is None
    assert "stepping-stone" in choice.note


def test_the_stepping_stone_is_what_the_check_stores(vendor) -> None:
    vendor.publish(
        [make_manifest("1.5.0"), make_manifest("2.0.0", min_version="1.5.0")]
    )
    check = checking.run_check()
    assert check.found_version == "1.5.0"
    assert list(AvailableRelease.objects.values_list("version", flat=True)) == ["1.5.0"]


def test_never_a_lower_version_than_installed(vendor, settings) -> None:
    AgentState.objects.update_or_create(pk=1, defaults={"installed_version": "2.0.0"})
    vendor.publish([make_manifest("1.9.9")])
    check = checking.run_check()
    assert check.found_version == ""


def test_a_rolled_back_release_stays_marked_after_the_next_check(vendor) -> None:
    vendor.publish([make_manifest("1.1.0")])
    checking.run_check()
    AvailableRelease.objects.update(rolled_back=True)
    check = checking.run_check()
    assert check.found_version == "1.1.0"
    assert AvailableRelease.objects.get().rolled_back
    # Still offered, but only as a retry, and the check says so.
    assert "rolled back here" in check.reason
    assert "Retry it anyway" in check.reason
    offered = releases.latest_release()
    assert offered is not None and offered.rolled_back


def test_a_newer_release_is_offered_before_one_rolled_back(vendor) -> None:
    vendor.publish([make_manifest("1.1.0")])
    checking.run_check()
    AvailableRelease.objects.update(rolled_back=True)
    vendor.publish([make_manifest("1.1.0"), make_manifest("1.2.0")])
    checking.run_check()
    assert releases.latest_release().version == "1.2.0"


def test_a_failed_email_is_retried_at_the_next_check(vendor, settings) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = (
        "127.0.0.1",
        port,
        2,
    )
    vendor.publish([make_manifest("1.1.0")])
    assert checking.run_check().outcome == OK
    assert AvailableRelease.objects.get().notified_at is None

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    checking.run_check()
    assert AvailableRelease.objects.get().notified_at is not None
    assert len(mail.outbox) == 1


def test_an_expired_manifest_is_refused(vendor) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    stale = make_manifest(
        "1.1.0", released_at=now - timedelta(days=40), expires=now - timedelta(days=1)
    )
    vendor.publish([stale])
    assert_refused(checking.run_check(), "manifest of 1.1.0 expired")


def test_an_unexpected_failure_is_recorded_not_raised(vendor, settings) -> None:
    settings.UPDATES_GNUPG_HOME = "/proc/no-such-dir/gnupg"  # gpg cannot start here
    vendor.publish([make_manifest("1.1.0")])
    check = checking.run_check()
    assert check.outcome == UpdateCheck.Outcome.ERROR
    assert "nothing was stored" in check.reason
    assert not AvailableRelease.objects.exists()


def test_a_stored_release_is_verified_again_before_use(vendor) -> None:
    vendor.publish([make_manifest("1.1.0")])
    checking.run_check()
    release = AvailableRelease.objects.get()
    assert trust.verify_release(release).version == "1.1.0"

    release.manifest_text = release.manifest_text.replace("Faster", "Sneaky")
    with pytest.raises(trust.CheckRefused, match="does not verify"):
        trust.verify_release(release)


# ---------------------------------------------------------------------------
# Withdrawn releases: a fresh index that no longer lists a release
# ---------------------------------------------------------------------------


def test_a_release_the_vendor_withdraws_is_no_longer_offered(vendor) -> None:
    vendor.publish([make_manifest("1.1.0")], sequence=1)
    assert checking.run_check().found_version == "1.1.0"
    assert releases.latest_release().version == "1.1.0"

    vendor.publish([make_manifest("1.0.0")], sequence=2)  # 1.1.0 left out
    check = checking.run_check()

    assert check.outcome == OK, check.reason
    release = AvailableRelease.objects.get(version="1.1.0")  # kept for history
    assert release.withdrawn_at is not None
    assert releases.latest_release() is None


def test_a_scheduled_run_of_a_withdrawn_release_is_cancelled_and_audited(
    vendor,
) -> None:
    from django_celery_beat.models import PeriodicTask

    from clms_updates.actions import Actor
    from clms_updates.models import AuditEntry
    from updates import actions
    from updates.models import UpdateRun

    vendor.publish([make_manifest("1.1.0")], sequence=1)
    checking.run_check()
    run = actions.schedule_update(
        "1.1.0",
        actor=Actor.system(),
        at=datetime.now(UTC) + timedelta(days=1),
        force=True,
    )
    assert PeriodicTask.objects.filter(name=f"updates: run {run.pk}").exists()

    vendor.publish([], sequence=2)
    # The check's action cancels what the vendor withdrew.
    actions.check_for_updates(actor=Actor.system())

    run.refresh_from_db()
    assert run.state == UpdateRun.State.CANCELLED
    assert run.error_code == "withdrawn"
    assert "withdrawn by the vendor" in run.error_message
    assert not PeriodicTask.objects.filter(name=f"updates: run {run.pk}").exists()
    entry = AuditEntry.objects.get(action="updates.cancel", target=f"run {run.pk}")
    assert "withdrawn by the vendor" in entry.detail["reason"]


def test_a_withdrawn_release_listed_again_is_offered_again(vendor) -> None:
    v110, v120 = make_manifest("1.1.0"), make_manifest("1.2.0")
    vendor.publish([v110, v120], sequence=1)
    checking.run_check()  # stores 1.2.0
    vendor.publish([v110], sequence=2)
    checking.run_check()  # stores 1.1.0, withdraws 1.2.0
    assert AvailableRelease.objects.get(version="1.2.0").withdrawn_at is not None
    assert releases.latest_release().version == "1.1.0"

    # Listed again, unchanged, while the check chooses 1.3.0: 1.2.0 is
    # reinstated from its stored, verified manifest.
    vendor.publish([v110, v120, make_manifest("1.3.0")], sequence=3)
    checking.run_check()
    assert AvailableRelease.objects.get(version="1.2.0").withdrawn_at is None
    assert releases.latest_release().version == "1.3.0"


def test_a_withdrawn_version_rebuilt_differently_stays_withdrawn_until_verified(
    vendor,
) -> None:
    vendor.publish([make_manifest("1.2.0")], sequence=1)
    checking.run_check()
    vendor.publish([], sequence=2)
    checking.run_check()
    rebuilt = make_manifest("1.2.0", changelog="## 1.2.0\n- rebuilt")
    vendor.publish([rebuilt, make_manifest("1.3.0")], sequence=3)
    checking.run_check()  # chooses 1.3.0; 1.2.0's stored manifest no longer matches
    assert AvailableRelease.objects.get(version="1.2.0").withdrawn_at is not None


def test_a_refused_or_replayed_index_withdraws_nothing(vendor) -> None:
    vendor.publish([make_manifest("1.1.0")], sequence=5)
    checking.run_check()

    vendor.publish([], sequence=6)
    text, signature = vendor.index
    vendor.index = (text.replace('"sequence":6', '"sequence":9'), signature)
    assert checking.run_check().outcome == REFUSED
    vendor.publish([], sequence=4)
    assert checking.run_check().outcome == REFUSED

    assert AvailableRelease.objects.get().withdrawn_at is None
    assert releases.latest_release().version == "1.1.0"


def test_an_offline_bundle_release_is_not_withdrawn_by_the_online_index(
    vendor,
) -> None:
    from updates.tests.factories import make_release

    make_release("1.2.0", source="offline")
    vendor.publish([make_manifest("1.1.0")], sequence=2)
    assert checking.run_check().outcome == OK
    assert AvailableRelease.objects.get(version="1.2.0").withdrawn_at is None
    assert releases.latest_release().version == "1.2.0"


# ---------------------------------------------------------------------------
# 429: the vendor asks the agent to slow down
# ---------------------------------------------------------------------------


def _too_many_requests(retry_after: str):  # type: ignore[no-untyped-def]
    def answer(handler: BaseHTTPRequestHandler) -> None:
        body = b'{"detail": "Request was throttled."}'
        handler.send_response(429)
        handler.send_header("Retry-After", retry_after)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


def test_a_429_is_recorded_as_rate_limited_not_offline(vendor) -> None:
    vendor.publish([make_manifest("1.1.0")])
    vendor.overrides["index"] = _too_many_requests("120")

    check = checking.run_check()

    assert check.outcome == UpdateCheck.Outcome.ERROR
    assert "asked us to slow down" in check.reason
    assert "next try after 120 s" in check.reason
    state = AgentState.load()
    assert not state.offline
    assert state.offline_reason == ""
    assert "vendor" in state.slow_down_until


def test_periodic_checks_wait_for_retry_after_and_then_ask_again(vendor) -> None:
    vendor.publish([make_manifest("1.1.0")])
    vendor.overrides["index"] = _too_many_requests("120")
    checking.run_check(trigger=UpdateCheck.Trigger.PERIODIC)
    asked = len(vendor.requests)
    del vendor.overrides["index"]

    skipped = checking.run_check(trigger=UpdateCheck.Trigger.PERIODIC)
    assert len(vendor.requests) == asked  # the vendor was not asked
    assert skipped.outcome == UpdateCheck.Outcome.ERROR
    assert "skipped" in skipped.reason and "slow down" in skipped.reason
    assert not AgentState.load().offline

    later = datetime.now(UTC) + timedelta(seconds=121)
    check = checking.run_check(trigger=UpdateCheck.Trigger.PERIODIC, now=later)
    assert check.outcome == OK, check.reason
    assert check.found_version == "1.1.0"
    assert AgentState.load().slow_down_until == {}


def test_check_now_still_asks_a_source_that_asked_to_slow_down(vendor) -> None:
    vendor.publish([make_manifest("1.1.0")])
    vendor.overrides["index"] = _too_many_requests("600")
    checking.run_check(trigger=UpdateCheck.Trigger.PERIODIC)
    del vendor.overrides["index"]
    assert checking.run_check(trigger=UpdateCheck.Trigger.MANUAL).outcome == OK


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    from updates.sources.vendor import DEFAULT_RETRY_AFTER_SECONDS, retry_after_seconds

    now = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
    assert retry_after_seconds("30", now=now) == 30
    assert retry_after_seconds("Fri, 27 Nov 2026 04:05:00 GMT", now=now) == 300
    assert retry_after_seconds("soon", now=now) == DEFAULT_RETRY_AFTER_SECONDS
    assert retry_after_seconds(None, now=now) == DEFAULT_RETRY_AFTER_SECONDS


def test_a_signed_index_with_a_sequence_past_64_bits_is_refused_not_a_crash(
    vendor,
) -> None:
    good = vendor.publish([make_manifest("1.1.0")], sequence=5)
    text = good.to_bytes().decode().replace('"sequence":5', f'"sequence":{2**64}')
    vendor.index = (text, vendor.sign(text.encode()))

    check = checking.run_check()

    assert check.outcome == UpdateCheck.Outcome.REFUSED
    assert "sequence" in check.reason
    assert AgentState.load().highest_sequence == 0
