"""Acceptance: each broken 1.1.0 is detected, rolled back on its own, every row
kept, and the vendor told ``rolled_back``."""

from __future__ import annotations

import psycopg
import pytest

from clms_updates.actions import Actor
from devtools.demo_stack import health, releases
from tests.e2e_support import School, school_fixture  # noqa: F401  (fixture)
from updates import actions, checking, tasks
from updates.models import AgentState, UpdateCheck, UpdateRun
from updates.pipeline import maintenance
from vendor_server.models import UpdateReport

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.services,
    pytest.mark.docker,
    pytest.mark.e2e,
]


def every_row(database_url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every column of every row of every table, in a stable order."""
    with psycopg.connect(database_url) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "ORDER BY tablename"
            ).fetchall()
        ]
        return {
            table: connection.execute(
                f'SELECT * FROM "{table}" ORDER BY 1'  # noqa: S608
            ).fetchall()
            for table in tables
        }


def original_rows(database_url: str, before: dict) -> dict:  # type: ignore[type-arg]
    """The rows of the tables that existed before, in the columns they had."""
    with psycopg.connect(database_url) as connection:
        result = {}
        for table, rows in before.items():
            width = len(rows[0]) if rows else 0
            columns = connection.execute(
                "SELECT column_name FROM information_schema.columns WHERE "
                "table_name = %s ORDER BY ordinal_position",
                (table,),
            ).fetchall()[: width or None]
            names = ", ".join(f'"{c[0]}"' for c in columns)
            result[table] = connection.execute(
                f'SELECT {names} FROM "{table}" ORDER BY 1'  # noqa: S608
            ).fetchall()
        return result


@pytest.mark.parametrize(
    ("tag", "error_code", "backward_compatible"),
    [
        ("1.1.0-unhealthy", "health_check_failed", False),
        ("1.1.0-badmigration", "migration_failed", False),
        ("1.1.0-crash", "container_crashed", False),
        ("1.1.0-unhealthy", "health_check_failed", True),
    ],
    ids=[
        "health-never-passes",
        "migration-fails",
        "container-exits",
        "backward-compatible-migration-kept",
    ],
)
def test_a_broken_release_is_rolled_back_with_every_row_intact(
    school: School, tag: str, error_code: str, backward_compatible: bool
) -> None:
    """The data comes back whenever the migration ran, unless it is declared compatible."""
    before = every_row(school.database_url)
    if backward_compatible:
        school.publish(
            "1.1.0",
            tag,
            compose=releases.compose_file(school.images[tag], backward_compatible=True),
        )
    else:
        school.publish("1.1.0", tag)
    check = checking.run_check(trigger=UpdateCheck.Trigger.MANUAL)
    assert check.found_version == "1.1.0", check.reason
    school.start_worker()
    run = actions.update_now("1.1.0", actor=Actor.command(), background=False)
    tasks.execute_run.delay(run.pk)

    run = school.wait_until_over(run.pk)

    assert run.state == UpdateRun.State.ROLLED_BACK, run.log + school.logs()
    assert run.error_code == error_code
    steps = [s["name"] for s in run.steps]
    database_restored = not backward_compatible
    assert ("rollback_database" in steps) is database_restored
    status, body = health(school.stack.health_url)
    assert (status, body["version"]) == (200, "1.0.0")
    assert AgentState.load().installed_version == "1.0.0"
    if database_restored:
        assert every_row(school.database_url) == before
    else:
        # The additive migration stays (1.0.0 runs on it); every row is intact.
        schema = "clms_schema_migrations"
        library = {k: v for k, v in before.items() if k != schema}
        assert original_rows(school.database_url, library) == library
        after = every_row(school.database_url)[schema]
        assert after[: len(before[schema])] == before[schema]
        assert [row[0] for row in after[len(before[schema]) :]] == [
            "0002_book_isbn",
            "0003_loan_lookup",
            "0004_loan_due_date",
        ]
    assert maintenance.current() is None
    report = UpdateReport.objects.get(run_id=run.pk)
    assert (report.outcome, report.error_code) == ("rolled_back", error_code)
    assert report.to_version == "1.1.0"
