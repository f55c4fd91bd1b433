"""Fixtures for the cross-app suites under ``tests/`` (the demo CLMS stack)."""

from tests.demo_stack.fixtures import *  # noqa: F403
