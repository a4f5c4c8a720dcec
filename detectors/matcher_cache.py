"""A built matcher kept on disk, so a process starts in a fraction of a second.

Building the matcher from the shipped lexicons takes about ten seconds (every term is
expanded into its word sequences, then equal endings are shared); reading the result
back takes a fifth of a second. Each file is named by a hash of everything the build
depends on: the terms in order, this Python's ``marshal`` format and the source of
:mod:`onplatform.detectors.matcher` itself, so an edited lexicon, extra terms from the
config or a new release never read an old build. A file that is missing, unreadable or
damaged (its checksum is stored with it) is built again and rewritten; a directory that
cannot be written only costs the build. The cache never decides what is detected.

``marshal`` holds plain data only and runs no code on reading (unlike ``pickle``); the
files stay in a directory only their user may write (created 0700).
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from onplatform.detectors import matcher as matcher_module
from onplatform.detectors.matcher import TermMatcher, TrieState

CACHE_ENV = "ONPLATFORM_CACHE_DIR"
"""Where the files go; set but empty, nothing is cached."""
SYSTEMD_ENV = "CACHE_DIRECTORY"
"""Set by systemd for a unit with ``CacheDirectory=``."""
FORMAT = b"onplatform-matcher 1\n"
KEEP_FILES = 4
"""Builds kept (the most recently used): a user with two configs, an upgrade."""
_PREFIX = "matcher-"
_SUFFIX = ".bin"
_ABANDONED_AFTER = 3600.0


@dataclass(frozen=True)
class Loaded:
    matcher: TermMatcher
    origin: str
    """Where it came from, one line: "cache <file>", "built, cached in <file>", or "built"
    with the reason nothing was read or written."""
    seconds: float


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path | None:
    """``$ONPLATFORM_CACHE_DIR``, else systemd's ``$CACHE_DIRECTORY``, else the user's
    ``$XDG_CACHE_HOME/onplatform`` (``~/.cache/onplatform``); None to cache nothing."""
    explicit = environ.get(CACHE_ENV)
    if explicit is not None:
        return Path(explicit) if explicit.strip() else None
    systemd = environ.get(SYSTEMD_ENV, "")
    if systemd:
        return Path(systemd.split(":")[0])  # one unit may list several, in order
    base = environ.get("XDG_CACHE_HOME", "")
    if base:
        return Path(base) / "onplatform"
    try:
        return Path.home() / ".cache" / "onplatform"
    except RuntimeError:  # no home directory to be found
        return None


def build_key(terms: Mapping[str, Sequence[str]], source: bytes | None = None) -> str:
    """A hash of everything a build depends on (``source``: the matcher's code)."""
    digest = hashlib.sha256(FORMAT)
    digest.update(f"{sys.version_info[0]}.{sys.version_info[1]} {marshal.version}\n".encode())
    digest.update(hashlib.sha256(_matcher_source() if source is None else source).digest())
    for group, group_terms in terms.items():
        digest.update(f"\0{group}\0{len(group_terms)}\0".encode())
        for term in group_terms:
            digest.update(term.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()[:32]


def load_matcher(terms: Mapping[str, Sequence[str]], folder: Path | None) -> Loaded:
    """The matcher for ``terms``: read from ``folder`` when a build of the very same terms
    is there, else built (and written there for the next process; None: not cached)."""
    started = time.perf_counter()
    if folder is None:
        return Loaded(TermMatcher(terms), "built (no cache directory)", _since(started))
    path = folder / f"{_PREFIX}{build_key(terms)}{_SUFFIX}"
    state, problem = _read(path)
    if state is not None:
        try:
            matcher = TermMatcher(terms, state)
        except ValueError as err:
            problem = f"{path}: {err}"
        else:
            _touch(path)
            return Loaded(matcher, f"cache {path}", _since(started))
    matcher = TermMatcher(terms)
    written = _write(folder, path, matcher.state())
    origin = f"built, cached in {path}" if written is None else f"built ({written})"
    if problem:
        origin += f"; the cached build was not used: {problem}"
    return Loaded(matcher, origin, _since(started))


def _read(path: Path) -> tuple[TrieState | None, str]:
    """The state stored at ``path`` and, when there is none to use, why (empty: no file)."""
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        return None, ""
    except OSError as err:
        return None, f"{path}: {err.strerror or err}"
    header_size = len(FORMAT) + 65  # the format line, a hex SHA-256 and a newline
    header, body = blob[:header_size], blob[header_size:]
    if header != FORMAT + hashlib.sha256(body).hexdigest().encode() + b"\n":
        return None, f"{path}: damaged (checksum or format does not match)"
    try:
        state: TrieState = marshal.loads(body)
    except (EOFError, ValueError, TypeError) as err:
        return None, f"{path}: unreadable ({err})"
    return state, ""


def _write(folder: Path, path: Path, state: TrieState) -> str | None:
    """Write atomically (a reader sees the old file or the new one); the reason on failure."""
    try:
        body = marshal.dumps(state)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{_PREFIX}", dir=folder)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(FORMAT + hashlib.sha256(body).hexdigest().encode() + b"\n")
                out.write(body)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except (OSError, ValueError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        return f"not cached in {folder}: {reason}"
    _prune(folder, keep=path)
    return None


def _prune(folder: Path, keep: Path) -> None:
    """Only the :data:`KEEP_FILES` most recently used builds stay, and no half-written
    file of a process killed while writing (an hour old: never one being written)."""
    try:
        files = [p for p in folder.glob(f"{_PREFIX}*{_SUFFIX}") if p != keep]
        files.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        stale = time.time() - _ABANDONED_AFTER
        abandoned = [p for p in folder.glob(f".{_PREFIX}*") if p.stat().st_mtime < stale]
        for old in files[KEEP_FILES - 1 :] + abandoned:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # another process pruned first, or the folder went away: nothing to keep tidy


def _touch(path: Path) -> None:
    """Mark a build as used, so pruning keeps it."""
    with contextlib.suppress(OSError):  # a read-only cache still serves
        os.utime(path)


def _matcher_source() -> bytes:
    try:
        return Path(matcher_module.__file__).read_bytes()
    except (OSError, TypeError):
        return b""  # no source to read (a frozen build): the format line still counts


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)
