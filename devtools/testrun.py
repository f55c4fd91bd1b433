"""``make test``: the whole suite, in two processes that start their own services.

The agent's self-update tests (``tests/test_e2e_selfupdate.py``) install the
agent in containers and mostly wait for them; they and the browser tests that
need no demo stack run beside the rest of the suite in a second pytest process with its own PostgreSQL, Redis, Docker
engine and registry (``devtools.services``), so the suite takes about as
long as its longer half. The second half's output is printed after the
first's, and the run fails if either half fails. With arguments (a subset,
or options), one process runs exactly what they say.

    python -m devtools.testrun            # the whole suite
    python -m devtools.testrun -k backup  # one process, as given
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BESIDE = [
    "tests/test_e2e_selfupdate.py",
    "tests/test_browser_phone.py",
    "tests/test_browser_updates.py",
]


def _pytest() -> list[str]:
    """pytest under freshly started services of its own."""
    python = sys.executable
    return [python, "-m", "devtools.services", "test", "--", python, "-m", "pytest"]


def main(argv: list[str]) -> int:
    command = _pytest()
    if argv:
        return subprocess.call(command + argv)
    artifacts = Path(os.environ.get("CLMS_ARTIFACTS_DIR", "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    log = artifacts / "beside-tests.log"
    with log.open("w") as out:
        beside = subprocess.Popen(
            command + BESIDE, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            first = subprocess.call(command + [f"--ignore={path}" for path in BESIDE])
            second = beside.wait()
        except KeyboardInterrupt:
            beside.terminate()
            beside.wait()
            raise
    print(f"\n---- {' '.join(BESIDE)} (run beside the rest; log: {log}) ----")
    print(log.read_text(errors="replace"))
    if first or second:
        print(
            f"make test failed: the suite exited {first}, the self-update tests "
            f"{second}."
        )
    return first or second


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
