"""The matcher's on-disk cache: a read build is the built one, and a bad file costs a build,
never a wrong match."""

from __future__ import annotations

import json
import marshal
import os
import stat
import subprocess
from pathlib import Path

import pytest

from onplatform.detectors import matcher_cache as cache
from onplatform.detectors.lexicon import Lexicon
from onplatform.detectors.matcher import TermMatcher
from onplatform.detectors.normalize import normalize
from tests.support.corpus import corpus_texts
from tests.support.daemon import ONPLATFORM, bare_env

TERMS = {
    "pay": (
        "send (you )?(the )?(money|funds)",
        "pay*",
        "*pal",
        "(?<!no )wire (it|the money)",
        "\\d+ usd",
        "\\$",
    ),
    "contact": ("tele(gram|gramm)", "wh?ats?\\s*app+", "*zelle*"),
    "hedge": ("would it be (ok|possible)",),
}
TEXTS = (
    "i can send you the money by wire it today, 200 usd, or $ via paypal",
    "no wire it please. would it be ok on telegramm? whatsapp too",
    "payment through upwork only, thanks",
    "my quickzellepay handle",
)


def groups_found(matcher: TermMatcher, text: str) -> dict[str, object]:
    scan = matcher.scan(normalize(text).normalized)
    return {name: scan.get(name) for name in matcher.names}


def the_file(folder: Path) -> Path:
    files = sorted(folder.glob("matcher-*.bin"))
    assert len(files) == 1, files
    return files[0]


def test_a_cached_build_reads_exactly_as_a_new_one(lexicon: Lexicon) -> None:
    """The shipped lexicons: the state read back is the state built, node for node, and
    every group (regex terms too) matches the same on every seventh corpus text."""
    built = TermMatcher(lexicon.terms)
    restored = TermMatcher(lexicon.terms, marshal.loads(marshal.dumps(built.state())))
    assert restored.state() == built.state()
    samples = corpus_texts(every=7)
    assert len(samples) > 1000
    flagged = 0
    for text in samples:
        found = groups_found(built, text)
        assert groups_found(restored, text) == found, text
        flagged += any(found.values())
    assert flagged > 500  # the comparison saw real matches, not empty scans


def test_the_first_load_builds_and_writes_the_next_one_reads(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    first = cache.load_matcher(TERMS, folder)
    assert first.origin.startswith("built, cached in ")
    path = the_file(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = cache.load_matcher(TERMS, folder)
    assert second.origin == f"cache {path}"
    assert the_file(folder) == path
    fresh = TermMatcher(TERMS)
    for text in TEXTS:
        assert groups_found(second.matcher, text) == groups_found(fresh, text)
    assert any(groups_found(second.matcher, TEXTS[0]).values())


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda blob: blob[:-10], "damaged"),
        (lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]), "damaged"),
        (lambda blob: b"something else entirely", "damaged"),
    ],
)
def test_a_damaged_file_is_built_again_and_rewritten(
    tmp_path: Path, damage: object, reason: str
) -> None:
    cache.load_matcher(TERMS, tmp_path)
    path = the_file(tmp_path)
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    again = cache.load_matcher(TERMS, tmp_path)
    assert again.origin.startswith("built, cached in ")
    assert reason in again.origin
    for text in TEXTS:
        assert groups_found(again.matcher, text) == groups_found(TermMatcher(TERMS), text)
    assert cache.load_matcher(TERMS, tmp_path).origin.startswith("cache ")


def test_a_sound_file_that_holds_no_matcher_is_built_again(tmp_path: Path) -> None:
    """A checksum that matches only says the file is whole: its content is checked too."""
    cache.load_matcher(TERMS, tmp_path)
    path = the_file(tmp_path)
    node_to_nowhere = (("a",), (7,), (), ())  # a child index past the only node
    body = marshal.dumps(((node_to_nowhere,), (), (), (), (), (), ()))
    header = cache.FORMAT + cache.hashlib.sha256(body).hexdigest().encode() + b"\n"
    path.write_bytes(header + body)
    again = cache.load_matcher(TERMS, tmp_path)
    assert "not a matcher state" in again.origin
    assert any(groups_found(again.matcher, TEXTS[0]).values())


@pytest.mark.parametrize(
    "state",
    [
        ((("a",), (0,), (), ()),),  # six of the seven parts missing
        (((("a", "b"), (0,), (), ()),), (), (), (), (), (), ()),  # two tokens, one child
        (((("a",), (3,), (), ()),), (), (), (), (), (), ()),  # a child past the last node
        ((), (("a", 0),), (), (), (), (), ()),  # a root that is no node
        (None, (), (), (), (), (), ()),
    ],
)
def test_a_state_that_is_not_a_matcher_is_refused(state: object) -> None:
    with pytest.raises(ValueError, match="not a matcher state"):
        TermMatcher(TERMS, state)  # type: ignore[arg-type]


def test_other_terms_or_other_matcher_code_never_read_a_build(tmp_path: Path) -> None:
    cache.load_matcher(TERMS, tmp_path)
    more = {**TERMS, "pay": (*TERMS["pay"], "venmo")}
    loaded = cache.load_matcher(more, tmp_path)
    assert loaded.origin.startswith("built")
    assert len(list(tmp_path.glob("matcher-*.bin"))) == 2
    assert groups_found(loaded.matcher, "venmo me")["pay"]
    assert cache.build_key(TERMS) != cache.build_key(more)
    assert cache.build_key(TERMS, b"one matcher") != cache.build_key(TERMS, b"another")
    reordered = dict(reversed(list(TERMS.items())))
    assert cache.build_key(reordered) != cache.build_key(TERMS)  # group order is kept


def test_a_folder_that_cannot_be_written_costs_only_the_build(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    loaded = cache.load_matcher(TERMS, blocker / "cache")
    assert loaded.origin.startswith(f"built (not cached in {blocker / 'cache'}: ")
    assert any(groups_found(loaded.matcher, TEXTS[0]).values())
    assert cache.load_matcher(TERMS, None).origin == "built (no cache directory)"


def test_only_the_most_recently_used_builds_are_kept(tmp_path: Path) -> None:
    used = []
    for extra in range(cache.KEEP_FILES + 2):
        terms = {**TERMS, "extra": (f"word{extra}",)}
        cache.load_matcher(terms, tmp_path)
        used.append(tmp_path / f"matcher-{cache.build_key(terms)}.bin")
        os.utime(used[-1], (1_000_000 + extra, 1_000_000 + extra))  # distinct, in order
    kept = set(tmp_path.glob("matcher-*.bin"))
    assert kept == set(used[-cache.KEEP_FILES :])


def test_a_file_left_half_written_by_a_killed_process_is_removed(tmp_path: Path) -> None:
    abandoned = tmp_path / ".matcher-killed"
    abandoned.write_bytes(b"half")
    os.utime(abandoned, (1_000_000, 1_000_000))
    being_written = tmp_path / ".matcher-now"
    being_written.write_bytes(b"half")
    cache.load_matcher(TERMS, tmp_path)
    assert not abandoned.exists()
    assert being_written.exists()
    the_file(tmp_path)


def test_where_the_cache_lives() -> None:
    assert cache.cache_dir({"ONPLATFORM_CACHE_DIR": "/srv/c"}) == Path("/srv/c")
    assert cache.cache_dir({"ONPLATFORM_CACHE_DIR": "", "CACHE_DIRECTORY": "/x"}) is None
    assert cache.cache_dir({"CACHE_DIRECTORY": "/var/cache/a:/var/cache/b"}) == Path("/var/cache/a")
    assert cache.cache_dir({"XDG_CACHE_HOME": "/home/u/.c"}) == Path("/home/u/.c/onplatform")
    assert cache.cache_dir({}) == Path.home() / ".cache" / "onplatform"


def test_a_second_process_reads_the_build_the_first_one_wrote(tmp_path: Path) -> None:
    """The real CLI: the first run writes the build, the second reads that very file (a
    rebuild would replace it with a new one) and judges alike."""
    folder = tmp_path / "cache"
    text = "Can we move this to tele gram? Pay me at paypal dot me slash someone."

    def run() -> str:
        done = subprocess.run(
            [ONPLATFORM, "scan", "--stdin-jsonl"],
            input=json.dumps({"id": 1, "text": text}),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env=bare_env(ONPLATFORM_CONFIG="", ONPLATFORM_CACHE_DIR=str(folder)),
        )
        return done.stdout

    first = run()
    written = the_file(folder).stat()
    second = run()
    read = the_file(folder).stat()
    assert second == first
    assert json.loads(first)["flagged"]
    assert read.st_ino == written.st_ino
