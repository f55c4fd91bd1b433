"""Before a compose release is signed: can Docker Compose itself read its project?

The project is written to a scratch folder with a placeholder value for every
setting it declares, and ``docker compose config -q`` reads it. Where no
compose CLI is installed on the vendor server the check is skipped (logged);
the release's structure was checked already, and every school's agent reads
the project with compose again before it runs anything.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import yaml

from clms_updates import composecli
from clms_updates.manifest import ReleaseManifest

logger = logging.getLogger(__name__)


def _placeholder(name: str, project: dict[str, Any]) -> str:
    """A stand-in value of the right kind: a folder where a mount source uses it."""
    for service in (project.get("services") or {}).values():
        for volume in (service or {}).get("volumes") or []:
            if f"${{{name}" in str(volume) or f"${name}" in str(volume):
                return f"/srv/clms-check/{name.lower()}"
    return "placeholder"


def problems(manifest: ReleaseManifest) -> list[str]:
    """Why compose cannot read the release's project (empty: it can)."""
    if manifest.compose is None:
        return []
    try:
        composecli.find_cli()
    except composecli.ComposeUnavailable as e:
        logger.warning(
            "Compose release %s not checked with compose: %s", manifest.version, e
        )
        return []
    with tempfile.TemporaryDirectory(prefix="clms-compose-check-") as tmp:
        folder = Path(tmp)
        (folder / "compose.yaml").write_text(yaml.safe_dump(manifest.compose))
        (folder / ".env").write_text(
            "".join(
                f"{s.name}={s.default or _placeholder(s.name, manifest.compose)}\n"
                for s in manifest.settings
            )
        )
        try:
            composecli.run(
                [
                    "--project-name",
                    "clms-check",
                    "--project-directory",
                    str(folder),
                    "-f",
                    str(folder / "compose.yaml"),
                    "--env-file",
                    str(folder / ".env"),
                    "config",
                    "-q",
                ],
                timeout=60,
                what="docker compose config",
            )
        except composecli.ComposeFailed as e:
            return [f"Docker Compose cannot read the release's project: {e}"]
    return []
