"""Command line for the demo CLMS stack (``make run`` and people use it).

    python -m devtools.demo_stack build --registry 127.0.0.1:5000
    python -m devtools.demo_stack start --version 1.0.0 --database-url URL \
        --port 8090 --state-dir var/demo/state --env-file var/demo/clms.env
    python -m devtools.demo_stack stop [--project clms]

``DOCKER_HOST`` picks the engine. ``build`` prints the JSON map of version to
digest reference; ``start`` builds and pushes first when given ``--registry``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import docker

from devtools.demo_stack.images import build_and_push
from devtools.demo_stack.stack import seed, start_stack, stop_stack, wait_healthy


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.demo_stack")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build and push every demo version")
    build.add_argument("--registry", required=True, help="host:port of the registry")
    start = commands.add_parser("start", help="start the stack and wait for health")
    start.add_argument("--registry", required=True)
    start.add_argument("--version", default="1.0.0")
    start.add_argument("--project", default="clms")
    start.add_argument("--database-url", required=True)
    start.add_argument("--port", type=int, default=8090)
    start.add_argument("--state-dir", type=Path, required=True)
    start.add_argument("--env-file", type=Path, required=True)
    start.add_argument("--enforcement-url", default=None)
    start.add_argument("--no-seed", action="store_true")
    stop = commands.add_parser("stop", help="remove every container of the stack")
    stop.add_argument("--project", default="clms")
    args = parser.parse_args(argv)

    client = docker.DockerClient(
        base_url=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    )
    if args.command == "stop":
        stop_stack(client, args.project)
        return 0
    references = build_and_push(client, args.registry)
    if args.command == "build":
        print(json.dumps(references, indent=2))
        return 0
    stack = start_stack(
        client,
        image_ref=references[args.version],
        project=args.project,
        database_url=args.database_url,
        http_port=args.port,
        state_dir=args.state_dir.resolve(),
        env_file=args.env_file.resolve(),
        enforcement_url=args.enforcement_url,
    )
    if not args.no_seed:
        seed(client, image_ref=references[args.version], database_url=args.database_url)
    body = wait_healthy(stack.health_url, timeout=30)
    print(
        json.dumps({"url": stack.url, "health": body, "images": references}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
