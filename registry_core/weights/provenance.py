"""How a converted file was verified: the hash check and origin a header records, read
back as one record (no torch needed, so the catalogue can show it).

A file converted under a weight tag's name records whether the source file's sha256
started with the hash the tag registers for its library (``source_hash_check``) and
whether that file came from a library's download cache or from the user
(``source_origin``). Only a matching hash makes the file *verified*: then it holds the
published weights and the tag's published metrics are its own. Anything else (a hash
that differs, no registered hash, no record at all) is unverified.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import WeightsError
from .validate import check_file_header, shown

HASH_CHECK = "source_hash_check"
ORIGIN = "source_origin"
MATCHES = "matches"
NONE_REGISTERED = "none registered"
USER_FILE = "a user's file"


def hash_check(digest: str, registered: str) -> str:
    """What ``HASH_CHECK`` records for a file of sha256 ``digest`` against the
    ``registered`` hash (or prefix; "" when none is registered)."""
    if not registered:
        return NONE_REGISTERED
    return MATCHES if digest.startswith(registered) else f"differs from {registered}"


def cache_origin(library: str) -> str:
    """What ``ORIGIN`` records for a file converted from ``library``'s download cache."""
    return f"{library}'s cache"


@dataclass(frozen=True)
class Verification:
    """Whether a converted file holds its tag's published weights, and why we think so."""

    verified: bool
    reason: str

    @property
    def status(self) -> str:
        return "verified" if self.verified else "unverified"


def verification_of(header: dict[str, str]) -> Verification:
    """The verification a weights file's header records."""
    check, origin = header.get(HASH_CHECK), header.get(ORIGIN, "")
    source = header.get("source_file", "its source file")
    where = f" (converted from {shown(origin)})" if origin else ""
    if check == MATCHES:
        return Verification(True, f"the sha256 of {shown(source)} matches the hash registered for its tag{where}")
    if check is None:
        return Verification(False, "it records no hash check (written by save() or by an older registry-core): "
                                   "nothing says it holds the published weights")
    if check == NONE_REGISTERED:
        return Verification(False, f"no hash is registered for {shown(source)}, so it could not be checked{where}")
    return Verification(False, f"the sha256 of {shown(source)} {shown(check)}, the hash registered for its tag{where}")


def read_verification(path: str | os.PathLike) -> Verification:
    """``verification_of`` the header of the safetensors file at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    try:
        return verification_of(check_file_header(path))
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from None
