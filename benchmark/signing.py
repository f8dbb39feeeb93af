"""Signed rows: with an organiser's key, every row of results.csv carries an HMAC of its content.

The key is a secret of the organisers, never in the repository: the environment variable
BENCH_SIGNING_KEY (the key itself), or BENCH_SIGNING_KEY_FILE (a file holding it), or else
~/.config/ddbench/signing.key when that file exists. `bench results keygen` writes a new one.

A row's signature is HMAC-SHA256, under the key, of its canonical content — every other cell of
the row exactly as stored, the key's fingerprint included — and of the signature of the last row
that verified before it: rows form a chain, so a signed row replayed or moved elsewhere in the
file, or a signed row removed from the middle, breaks the chain at that place. A row added or
edited by hand does not verify; with a key configured such rows are listed apart and never ranked, and an evaluation is
skipped as "already done" only on the strength of a row that verifies. Without a key everything
works as before and the page says that the record is unsigned.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

ENV_KEY = "BENCH_SIGNING_KEY"
ENV_FILE = "BENCH_SIGNING_KEY_FILE"
MIN_KEY_CHARS = 16
MAX_KEY_BYTES = 4096
ROW_TAG = "ddbench-row-1"  # changes if the canonical form ever does


def default_key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ddbench" / "signing.key"


@dataclass(frozen=True)
class Key:
    secret: bytes
    source: str  # where it came from, for messages (never the key itself)

    @property
    def fingerprint(self) -> str:
        """Names the key in rows and on the page without revealing it."""
        return hashlib.sha256(b"ddbench-key\0" + self.secret).hexdigest()[:16]

    def sign(self, cells: list[str], previous: str) -> str:
        """The signature of a row's cells (every column but `signature`, in order), chained to the
        signature of the row signed before it (`previous`, "" for the first): a signed row copied
        to another place, or replayed, no longer verifies."""
        payload = json.dumps([ROW_TAG, previous, *cells], ensure_ascii=False, separators=(",", ":")).encode()
        return hmac.new(self.secret, payload, hashlib.sha256).hexdigest()

    def verifies(self, cells: list[str], signer: str, signature: str, previous: str) -> bool:
        return signer == self.fingerprint and hmac.compare_digest(self.sign(cells, previous), signature)


def _inside(path: Path, root: Path | None) -> bool:
    if root is None:
        return False
    try:
        path.resolve().relative_to(Path(root).resolve())
        return True
    except ValueError:
        return False


def _checked(text: str, source: str) -> Key:
    secret = text.strip()
    if len(secret) < MIN_KEY_CHARS:
        raise UsageError(f"{source}: the signing key is shorter than {MIN_KEY_CHARS} characters; "
                         f"make a new one with bench results keygen")
    return Key(secret.encode(), source)


def load_key(root: Path | None = None) -> Key | None:
    """The organiser's key, or None when none is configured. A key file inside the project is
    refused: it would end up committed."""
    if os.environ.get(ENV_KEY):
        return _checked(os.environ[ENV_KEY], f"${ENV_KEY}")
    explicit = os.environ.get(ENV_FILE)
    path = Path(explicit).expanduser() if explicit else default_key_file()
    if not explicit and not path.is_file():
        return None
    if _inside(path, root):
        raise UsageError(f"{path}: the signing key file is inside the project, where it could be committed; "
                         f"move it out (e.g. to {default_key_file()}) and set ${ENV_FILE}")
    try:
        if path.stat().st_size > MAX_KEY_BYTES:
            raise UsageError(f"{path}: larger than {MAX_KEY_BYTES} bytes; not a signing key file")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the signing key ({exc.__class__.__name__}); "
                         f"check ${ENV_FILE} or make one with bench results keygen") from None
    return _checked(text, str(path))


def write_new_key(path: Path, root: Path | None) -> Key:
    """A new random key in a file only its owner can read; never overwrites one."""
    import secrets

    path = Path(path).expanduser()
    if _inside(path, root):
        raise UsageError(f"{path}: inside the project, where it could be committed; choose a path outside it")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{path}: a key already exists; keep it (rows signed with it verify only with it) "
                         f"or move it aside first") from None
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return load_key_file(path)


def load_key_file(path: Path) -> Key:
    return _checked(Path(path).read_text(encoding="utf-8"), str(path))
