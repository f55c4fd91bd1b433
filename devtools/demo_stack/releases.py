"""Compose files of the demo's compose releases, as a vendor would write them.

``compose_file(image_ref)`` is the project of a release running ``image_ref``:
the app and its worker, and with ``search=True`` the search service a later
release adds, with its own volume and the secret key it needs from the school
(``SEARCH_API_KEY``, so the update waits for the admin to give it). The
``x-clms-*`` parts declare the settings, the migration and the health check.
"""

from __future__ import annotations

from typing import Any

import yaml

HEALTH = {
    "path": "/health",
    "expected_status": 200,
    "body_field": "status",
    "body_value": "ok",
    "successes": 3,
    "interval_ms": 200,
    "timeout_seconds": 8,
}

SETTINGS: dict[str, dict[str, Any]] = {
    "CLMS_DATABASE_URL": {
        "description": "The library database CLMS keeps its data in.",
        "required": True,
        "secret": True,
    },
    "CLMS_HTTP_PORT": {"description": "The port CLMS answers on.", "default": "8080"},
    "CLMS_STATE_HOST_DIR": {
        "description": "The folder on this server CLMS keeps its state in.",
        "required": True,
    },
    "CLMS_ENFORCEMENT_URL": {
        "description": "Where CLMS asks the agent whether it is blocked.",
        "default": "",
    },
}
SEARCH_SETTINGS: dict[str, dict[str, Any]] = {
    "SEARCH_API_KEY": {
        "description": "The key of the new search service (from the vendor's portal).",
        "required": True,
        "secret": True,
    },
    "CLMS_SEARCH_PORT": {
        "description": "The port the search service answers on.",
        "default": "8091",
    },
}


def project(image_ref: str, *, search: bool = False) -> dict[str, Any]:
    """The compose project (services, volumes) of a demo release."""
    common: dict[str, Any] = {
        "image": image_ref,
        "init": True,
        "network_mode": "host",
        "restart": "unless-stopped",
        "environment": {
            "CLMS_DATABASE_URL": "${CLMS_DATABASE_URL}",
            "CLMS_HTTP_PORT": "${CLMS_HTTP_PORT}",
            "CLMS_STATE_DIR": "/var/lib/clms",
            "CLMS_ENFORCEMENT_URL": "${CLMS_ENFORCEMENT_URL}",
        },
        "volumes": ["${CLMS_STATE_HOST_DIR}:/var/lib/clms"],
    }
    services: dict[str, Any] = {
        "app": {
            **common,
            "command": ["serve"],
            "healthcheck": {
                "test": [
                    "CMD",
                    "curl",
                    "-fsS",
                    "-o",
                    "/dev/null",
                    "http://127.0.0.1:${CLMS_HTTP_PORT}/health",
                ],
                "interval": "10s",
                "timeout": "5s",
                "retries": 3,
            },
        },
        "worker": {**common, "command": ["worker"]},
    }
    result: dict[str, Any] = {"services": services}
    if search:
        services["search"] = {
            "image": image_ref,
            "init": True,
            "network_mode": "host",
            "restart": "unless-stopped",
            "command": ["search"],
            "environment": {
                "SEARCH_API_KEY": "${SEARCH_API_KEY}",
                "CLMS_SEARCH_PORT": "${CLMS_SEARCH_PORT}",
                "CLMS_SEARCH_DIR": "/var/lib/search",
            },
            "volumes": ["search-index:/var/lib/search"],
        }
        result["volumes"] = {"search-index": {}}
    return result


def compose_file(
    image_ref: str,
    *,
    search: bool = False,
    migration: list[str] | None = None,
    backward_compatible: bool = False,
    health: dict[str, Any] | None = None,
) -> str:
    """The vendor's compose file of a demo release (YAML, with x-clms-* parts)."""
    declared = {**SETTINGS, **(SEARCH_SETTINGS if search else {})}
    document: dict[str, Any] = {
        "x-clms-settings": declared,
        "x-clms-migration": {
            "service": "app",
            "command": migration or ["migrate"],
            "backward_compatible": backward_compatible,
        },
        "x-clms-health": {**HEALTH, **(health or {})},
        **project(image_ref, search=search),
    }
    return yaml.safe_dump(document, sort_keys=False)
