"""Static files are served by the app itself, so `make run` and the image need no web server."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_the_stylesheet_is_served(client) -> None:
    response = client.get("/static/css/app.css")
    assert response.status_code == 200
    body = (
        b"".join(response.streaming_content) if response.streaming else response.content
    )
    assert b".topbar" in body


def test_a_missing_static_file_is_a_404(client) -> None:
    assert client.get("/static/css/nope.css").status_code == 404


def test_every_page_has_an_icon(client) -> None:
    login = client.get("/accounts/login/").content.decode()
    assert 'rel="icon"' in login
    icon = client.get("/favicon.ico", follow=True)
    assert icon.status_code == 200
    assert b"<svg" in b"".join(icon.streaming_content)
