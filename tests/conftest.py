"""Fixtures for the cross-app suites under ``tests/`` (the demo CLMS stack)."""

from tests.demo_fixtures import *  # noqa: F403
