"""/healthz reports each component up or down with a reason."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_it_reports_every_component(client, settings) -> None:
    settings.HEALTHZ_REQUIRED = ["database"]
    settings.HEALTHZ_TIMEOUT = 1
    response = client.get("/healthz")
    body = response.json()
    assert set(body["components"]) == {
        "database",
        "redis",
        "celery",
        "docker",
        "compose",
    }
    assert body["components"]["database"]["up"] is True
    assert body["components"]["database"]["required"] is True
    assert response.status_code == 200


def test_a_required_component_down_gives_503_with_the_reason(client, settings) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.DOCKER_HOST = "unix:///nonexistent/docker.sock"
    settings.HEALTHZ_REQUIRED = ["database", "redis"]
    settings.HEALTHZ_TIMEOUT = 1
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["components"]["redis"]["up"] is False
    assert "cannot reach Redis at REDIS_URL" in body["components"]["redis"]["detail"]
    docker = body["components"]["docker"]
    assert docker["up"] is False
    assert "DOCKER_HOST=unix:///nonexistent/docker.sock" in docker["detail"]
    assert docker["required"] is False


def test_a_down_component_that_is_not_required_keeps_200(client, settings) -> None:
    settings.DOCKER_HOST = "unix:///nonexistent/docker.sock"
    settings.HEALTHZ_REQUIRED = ["database"]
    settings.HEALTHZ_TIMEOUT = 1
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["components"]["docker"]["up"] is False


@pytest.mark.services
def test_redis_and_docker_up_when_running(
    client, settings, redis_url, docker_host
) -> None:
    settings.REDIS_URL = redis_url
    settings.DOCKER_HOST = docker_host
    settings.HEALTHZ_REQUIRED = ["database", "redis", "docker"]
    response = client.get("/healthz")
    body = response.json()
    assert body["components"]["redis"]["up"] is True, body
    assert body["components"]["docker"]["up"] is True, body
    assert body["components"]["docker"]["detail"].startswith("Docker engine ")
    assert response.status_code == 200


@pytest.mark.services
def test_celery_is_down_without_workers_and_up_with_one(
    client, settings, celery_worker_process
) -> None:
    settings.HEALTHZ_REQUIRED = ["database", "redis", "celery"]
    process, name, _ = celery_worker_process
    body = client.get("/healthz").json()
    assert body["components"]["celery"]["up"] is True
    assert name in body["components"]["celery"]["detail"]

    process.terminate()
    process.wait(timeout=30)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert (
        "no Celery worker answered" in response.json()["components"]["celery"]["detail"]
    )


def test_the_compose_cli_the_agent_uses_is_shown_and_its_absence_explained(
    client, settings
) -> None:
    from clms_updates import composecli

    settings.HEALTHZ_REQUIRED = ["database", "compose"]
    composecli.forget_cli()
    compose = client.get("/healthz").json()["components"]["compose"]
    assert compose["up"] is True, compose
    assert "compose" in compose["detail"] and compose["detail"][-1].isdigit()

    settings.CLMS_COMPOSE_COMMAND = "/nonexistent/docker-compose"
    composecli.forget_cli()
    try:
        response = client.get("/healthz")
    finally:
        composecli.forget_cli()
    assert response.status_code == 503
    detail = response.json()["components"]["compose"]["detail"]
    assert "No Docker Compose was found" in detail
    assert "CLMS_COMPOSE_COMMAND" in detail
