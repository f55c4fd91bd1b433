"""Schemathesis over the whole OpenAPI schema (both roles): never a server error.

Every operation of ``/api/schema/`` is called with inputs generated from its
schema (and broken variants of them) through the real Django stack, as a
school admin with a token (the agent's routes) and as a school with its key
(the vendor's). Each answer must not be a 5xx, and must be one of the status
codes the schema documents for it.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error, status_code_conformance

from vendor_server.tests.factories import make_school

pytestmark = [pytest.mark.django_db, pytest.mark.services]

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture
def _keep_the_test_transaction():  # type: ignore[no-untyped-def]
    """As Django's test client does: requests must not close the test's connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def credentials(_keep_the_test_transaction, school_admin, settings, signing_key):  # type: ignore[no-untyped-def]
    settings.VENDOR_GNUPG_HOME, settings.VENDOR_SIGNING_KEY = signing_key
    settings.VENDOR_REGISTRY_CHECK = False
    token = Token.objects.create(user=school_admin)
    _, key = make_school()
    return {"agent": f"Token {token.key}", "vendor": f"Bearer {key}"}


@schema.parametrize()
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_route_answers_a_server_error(case, credentials) -> None:  # type: ignore[no-untyped-def]
    role = (
        "vendor"
        if case.path.startswith("/vendor/api/v1/") and "staff" not in case.path
        else "agent"
    )
    response = case.call_and_validate(
        headers={"Authorization": credentials[role]},
        checks=[not_a_server_error, status_code_conformance],
    )  # raises on a 5xx or an undocumented status
    assert response.status_code < 500, (case.method, case.path)
