"""The school agent's Prometheus metrics, read from the rows at scrape time.

Served by ``GET /metrics`` (``clms_updates.metrics``). Names start with
``clms_``; times are Unix seconds, durations seconds.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from updates import releases
from updates.enforcement.state import enforcement_state
from updates.models import AgentState, UpdateCheck, UpdateRun

# The runs whose step timings make the duration histograms.
RECENT_RUNS = 200
STEP_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class SchoolCollector:
    """Installed version, what is offered, deadlines, checks, runs, offline state."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        state = AgentState.load()
        installed = GaugeMetricFamily(
            "clms_installed_info", "The CLMS version installed.", labels=["version"]
        )
        installed.add_metric([state.installed_version], 1)
        yield installed
        agent = GaugeMetricFamily(
            "clms_agent_info",
            "The version of CLMS Updates running.",
            labels=["version"],
        )
        agent.add_metric([settings.AGENT_VERSION], 1)
        yield agent

        offered = releases.latest_release()
        available = GaugeMetricFamily(
            "clms_update_available",
            "1 while a verified release above the installed one is offered.",
            labels=["version", "critical", "rolled_back"],
        )
        if offered is not None:
            available.add_metric(
                [
                    offered.version,
                    str(offered.critical).lower(),
                    str(offered.rolled_back).lower(),
                ],
                1,
            )
        yield available

        enforcement = enforcement_state(now)
        yield _gauge(
            "clms_blocked",
            "1 while CLMS is blocked by a missed critical deadline.",
            int(enforcement.blocked),
        )
        if enforcement.seconds_left is not None:
            yield _gauge(
                "clms_critical_deadline_seconds",
                "Seconds to the pending critical release's deadline (negative once "
                "passed).",
                enforcement.seconds_left,
            )
        yield _gauge(
            "clms_offline", "1 while no update source answers.", int(state.offline)
        )
        if state.last_good_check_at is not None:
            yield _gauge(
                "clms_last_successful_check_timestamp_seconds",
                "When a source last answered a check.",
                state.last_good_check_at.timestamp(),
            )
        checks = CounterMetricFamily(
            "clms_update_checks", "Checks by outcome.", labels=["outcome"]
        )
        for outcome, n in UpdateCheck.objects.values_list("outcome").annotate(
            n=Count("id")
        ):
            checks.add_metric([outcome], n)
        yield checks
        yield from self._runs()

    def _runs(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "clms_update_runs",
            "Finished runs by kind and outcome.",
            labels=["kind", "outcome"],
        )
        for kind, state, n in (
            UpdateRun.objects.filter(state__in=UpdateRun.TERMINAL_STATES)
            .values_list("kind", "state")
            .annotate(n=Count("id"))
        ):
            runs.add_metric([kind, state], n)
        yield runs
        active = UpdateRun.active()
        yield _gauge(
            "clms_update_run_active",
            "1 while a run is scheduled, running or rolling back.",
            int(active is not None and active.state != UpdateRun.State.SCHEDULED),
        )
        durations: dict[str, list[float]] = {}
        for steps in UpdateRun.objects.filter(
            state__in=UpdateRun.TERMINAL_STATES
        ).values_list("steps", flat=True)[:RECENT_RUNS]:
            for record in steps or []:
                seconds = record.get("seconds") if isinstance(record, dict) else None
                if isinstance(seconds, int | float) and record.get("name"):
                    durations.setdefault(str(record["name"]), []).append(float(seconds))
        histogram = HistogramMetricFamily(
            "clms_update_step_duration_seconds",
            f"How long each pipeline step took, over the last {RECENT_RUNS} runs.",
            labels=["step"],
        )
        for step, values in sorted(durations.items()):
            buckets = [
                (str(bound), sum(1 for v in values if v <= bound))
                for bound in STEP_BUCKETS
            ]
            buckets.append(("+Inf", len(values)))
            histogram.add_metric([step], buckets, sum(values))
        yield histogram
