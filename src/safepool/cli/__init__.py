"""The `safepool` command: a thin shell over the library, with progress bars and plain errors."""

from safepool.cli import data, governance, outputs, policy, query, steward, study  # noqa: F401  (registers the commands)
from safepool.cli.common import app

__all__ = ["app"]
