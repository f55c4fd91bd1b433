"""Fixtures of the vendor server tests: a real signing key, a pushed image."""

from __future__ import annotations

from pathlib import Path

import pytest

from vendor_server import fastpath, indexing, schools
from vendor_server.tests.factories import push_image


@pytest.fixture(autouse=True)
def _fresh_process_caches():  # type: ignore[no-untyped-def]
    """Each test starts without this process's copies of keys and sequences."""
    indexing.forget_local_caches()
    schools._local_keys.clear()
    fastpath.reset_local()
    yield
    indexing.forget_local_caches()
    schools._local_keys.clear()


@pytest.fixture
def vendor_key(signing_key, settings, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    """The vendor server signs with a real throwaway key; bundles go to tmp."""
    home, fingerprint = signing_key
    settings.VENDOR_GNUPG_HOME = home
    settings.VENDOR_SIGNING_KEY = fingerprint
    settings.VENDOR_BUNDLE_DIR = tmp_path / "bundles"
    indexing.forget_local_caches()
    yield fingerprint
    indexing.forget_local_caches()


@pytest.fixture
def image(registry_address: str) -> str:
    """A real image in the plain-HTTP test registry, by digest."""
    return push_image(registry_address)


@pytest.fixture
def offline(settings, vendor_key):  # type: ignore[no-untyped-def]
    """Registry lookups off: for tests about something else than the registry."""
    settings.VENDOR_REGISTRY_CHECK = False
    return vendor_key


FAKE_IMAGE = "registry.invalid/clms/web@sha256:" + "a" * 64
