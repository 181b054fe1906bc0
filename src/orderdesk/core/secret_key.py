"""The development secret key: random, made once per install and kept in a file.

No key in the source signs anything: outside production, when `ORDERDESK_SECRET_KEY`
is not set, the key is read from `ORDERDESK_SECRET_KEY_FILE`, which the first
process to need it creates. Several processes starting together (`serve --workers
N`) must agree on one key, or tokens signed by one worker fail in another: each
writes its candidate to a private temporary file and hard-links it into place,
which succeeds for exactly one of them; the others read the winner's file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
from pathlib import Path

MIN_SECRET_KEY_LENGTH = 32
# SHA-256 of keys that were once published in this repository's source; refused in
# every environment (digests, so the source no longer carries the keys themselves).
PUBLISHED_SECRET_KEY_DIGESTS = frozenset(
    {"8ad1c54d3feb6f7a1df87010b296a34882f4f407509b72d73e82127873c05322"}
)


class SecretKeyFileError(ValueError):
    pass


def is_published(key: str) -> bool:
    return hashlib.sha256(key.encode()).hexdigest() in PUBLISHED_SECRET_KEY_DIGESTS


def load_or_create(path: Path) -> str:
    """The key kept in `path`, creating the file (mode 0600) if there is none."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    _create(path, secrets.token_urlsafe(48))
    return _read(path)


def _create(path: Path, key: str) -> None:
    try:
        # mkstemp makes the file with mode 0600, so the key is never readable by
        # others, not even between the write and the link.
        fd, candidate = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise SecretKeyFileError(f"cannot create ORDERDESK_SECRET_KEY_FILE {path}: {exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(key + "\n")
            file.flush()
            os.fsync(file.fileno())
        # Unlike a rename, a link never replaces an existing file: one process wins
        # and every other one then reads the winner's complete file.
        with contextlib.suppress(FileExistsError):
            os.link(candidate, path)
    except OSError as exc:
        raise SecretKeyFileError(f"cannot create ORDERDESK_SECRET_KEY_FILE {path}: {exc}") from exc
    finally:
        Path(candidate).unlink(missing_ok=True)


def _read(path: Path) -> str:
    try:
        key = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretKeyFileError(f"cannot read ORDERDESK_SECRET_KEY_FILE {path}: {exc}") from exc
    if len(key) < MIN_SECRET_KEY_LENGTH:
        raise SecretKeyFileError(
            f"ORDERDESK_SECRET_KEY_FILE {path} holds fewer than {MIN_SECRET_KEY_LENGTH} "
            "characters; delete it to have a new key generated"
        )
    return key
