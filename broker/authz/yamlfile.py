"""Reading the authorization YAML file with errors that name the line and the key.

The file is edited by hand by the IT department, so a mistake must point at the line to
fix: PyYAML's node tree keeps the position of every key and value, and pydantic's error
locations (`users[3].assignments[0].valid_to`) are walked down that tree to find it.
Values are never echoed in messages, since they may be personal numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..validation import error_lines, format_loc
from .model import AuthorizationSourceError, User
from .records import UserRecord


class AuthorizationFileError(AuthorizationSourceError):
    """The authorization file cannot be used; the message names the file, line and key."""


class _Loader(yaml.SafeLoader):
    """Safe loading, but dates stay text so that pydantic reports a bad one with its line."""


_Loader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


class _FileRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    users: list[UserRecord] = Field(default_factory=list)


def _node_at(root: yaml.Node, loc: Sequence[Any]) -> yaml.Node:
    """The deepest node along `loc`; a key's own node when the key itself is the problem."""
    node = root
    for depth, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    node = key if depth == len(loc) - 1 else value
                    break
            else:
                return node
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def _duplicate_keys(node: yaml.Node, where: str = "") -> list[tuple[int, str]]:
    """PyYAML keeps the last of two equal keys silently; a hand-edited file wants to know."""
    found: list[tuple[int, str]] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            path = f"{where}.{name}" if where else name
            if name in seen:
                found.append((key.start_mark.line + 1, f"{path}: key appears twice"))
            seen.add(name)
            found.extend(_duplicate_keys(value, path))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found.extend(_duplicate_keys(item, f"{where}[{i}]"))
    return found


def _unique(users: Sequence[UserRecord]) -> list[tuple[tuple[Any, ...], str]]:
    """The same id, personal number or HSA-id on two users would make `sub` ambiguous."""
    errors: list[tuple[tuple[Any, ...], str]] = []
    for key in ("id", "personal_identity_number", "hsa_id"):
        first: dict[str, int] = {}
        for i, user in enumerate(users):
            value = getattr(user, key)
            if value is None:
                continue
            if value in first:
                errors.append(((("users", i, key)), f"the same {key} as users[{first[value]}]"))
            else:
                first[value] = i
    # One user name in a care system is one person's: two would log in as the same account.
    owner: dict[tuple[str, str], int] = {}
    for i, user in enumerate(users):
        for system, name in user.accounts.items():
            if (system, name) in owner:
                errors.append((("users", i, "accounts", system),
                               f"the same user name as users[{owner[(system, name)]}]"))
            else:
                owner[(system, name)] = i
    return errors


def parse_users(text: str, source: str) -> list[User]:
    """Parse and validate the file's text; raises AuthorizationFileError listing every problem."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f", line {mark.line + 1}" if mark else ""
        raise AuthorizationFileError(f"{source}{where}: not valid YAML ({exc.problem})") from None
    except yaml.YAMLError as exc:
        raise AuthorizationFileError(f"{source}: not valid YAML ({exc})") from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if root is None or not isinstance(data, dict):
        raise AuthorizationFileError(f"{source}: the file must hold a mapping with a 'users' list")

    messages = [f"{source}, line {line}: {msg}" for line, msg in _duplicate_keys(root)]
    try:
        record = _FileRecord.model_validate(data)
    except ValidationError as exc:
        problems = error_lines(exc)
    else:
        problems = _unique(record.users)
    for loc, msg in problems:
        line = _node_at(root, loc).start_mark.line + 1
        messages.append(f"{source}, line {line}: {format_loc(loc)}: {msg}")
    if messages:
        raise AuthorizationFileError("\n".join(messages))
    return [u.to_user() for u in record.users]


def read_users(path: Path) -> list[User]:
    """Read and validate the file at `path` (blocking: call it in a thread from async code)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AuthorizationFileError(f"{path}: cannot read the file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise AuthorizationFileError(f"{path}: the file is not UTF-8 text") from None
    return parse_users(text, str(path))
