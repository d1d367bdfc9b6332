"""Optional dependencies: which pip extra brings which module, and the error when one is missing.

``pip install otaseal`` installs only what publishing to a folder needs. S3 stores and AWS key
references need boto3 (``otaseal[s3]``), Vault references hvac (``otaseal[vault]``), ``serve``
Starlette and uvicorn (``otaseal[serve]``), PostgreSQL stats psycopg (``otaseal[postgres]``).
Without one, a person gets the extra to install, not a ``ModuleNotFoundError`` traceback.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

from otaseal.errors import InputError

if TYPE_CHECKING:
    from types import ModuleType

EXTRA_OF: Final = {
    "boto3": "s3",
    "botocore": "s3",
    "hvac": "vault",
    "starlette": "serve",
    "uvicorn": "serve",
    "msgspec": "serve",
    "httptools": "serve",
    "uvloop": "serve",
    "psycopg": "postgres",
    "psycopg_pool": "postgres",
}


def missing(exc: ImportError, *, needed_for: str, extra: str | None = None) -> InputError:
    """The error for an import that failed because an extra is not installed."""
    module = (exc.name or "").partition(".")[0]
    name = extra or EXTRA_OF.get(module, "")
    package = f"otaseal[{name}]" if name else "otaseal with its extras"
    return InputError(
        f"{needed_for} needs the Python package {module or 'that module'}, which is not "
        f"installed: it comes with the extra {package}",
        expected=f"otaseal installed as {package}",
        fix=f"run `pip install '{package}'` (or add `{name}` to the extras you install otaseal "
        "with; the README lists them under 'Install')",
    )


def load(module: str, *, needed_for: str) -> ModuleType:
    """Import ``module``, or raise the error that names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = EXTRA_OF.get(module.partition(".")[0])
        raise missing(exc, needed_for=needed_for, extra=extra) from None
