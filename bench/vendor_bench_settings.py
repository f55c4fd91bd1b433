"""Settings for the vendor benchmarks: the project's, plus a bare comparison view."""

from clms_updates.settings import *  # noqa: F403

ROOT_URLCONF = "vendor_bench_urls"
LOGGING = {"version": 1, "disable_existing_loggers": True}
