"""The demo CLMS stack: offline-built images, and helpers to run them.

``build_and_push`` builds every demo version and pushes it to a registry;
``start_stack`` / ``stop_stack`` run the stack's services the way
``docker compose`` would; ``wait_healthy`` polls its ``/health``. See README.md.
"""

from devtools.demo_stack.images import VERSIONS, DemoBuildError, build_and_push
from devtools.demo_stack.stack import (
    IMAGE_VARIABLE,
    SERVICES,
    DemoStack,
    DemoStackError,
    health,
    migrate,
    project_containers,
    run_command,
    seed,
    service_container,
    start_stack,
    stop_stack,
    wait_healthy,
    write_env_file,
)

__all__ = [
    "IMAGE_VARIABLE",
    "SERVICES",
    "VERSIONS",
    "DemoBuildError",
    "DemoStack",
    "DemoStackError",
    "build_and_push",
    "health",
    "migrate",
    "project_containers",
    "run_command",
    "seed",
    "service_container",
    "start_stack",
    "stop_stack",
    "wait_healthy",
    "write_env_file",
]
