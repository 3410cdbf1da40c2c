"""One line instead of a traceback when the store fails: what failed, where, and what to check.

Every command runs under ``StoreErrorsGroup``: a database error that reaches the command line
(the store down, hung, refusing, or its disk full) prints one line naming the store's URL with
the password masked, and exits 1.
"""

from __future__ import annotations

import errno
from typing import Any

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from typer.core import TyperGroup

from llmops import settings
from llmops.store.engine import STORE_URL_ATTRIBUTE
from prefect_llmops.cli.output import EXIT_CHECK_FAILED, fail

STORE_ERRORS = (OperationalError, InterfaceError, PoolTimeoutError)
DISK_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
CHECK_SERVER = (
    f"check that the database server is running and reachable from here, the credentials, and {settings.LLMOPS_DATABASE_URL}"
)
CHECK_HUNG = (
    f"check that the database server answers (it may be overloaded or stuck); the limits are "
    f"{settings.LLMOPS_STORE_CONNECT_TIMEOUT_SECONDS} and {settings.LLMOPS_STORE_STATEMENT_TIMEOUT_SECONDS}"
)
CHECK_DISK = "check the free space (and the file size limit) where the store lives; batches committed before stay stored"


def _configured_url() -> tuple[str, str | None]:
    """The configured store's URL, masked, and its password (to scrub from messages)."""
    try:
        url = make_url(settings.database_url())
    except ArgumentError:
        return "(LLMOPS_DATABASE_URL is not a SQLAlchemy URL)", None
    return url.render_as_string(hide_password=True), url.password


def _reason(exc: BaseException, password: str | None) -> str:
    original = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    reason = lines[0] if lines else type(original).__name__
    if password:
        reason = reason.replace(password, "***")
    return f"{reason} ({type(original).__name__})"


def store_error_message(exc: BaseException) -> str:
    """The one line for a store failure: what failed, the masked URL, what to check.

    Args:
        exc: The SQLAlchemy error (or disk-full ``OSError``).

    Returns:
        The message, without the password.

    Example:
        >>> from sqlalchemy.exc import OperationalError
        >>> store_error_message(OperationalError("SELECT 1", {}, Exception("Connection refused")))[:27]
        'the store failed at sqlite:'
    """
    configured, password = _configured_url()
    where = getattr(exc, STORE_URL_ATTRIBUTE, None) or configured
    reason = _reason(exc, password)
    lowered = reason.lower()
    if isinstance(exc, OSError) or any(word in lowered for word in ("disk is full", "disk i/o", "file too large")):
        check = CHECK_DISK
    elif isinstance(exc, PoolTimeoutError) or "timeout" in lowered or "canceling statement" in lowered:
        check = CHECK_HUNG
    else:
        check = CHECK_SERVER
    return f"the store failed at {where}: {reason}; {check}"


def _is_store_failure(exc: BaseException) -> bool:
    if isinstance(exc, STORE_ERRORS):
        return True
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


class StoreErrorsGroup(TyperGroup):
    """The ``llmops`` command group: store failures become one line and exit 1."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (*STORE_ERRORS, OSError) as exc:
            if not _is_store_failure(exc):
                raise
            raise fail(store_error_message(exc), EXIT_CHECK_FAILED) from None
