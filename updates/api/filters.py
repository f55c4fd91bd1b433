"""Filters of the run history."""

from __future__ import annotations

import django_filters

from updates.models import UpdateRun


class RunFilter(django_filters.FilterSet):
    """Filter runs by state, target version, kind and the date (UTC) they were created."""

    status = django_filters.ChoiceFilter(
        field_name="state", choices=UpdateRun.State.choices
    )
    version = django_filters.CharFilter(field_name="to_version")
    kind = django_filters.ChoiceFilter(choices=UpdateRun.Kind.choices)
    date_from = django_filters.DateFilter(
        field_name="created_at",
        lookup_expr="date__gte",
        label="Created on or after (YYYY-MM-DD, UTC)",
    )
    date_to = django_filters.DateFilter(
        field_name="created_at",
        lookup_expr="date__lte",
        label="Created on or before (YYYY-MM-DD, UTC)",
    )

    class Meta:
        model = UpdateRun
        fields = ["status", "version", "kind", "date_from", "date_to"]
