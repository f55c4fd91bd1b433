"""Logs say what they are about: JSON with LOG_FORMAT=json, the run's context in both."""

from __future__ import annotations

import copy
import json
import logging
import logging.config
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.utils import timezone

from clms_updates import logcontext
from updates.models import UpdateRun
from updates.pipeline import runner
from updates.tests.factories import make_run


@pytest.fixture
def logs_as(capsys) -> Iterator:  # type: ignore[type-arg]
    """Configure LOGGING with the given format, to stdout; give back the lines."""

    def configure(fmt: str):  # type: ignore[no-untyped-def]
        config = copy.deepcopy(settings.LOGGING)
        config["handlers"]["console"]["formatter"] = fmt
        config["handlers"]["console"]["stream"] = "ext://sys.stdout"
        logging.config.dictConfig(config)

        def lines() -> list[str]:
            return [line for line in capsys.readouterr().out.splitlines() if line]

        return lines

    yield configure
    logging.config.dictConfig(settings.LOGGING)


def test_a_json_line_carries_the_bound_run_release_and_step(logs_as) -> None:
    lines = logs_as("json")
    log = logging.getLogger("updates.pipeline.runner")
    with logcontext.bind(run_id=12, release="1.4.0"):
        logcontext.set_field("step", "migrate")
        log.warning("Migration took %s s", 3)
    log.warning("outside any run")
    inside, outside = (json.loads(line) for line in lines()[-2:])
    assert inside["message"] == "Migration took 3 s"
    assert (inside["run_id"], inside["release"], inside["step"]) == (
        12,
        "1.4.0",
        "migrate",
    )
    assert inside["level"] == "WARNING" and "time" in inside
    assert outside["run_id"] is None


def test_the_plain_format_names_the_context_too(logs_as) -> None:
    lines = logs_as("plain")
    with logcontext.bind(school=7):
        logging.getLogger("vendor_server").warning("report refused")
    assert "[school=7]: report refused" in lines()[-1]


def test_an_unknown_context_field_is_refused() -> None:
    with (
        pytest.raises(ValueError, match="not a log context field"),
        logcontext.bind(password="x"),
    ):
        pass


@pytest.mark.django_db
def test_what_the_pipeline_logs_carries_its_run(logs_as, settings) -> None:
    """A run the worker drives: its lines name the run and release (this one
    stops before its first step: nothing is pinned to verify it)."""
    settings.DOCKER_HOST = "unix:///nonexistent/docker.sock"
    lines = logs_as("json")
    run = make_run(scheduled_for=timezone.now())
    claimed = UpdateRun.claim(run.pk)
    assert claimed is not None
    runner.drive(claimed)
    records = [json.loads(line) for line in lines() if line.startswith("{")]
    about_run = [r for r in records if r.get("run_id") == run.pk]
    assert about_run, records
    assert all(r["release"] == run.to_version for r in about_run)
