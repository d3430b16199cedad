"""Authorization sources behind one interface, and the assignment model.

`open_source(settings.authorization, settings.base_dir)` gives the configured source:
a YAML file (`file.py`), a SQL database (`sql/`, managed with `broker authz`, see `cli.py`)
or an external HTTP service (`http.py`).
"""

from .model import (
    Assignment,
    AuthorizationSource,
    AuthorizationSourceError,
    Named,
    SourceStatus,
    User,
    match_user,
)
from .settings import (
    AuthorizationSettings,
    FileAuthorizationSettings,
    HttpAuthorizationSettings,
    SqlAuthorizationSettings,
)
from .sources import open_source
from .yamlfile import AuthorizationFileError

__all__ = [
    "Assignment",
    "AuthorizationFileError",
    "AuthorizationSettings",
    "AuthorizationSource",
    "AuthorizationSourceError",
    "FileAuthorizationSettings",
    "HttpAuthorizationSettings",
    "Named",
    "SourceStatus",
    "SqlAuthorizationSettings",
    "User",
    "match_user",
    "open_source",
]
