"""Every option of every `broker` command is in its `--help` and in the README's synopsis
(the "Running it" block), so nobody has to read the code to find one."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from broker.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("broker",)):
    """(command words, parser) for every command that runs something."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from _commands(sub, (*path, name))


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [o for a in parser._actions for o in a.option_strings if o not in ("-h", "--help")]


def _synopsis() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Running it"):]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README.md: no command block under 'Running it'"
    return [ln for ln in block.group(1).splitlines() if ln.startswith("broker ")]


def _readme_line(words: tuple[str, ...]) -> str:
    for line in _synopsis():
        tokens = line.split()
        if len(tokens) >= len(words) and all(
                w in tokens[i].split("|") for i, w in enumerate(words)):
            return line
    pytest.fail(f"README.md 'Running it' has no synopsis for {' '.join(words)}")


def _mentions(text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


def _simulator_options() -> list[str]:
    """`broker simulator bankid` parses its own arguments: read them off its --help."""
    out = subprocess.run([sys.executable, "-m", "broker.cli", "simulator", "bankid", "--help"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    usage = out.split("\n\n")[0]
    return sorted(set(re.findall(r"--[a-z][a-z-]*", usage)) - {"--help"})


COMMANDS = {" ".join(words): parser for words, parser in _commands(build_parser())
            if words[:2] != ("broker", "simulator")}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_is_in_help_and_in_the_readme(name):
    parser = COMMANDS[name]
    options = _options(parser)
    help_text = parser.format_help()
    line = _readme_line(tuple(name.split()))
    for option in options:
        assert _mentions(help_text, option), f"{name} --help does not list {option}"
        assert _mentions(line, option), f"README synopsis of {name} lacks {option}:\n{line}"


def test_the_simulator_options_are_in_the_readme():
    options = _simulator_options()
    assert "--auto-approve" in options and "--client-ca" in options
    line = _readme_line(("broker", "simulator", "bankid"))
    for option in options:
        assert _mentions(line, option), f"README synopsis of the simulator lacks {option}"


def test_every_command_has_a_synopsis():
    for words, _ in _commands(build_parser()):
        _readme_line(words if words[:2] != ("broker", "simulator") else (*words, "bankid"))


def test_demo_options_have_help_text():
    """The demo is where a newcomer starts: each option says what it is for."""
    demo = COMMANDS["broker demo"]
    for action in demo._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"broker demo {action.option_strings[0]} has no help text"
