"""The commands the docs tell people to type: each exists, takes the arguments
the docs give it, and the ones a school admin or vendor runs first say what the
docs say they do (run for real here).

A doc that names a command or option the code no longer has, or a command whose
output or exit code no longer means what the docs promise, fails the build.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import CommandError

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"manage\.py\s+([a-z_]+)((?:[^`\n])*)")
# What a placeholder in the docs stands for when the arguments are parsed.
PLACEHOLDERS = {
    "ID": "1",
    "TEXT": "a reason",
    "VERSION": "1.0.0",
    "<name>": "admin",
    "<user>": "admin",
    "<address>": "10.0.0.23",
}


@dataclass(frozen=True)
class DocCommand:
    where: str
    name: str
    argv: tuple[str, ...]


def doc_commands() -> list[DocCommand]:
    """Every ``manage.py <command> …`` in the docs, continuation lines joined."""
    found = []
    for doc in DOCS:
        lines = doc.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            for match in COMMAND.finditer(line):
                rest, following = match.group(2), number
                while rest.rstrip().endswith("\\") and following < len(lines):
                    rest = rest.rstrip()[:-1] + " " + lines[following]
                    following += 1
                rest = re.split(r"\s#\s|\s{2,}#", rest)[0]
                rest = rest.replace("[", " ").replace("]", " ")
                words = [PLACEHOLDERS.get(w, w) for w in shlex.split(rest)]
                found.append(
                    DocCommand(f"{doc.name}:{number}", match.group(1), tuple(words))
                )
    return found


COMMANDS = doc_commands()


def test_the_docs_name_commands_at_all() -> None:
    """The extraction itself: the commands every admin meets are found."""
    names = {c.name for c in COMMANDS}
    assert {
        "check_updates",
        "publish_release",
        "create_backup",
        "build_bundle",
    } <= names


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"{c.where} {c.name}")
def test_every_documented_command_exists_and_takes_its_documented_arguments(
    command: DocCommand,
) -> None:
    available = get_commands()
    assert command.name in available, (
        f"{command.where} tells people to run `manage.py {command.name}`, which "
        "does not exist"
    )
    parser = load_command_class(available[command.name], command.name).create_parser(
        "manage.py", command.name
    )
    try:
        parser.parse_args(list(command.argv))
    except (SystemExit, CommandError) as e:
        pytest.fail(
            f"{command.where}: `manage.py {command.name} {' '.join(command.argv)}` "
            f"is refused by the command's own parser ({e})"
        )


def _doc_line(where: str) -> str:
    name, number = where.split(":")
    path = ROOT / ("README.md" if name == "README.md" else f"docs/{name}")
    return path.read_text().splitlines()[int(number) - 1]


def _documented(fragment: str) -> DocCommand:
    """The documented command containing ``fragment`` (it must still be there)."""
    for command in COMMANDS:
        if fragment in f"{command.name} {' '.join(command.argv)}":
            return command
    pytest.fail(f"the docs no longer show `manage.py {fragment}`")


@pytest.mark.django_db
def test_create_api_token_prints_a_token_and_renew_replaces_it(school_admin) -> None:
    """docs/api.md: "prints the token" and "--renew  # revoke and replace"."""
    first, renewed = StringIO(), StringIO()
    plain = _documented("create_api_token alice")
    assert "prints the token" in _doc_line(plain.where)
    User.objects.filter(pk=school_admin.pk).update(username="alice")
    call_command("create_api_token", *plain.argv, stdout=first, stderr=StringIO())
    call_command(
        "create_api_token",
        *_documented("--renew").argv,
        stdout=renewed,
        stderr=StringIO(),
    )
    token, new = first.getvalue().strip(), renewed.getvalue().strip()
    assert re.fullmatch(r"[0-9a-f]{40}", token)
    assert re.fullmatch(r"[0-9a-f]{40}", new) and new != token


@pytest.mark.django_db
def test_check_updates_exits_with_the_documented_code_when_offline(settings) -> None:
    """docs/api.md documents the exit codes; an unreachable vendor is "offline"."""
    line = _doc_line(_documented("check_updates").where)
    codes = dict(
        (word, int(code)) for code, word in re.findall(r"(\d) (\w+)", line)
    )  # {"ok": 0, "refused": 1, "offline": 2, "setup": 3}
    settings.UPDATES_SOURCES = ["vendor"]
    settings.UPDATES_VENDOR_URL = "http://127.0.0.1:9/vendor/api/v1/"
    settings.UPDATES_VENDOR_API_KEY = "school-key"
    settings.UPDATES_VENDOR_KEY_FINGERPRINTS = ["A" * 40]
    with pytest.raises(CommandError) as caught:
        call_command("check_updates", stdout=StringIO(), stderr=StringIO())
    assert caught.value.returncode == codes["offline"]
    assert "offline" in str(caught.value).lower()


@pytest.mark.django_db
def test_build_bundle_for_an_unknown_release_says_so_without_a_traceback() -> None:
    """docs/offline.md's build_bundle: a clear refusal, never a raw exception."""
    documented = _documented("build_bundle")
    with pytest.raises(CommandError) as caught:
        call_command("build_bundle", *documented.argv, stdout=StringIO())
    assert "1.4.2" in str(caught.value)


@pytest.mark.django_db
def test_the_documented_lockout_resets_lift_a_lockout(client, school_admin) -> None:
    """docs/troubleshooting.md: after too many wrong passwords, the documented
    command lets the admin in again."""
    from django.conf import settings

    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "admin", "password": "wrong"})
    school_admin.username = "admin"
    school_admin.set_password("right-password")
    school_admin.save()
    locked = client.post(
        "/accounts/login/", {"username": "admin", "password": "right-password"}
    )
    assert locked.status_code != 302  # still refused: locked out
    documented = _documented("axes_reset_username admin")
    call_command(documented.name, *documented.argv, stdout=StringIO())
    call_command(*_documented_argv("axes_reset_ip 10.0.0.23"), stdout=StringIO())
    answer = client.post(
        "/accounts/login/", {"username": "admin", "password": "right-password"}
    )
    assert answer.status_code == 302, "the documented reset did not lift the lockout"


def _documented_argv(fragment: str) -> list[str]:
    documented = _documented(fragment)
    return [documented.name, *documented.argv]


def test_every_variable_the_docs_set_is_in_the_configuration_reference() -> None:
    """A ``NAME=value`` line in a doc's code block names a real setting, listed in
    docs/configuration.md (the reference of every variable)."""
    reference = (ROOT / "docs" / "configuration.md").read_text()
    fence = re.compile(r"^```[a-z]*\n(.*?)^```", re.M | re.S)
    missing = []
    for doc in DOCS:
        for block in fence.findall(doc.read_text()):
            for name in re.findall(r"^([A-Z][A-Z0-9_]{2,})=", block, re.M):
                if f"`{name}`" not in reference and f"`{name}` (" not in reference:
                    missing.append(f"{doc.name}: {name}")
    assert not missing, f"set in the docs but not in configuration.md: {missing}"
