"""Privacy before storage: user-id pseudonyms, redaction of personal data, private local files.

Everything a trace carries passes ``llmops.store.writer.prepare`` before it is stored, and that
is where this package is applied:

- **User ids** are never stored: a keyed hash (``hash_user_id``) with ``LLMOPS_USER_ID_SALT``.
  The built-in default salt is public, so ``user_id_salt`` warns once per process while it is
  in use (the demo sets a salt of its own, ``use_demo_salt``).
- **Redaction** (``Redactor``) replaces e-mail addresses, phone numbers, card numbers (Luhn
  checked), US social-security numbers and UK national insurance numbers, and the
  deployment's own patterns (``LLMOPS_REDACT_PATTERNS``), by a typed placeholder such as
  ``[redacted:email]``. It runs over session ids, tags, every string in metadata, and the
  prompt and answer text when text capture (``LLMOPS_CAPTURE_TEXT``) is on; and over the
  rejected lines that ``<file>.rejects.jsonl`` keeps (``scrub_raw``), whose user ids become
  the store's pseudonym.
- **Local files**: ``LLMOPS_HOME`` and the SQLite store are created readable by their owner
  only (``private_dir``, ``private_file``).
"""

from llmops.privacy.files import private_dir, private_file
from llmops.privacy.pseudonyms import (
    DEMO_USER_ID_SALT,
    hash_user_id,
    stored_user_id,
    use_demo_salt,
    user_id_pseudonym,
    user_id_salt,
)
from llmops.privacy.redaction import DETECTORS, Redactor, captured_text, redactor
from llmops.privacy.rejects import scrub_document, scrub_raw

__all__ = [
    "DEMO_USER_ID_SALT",
    "DETECTORS",
    "Redactor",
    "captured_text",
    "hash_user_id",
    "private_dir",
    "private_file",
    "redactor",
    "scrub_document",
    "scrub_raw",
    "stored_user_id",
    "use_demo_salt",
    "user_id_pseudonym",
    "user_id_salt",
]
