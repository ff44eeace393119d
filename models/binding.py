"""What binds an encrypted file to its place: the associated data and the relative-path rules.

Tink's streaming AEAD authenticates associated data that is never stored (it is the HKDF info
of the per-file key), so a file decrypts only under the model name, version and relative path it
was encrypted for; a swapped or renamed file fails at its first segment. The associated data of
``teelog-model/v1`` is the UTF-8 of

    teelog-model/v1 LF <model> LF <version> LF <relative path>

with POSIX separators in the path. Model and version may not contain a line feed (or any other
control character), so the three fields cannot be shifted into one another.
"""

from __future__ import annotations

import unicodedata

from .errors import ModelInputError

FORMAT = "teelog-model/v1"
MANIFEST_NAME = "manifest.json"


def _check_text(what: str, value: str) -> bytes:
    if not value:
        raise ModelInputError(f"{what} is empty")
    bad = [c for c in value if unicodedata.category(c) == "Cc"]
    if bad:
        raise ModelInputError(f"{what} {value!r} contains a control character ({bad[0]!r})")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ModelInputError(f"{what} {value!r} is not valid Unicode text: {e.reason}") from None


def check_name(what: str, value: str) -> str:
    """Return ``value`` if it can be a model name or version (non-empty, no control chars)."""
    _check_text(what, value)
    return value


def check_relative_path(path: str) -> str:
    """Return ``path`` if it is a safe relative POSIX path inside a model directory.

    Refused: absolute paths, empty, ``.`` or ``..`` components, backslashes (a separator on
    Windows, so the same name would mean another place there), control characters, and the
    manifest's own name at the top level.
    """
    _check_text("path", path)
    if path.startswith("/"):
        raise ModelInputError(f"path {path!r} is absolute")
    if "\\" in path:
        raise ModelInputError(f"path {path!r} contains a backslash")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ModelInputError(f"path {path!r} has an empty, '.' or '..' component")
    if path == MANIFEST_NAME:
        raise ModelInputError(f"{MANIFEST_NAME} is the manifest's name; a model file cannot use it")
    return path


def associated_data(model: str, version: str, path: str) -> bytes:
    """The associated data (Tink HKDF info) of the file at ``path`` of ``model`` ``version``."""
    return "\n".join(
        (
            FORMAT,
            check_name("model", model),
            check_name("version", version),
            check_relative_path(path),
        )
    ).encode("utf-8")
