"""Opening the source that `authorization` in the settings names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .model import AuthorizationSource, SourceStatus
from .settings import (
    AuthorizationSettings,
    FileAuthorizationSettings,
    HttpAuthorizationSettings,
    SqlAuthorizationSettings,
)


def open_source(settings: AuthorizationSettings, base_dir: Path,
                on_status: Callable[[SourceStatus], None] | None = None) -> AuthorizationSource:
    """Build the configured source; relative paths are taken from `base_dir` (the config
    file's folder, `Settings.base_dir`).

    A file source reads and validates its file here, so a broken file stops start-up
    (AuthorizationFileError, naming lines and keys). SQL and HTTP sources connect lazily:
    await `ping()` at start-up to find out whether they answer (and whether the database
    schema is migrated). Drivers are imported only for the kind in use.
    """
    if isinstance(settings, FileAuthorizationSettings):
        from .file import FileSource

        return FileSource.from_settings(settings, base_dir, on_status)
    if isinstance(settings, SqlAuthorizationSettings):
        from .sql import SqlSource

        return SqlSource.from_settings(settings, base_dir)
    if isinstance(settings, HttpAuthorizationSettings):
        from .http import HttpSource

        return HttpSource.from_settings(settings, base_dir)
    raise TypeError(f"no authorization source of kind {settings.source!r}")
