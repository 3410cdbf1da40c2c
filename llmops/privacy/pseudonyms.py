"""User ids are never stored: a keyed hash with ``LLMOPS_USER_ID_SALT``, and a warning while that salt is the public default."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import threading

from llmops import settings

log = logging.getLogger("llmops.privacy")

DEMO_USER_ID_SALT = "llmops-demo-salt"
"""The salt ``make demo`` hashes its invented users with (``use_demo_salt``): no warning there."""
_salt_warned = False
_SALT_WARNED_MARKER = "_LLMOPS_DEFAULT_SALT_WARNED"
"""Set in the environment once warned, so that worker processes started afterwards (an import's) stay quiet."""
_salt_lock = threading.Lock()
DEFAULT_SALT_WARNING = (
    "llmops: user ids are hashed with the built-in default salt, which is public, so the hashes can be "
    f"reversed by trying ids: set {settings.LLMOPS_USER_ID_SALT} to a secret of this deployment, e.g. "
    f"export {settings.LLMOPS_USER_ID_SALT}=$(openssl rand -hex 32) (README, Privacy)"
)


def user_id_salt() -> bytes:
    """The salt user ids are hashed with; warns once per process (and its children) while it is the public default.

    Returns:
        ``LLMOPS_USER_ID_SALT`` as bytes (``settings.user_id_salt``).

    Example:
        ```python
        hashed = hash_user_id("u-42", user_id_salt())  # logs the warning once if the salt is the default
        ```
    """
    global _salt_warned
    salt = settings.user_id_salt()
    if not _salt_warned and salt == settings.DEFAULT_USER_ID_SALT.encode():
        with _salt_lock:
            if not _salt_warned:
                _salt_warned = True
                if not os.environ.get(_SALT_WARNED_MARKER):  # a parent process warned already
                    os.environ[_SALT_WARNED_MARKER] = "1"
                    log.warning(DEFAULT_SALT_WARNING)
    return salt


def use_demo_salt() -> None:
    """Say "this is the demo": hash its invented users with the demo's own salt, unless one is set.

    Only for the demo's process: it sets ``LLMOPS_USER_ID_SALT`` in this process's environment.
    """
    os.environ.setdefault(settings.LLMOPS_USER_ID_SALT, DEMO_USER_ID_SALT)


@functools.lru_cache(maxsize=65_536)
def hash_user_id(user_id: str, salt: bytes) -> str:
    """A stable pseudonym: traces never store the raw user id.

    Args:
        user_id: The application's user id.
        salt: ``LLMOPS_USER_ID_SALT`` (at most 64 bytes are used, blake2b's key limit).

    Returns:
        32 hex digits, the same for the same id and salt.

    Example:
        >>> hash_user_id("u-42", b"salt") == hash_user_id("u-42", b"salt") != hash_user_id("u-43", b"salt")
        True
    """
    return hashlib.blake2b(user_id.encode(), key=salt[:64], digest_size=16).hexdigest()


_PSEUDONYM = re.compile(r"\[user_id:([0-9a-f]{32})\]")


def user_id_pseudonym(user_id: object, salt: bytes | None = None) -> str:
    """How a rejected line shows a user id: ``[user_id:<the hash the store would keep>]``.

    Importing the corrected line again stores that same hash (``stored_user_id``), so the trace
    still belongs to its user.

    Args:
        user_id: The raw id (a number is taken as its text).
        salt: The salt; None reads ``LLMOPS_USER_ID_SALT``.

    Returns:
        The pseudonym; a pseudonym given again is returned unchanged.

    Example:
        >>> user_id_pseudonym("u-42", b"salt") == f"[user_id:{hash_user_id('u-42', b'salt')}]"
        True
    """
    text = str(user_id).strip()
    if _PSEUDONYM.fullmatch(text):
        return text
    return f"[user_id:{hash_user_id(text, user_id_salt() if salt is None else salt)}]"


def stored_user_id(user_id: str, salt: bytes) -> str:
    """The user id column's value: the salted hash, or the hash a rejects-file pseudonym carries.

    Example:
        >>> stored_user_id("[user_id:" + "ab" * 16 + "]", b"salt") == "ab" * 16
        True
    """
    if user_id.startswith("[user_id:") and (match := _PSEUDONYM.fullmatch(user_id)):
        return match.group(1)
    return hash_user_id(user_id, salt)
