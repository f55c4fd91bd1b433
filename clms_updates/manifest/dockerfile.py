"""What a source release's Dockerfile may do: build offline, only FROM shipped images.

Both roles read the Dockerfile the same way: the vendor refuses to publish a
source release whose Dockerfile cannot build offline, and the agent checks it
again before it builds (and before maintenance mode). The agent then builds
from a copy whose ``FROM`` lines name the base images it loaded from the
bundle (``rewrite``), with no network.

Only what can be known without building is checked here: every ``FROM`` (and
``COPY --from``) is an earlier stage, ``scratch`` or a base image the release
ships, written literally; no ``ADD`` downloads a URL. A ``RUN`` that needs the
network fails during the build, and the agent names its line then.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Parser directives may change the escape character; only the default is read.
_DIRECTIVE = re.compile(r"^#\s*(\w+)\s*=\s*(.*)$")
_URL = re.compile(r"^(https?|ftp|git)://|^git@", re.IGNORECASE)


class DockerfileError(ValueError):
    """The Dockerfile cannot be read at all (says which line)."""


@dataclass(frozen=True)
class Instruction:
    """One instruction: its first line (1-based), how many lines it spans, its text."""

    line: int
    span: int
    keyword: str
    arguments: str

    @property
    def text(self) -> str:
        return f"{self.keyword} {self.arguments}".strip()


def parse(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile, with continuation lines joined."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    lines = text.splitlines()
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if not pending:
            if not stripped:
                continue
            if stripped.startswith("#"):
                directive = _DIRECTIVE.match(stripped)
                if (
                    directive
                    and not instructions
                    and directive.group(1).lower() == "escape"
                    and directive.group(2).strip() != "\\"
                ):
                    raise DockerfileError(
                        f"line {number}: a different escape character is not supported"
                    )
                continue
            start = number
        elif stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        joined = " ".join(part.strip() for part in pending if part.strip())
        keyword, _, arguments = joined.partition(" ")
        instructions.append(
            Instruction(start, number - start + 1, keyword.upper(), arguments.strip())
        )
        pending = []
    if pending:
        raise DockerfileError(
            f"line {start}: the instruction continues past the end of the file"
        )
    return instructions


def _from_parts(arguments: str) -> tuple[str, str]:
    """(image, stage name) of a FROM's arguments, flags like --platform skipped."""
    words = [w for w in arguments.split() if not w.startswith("--")]
    image = words[0] if words else ""
    stage = words[2] if len(words) >= 3 and words[1].lower() == "as" else ""
    return image, stage


def _copy_from(arguments: str) -> str | None:
    for word in arguments.split():
        if word.startswith("--from="):
            return word.split("=", 1)[1]
    return None


def offline_problems(text: str, bases: Iterable[str], *, name: str) -> list[str]:
    """Why ``text`` cannot build offline from ``bases`` (empty: it can), by line."""
    try:
        instructions = parse(text)
    except DockerfileError as e:
        return [f"{name} {e}"]
    shipped = set(bases)
    stages: set[str] = set()
    problems: list[str] = []
    froms = 0
    for ins in instructions:
        where = f"{name} line {ins.line} (`{ins.text[:80]}`)"
        if ins.keyword == "FROM":
            froms += 1
            image, stage = _from_parts(ins.arguments)
            if "$" in image:
                problems.append(
                    f"{where}: the base image is given by a variable; a source release "
                    "names each base image literally (repository@sha256:…)"
                )
            elif image != "scratch" and image not in stages and image not in shipped:
                problems.append(
                    f"{where}: {image} is not one of the base images the release ships "
                    f"({', '.join(sorted(shipped)) or 'none'}); a source build has no "
                    "registry and uses only those"
                )
            if stage:
                stages.add(stage.lower())
                stages.add(stage)
        elif froms == 0 and ins.keyword not in ("ARG",):
            problems.append(f"{where}: comes before the first FROM")
        elif ins.keyword in ("COPY", "ADD"):
            source = _copy_from(ins.arguments)
            if (
                source is not None
                and source not in stages
                and not source.isdigit()
                and source not in shipped
            ):
                problems.append(
                    f"{where}: --from={source} is neither an earlier stage nor a base "
                    "image the release ships"
                )
            if ins.keyword == "ADD":
                try:
                    words = shlex.split(ins.arguments)
                except ValueError:
                    words = ins.arguments.split()
                if any(_URL.match(word) for word in words if not word.startswith("--")):
                    problems.append(
                        f"{where}: ADD downloads from the network, which a source "
                        "build does not have; put the file in the source"
                    )
    if froms == 0:
        problems.append(f"{name}: has no FROM line")
    return problems


def rewrite(text: str, local: Mapping[str, str]) -> str:
    """The Dockerfile with each shipped base image replaced by its local name.

    Line numbers stay the same (a joined instruction is padded with empty
    lines), so a build error's line is the one in the signed source.
    """
    instructions = {ins.line: ins for ins in parse(text)}
    lines = text.splitlines()
    out: list[str] = []
    number = 1
    while number <= len(lines):
        ins = instructions.get(number)
        if ins is not None and ins.keyword == "FROM":
            image, stage = _from_parts(ins.arguments)
            if image in local:
                flags = [w for w in ins.arguments.split() if w.startswith("--")]
                tail = f" AS {stage}" if stage else ""
                out.append(" ".join(["FROM", *flags, local[image]]) + tail)
                out.extend([""] * (ins.span - 1))
                number += ins.span
                continue
        if ins is not None and ins.keyword in ("COPY", "ADD"):
            source = _copy_from(ins.arguments)
            if source in local:
                assert source is not None
                joined = ins.arguments.replace(
                    f"--from={source}", f"--from={local[source]}"
                )
                out.append(f"{ins.keyword} {joined}")
                out.extend([""] * (ins.span - 1))
                number += ins.span
                continue
        out.append(lines[number - 1])
        number += 1
    return "\n".join(out) + "\n"


def instruction_at_step(text: str, step: int) -> Instruction | None:
    """The instruction the classic builder calls ``Step <step>/N`` (1-based)."""
    instructions = parse(text)
    if 1 <= step <= len(instructions):
        return instructions[step - 1]
    return None
