"""Shared pieces of the benchmarks: the private server, mail, loading, the CLI, the daemon.

Everything here measures the product from outside (subprocesses of the real CLI
against the private Dovecot of the test suite) unless a function says otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.dovecot import DovecotEndpoint, PrivateDovecot, imap_session
from tests.support.mail import client_mail, ordinary_mail

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
ONPLATFORM = BIN / "onplatform"
CORPUS = ROOT / "tests" / "corpus" / "messages.jsonl"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

# Friendly project talk put in front of a corpus text, so a request sits at the end
# of a ~3 KB mail ("buried", as in real threads). One list per language we pad.
PADDING: dict[str, tuple[str, ...]] = {
    "en": (
        "Thanks again for the quick turnaround on the last batch, the team loved it.",
        "I went through the staging build this morning and the new filters feel much faster.",
        "Our designer left a few comments on the checkout page, nothing urgent.",
        "The client meeting moved to Thursday, so we have a bit more time for the report.",
        "Could you also have a look at the broken image on the about page when you can?",
        "We are planning the next sprint and would like to keep you on the dashboard work.",
        "The analytics numbers from last week look good, bounce rate is down a little.",
        "I attached the updated brief to the job, the scope is the same as we discussed.",
    ),
    "es": (
        "Gracias otra vez por la entrega rápida del último lote, al equipo le encantó.",
        "Revisé la versión de prueba esta mañana y los filtros nuevos van mucho más rápido.",
        "Nuestro diseñador dejó unos comentarios en la página de pago, nada urgente.",
    ),
    "pt": (
        "Obrigado de novo pela entrega rápida do último lote, a equipe adorou.",
        "Revisei a versão de teste hoje de manhã e os novos filtros estão bem mais rápidos.",
        "Nosso designer deixou alguns comentários na página de pagamento, nada urgente.",
    ),
    "fr": (
        "Merci encore pour la livraison rapide du dernier lot, l'équipe a adoré.",
        "J'ai regardé la version de test ce matin et les nouveaux filtres sont bien plus rapides.",
        "Notre graphiste a laissé quelques remarques sur la page de commande, rien d'urgent.",
    ),
    "de": (
        "Danke nochmal für die schnelle Lieferung der letzten Runde, das Team war begeistert.",
        "Ich habe heute Morgen die Testversion angesehen, die neuen Filter sind viel schneller.",
        "Unser Designer hat ein paar Anmerkungen zur Kassenseite hinterlassen, nichts Dringendes.",
    ),
}
CLIENT_NAMES = (
    "Maria Lopez",
    "Chen Wei",
    "Olga Ivanova",
    "James Carter",
    "Priya Nair",
    "Lukas Becker",
    "Ana Souza",
    "Hiring Team",
)


# -- result rows ------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One line of a benchmark table: a figure and, side by side, its reference."""

    bench: str
    figure: str
    value: str
    reference: str = ""
    target: str = ""
    met: bool | None = None

    @property
    def verdict(self) -> str:
        return "" if self.met is None else ("met" if self.met else "NOT met")


def table(rows: Sequence[Row]) -> str:
    """A Markdown table, readable as plain text too."""
    header = ("benchmark", "figure", "value", "reference (same run)", "target", "")
    cells = [
        header,
        *[(r.bench, r.figure, r.value, r.reference, r.target, r.verdict) for r in rows],
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(c) for c in cells[1:]]
    return "\n".join(out)


@dataclass
class Section:
    """What one benchmark returns: its rows, and notes printed under the table."""

    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def text(self) -> str:
        lines = [f"### {self.title}", "", table(self.rows) if self.rows else "(no figures)"]
        if self.notes:
            lines.append("")
            lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines)

    def print(self) -> None:
        print("\n" + self.text(), flush=True)


def say(message: str) -> None:
    """Progress on stderr, so stdout keeps only the tables."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation), fine for ~20 samples."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


# -- the private server ----------------------------------------------------------------
@contextlib.contextmanager
def private_dovecot() -> Iterator[tuple[PrivateDovecot, DovecotEndpoint]]:
    """A fresh private Dovecot in its own temporary directory, always stopped."""
    server = PrivateDovecot()
    try:
        endpoint = server.start()
        yield server, endpoint
    finally:
        server.stop()


def dovecot_version() -> str:
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    except OSError:
        return "unavailable"
    return out.stdout.strip() or "unknown"


def imap(
    endpoint: DovecotEndpoint, port: int | None = None
) -> contextlib.AbstractContextManager[Any]:
    """A logged-in client; the long timeout covers a cold SEARCH over 100k messages."""
    return imap_session(endpoint, port=port, timeout=120)


def maildir_path(server: PrivateDovecot, folder: str) -> Path:
    """The Maildir of `folder` (mail_location = maildir:~/Maildir:LAYOUT=fs)."""
    base = server.root / "mail" / server.endpoint.username / "Maildir"
    return base if folder.upper() == "INBOX" else base / folder


def _mail_ids() -> tuple[int, int]:
    # Same rule as tests/support/dovecot.py: root hands the mailbox to nobody.
    if os.getuid() == 0:
        import grp
        import pwd

        return pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
    return os.getuid(), os.getgid()


def load_maildir(server: PrivateDovecot, folder: str, messages: Iterable[bytes]) -> int:
    """Write messages straight into the folder's Maildir ``cur/`` and let Dovecot index them.

    Files are named so that Dovecot assigns UIDs in the order given (it sorts new
    files by the timestamp in front of the name), stored with LF line ends as
    Dovecot itself stores them, and owned by the mail user. Returns the count.
    """
    # Selecting the folder makes Dovecot create cur/ new/ tmp/.
    with imap(server.endpoint) as client:
        client.select_folder(folder, readonly=True)
    cur = maildir_path(server, folder) / "cur"
    uid, gid = _mail_ids()
    base = int(time.time()) - 10_000_000
    count = 0
    for index, raw in enumerate(messages):
        data = raw.replace(b"\r\n", b"\n")
        path = cur / f"{base + index}.M{index}P{os.getpid()}.bench,S={len(data)}:2,"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fchown(fd, uid, gid)
        finally:
            os.close(fd)
        count += 1
    index_folder(server.endpoint, folder)
    return count


def load_multiappend(
    endpoint: DovecotEndpoint, folder: str, messages: Iterable[bytes], chunk: int = 500
) -> int:
    """MULTIAPPEND over IMAP, `chunk` messages per command."""
    count = 0
    batch: list[bytes] = []
    with imap(endpoint) as client:
        for raw in messages:
            batch.append(raw)
            if len(batch) >= chunk:
                client.multiappend(folder, batch)
                count += len(batch)
                batch = []
        if batch:
            client.multiappend(folder, batch)
            count += len(batch)
    return count


def index_folder(endpoint: DovecotEndpoint, folder: str) -> int:
    """SELECT the folder once so Dovecot has indexed (and numbered) every message."""
    with imap(endpoint) as client:
        info = client.select_folder(folder, readonly=True)
        return int(info.get(b"EXISTS", 0))


# -- mail -----------------------------------------------------------------------------
@dataclass(frozen=True)
class TextPools:
    flagged: tuple[str, ...]
    benign: tuple[str, ...]
    source: str
    """How the pools were chosen: by the analyzer's verdict or, if it failed, by label."""


def _padded(text: str, language: str, size: int, rng: random.Random) -> str:
    pads = PADDING.get(language, PADDING["en"])
    lines: list[str] = []
    length = len(text.encode())
    while length < size:
        sentence = " ".join(rng.choice(pads) for _ in range(3))
        lines.append(sentence)
        length += len(sentence.encode()) + 2
    return "\n\n".join([*lines, text])


@functools.cache
def text_pools(body_bytes: int = 2200, seed: int = 7) -> TextPools:
    """Padded corpus texts, split by what the real pipeline says about the whole mail.

    A text counts as flagged when parse_notification + judge flag the mail built
    from it; benign texts are corpus `benign` ones the pipeline does not flag. If the
    pipeline cannot be built right now (the detectors are being reworked), the
    corpus labels decide.
    """
    rng = random.Random(seed)
    records = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    padded = [
        (
            str(r["label"]),
            _padded(str(r["text"]), str(r.get("language") or "en"), body_bytes, rng),
        )
        for r in records
        if str(r.get("language") or "en") in PADDING
    ]
    try:
        from onplatform.config.schema import DetectorSettings
        from onplatform.daemon.notification import parse_notification
        from onplatform.daemon.pipeline import build_analyzer, judge

        analyzer = build_analyzer(DetectorSettings())
        flagged: list[str] = []
        benign: list[str] = []
        for index, (label, text) in enumerate(padded):
            raw = client_mail(900_000 + index, "Maria Lopez", text, f"<pool-{index}@bench.test>")
            verdict = judge(analyzer, parse_notification(raw), [])
            if verdict.assessment.flagged and label != "benign":
                flagged.append(text)
            elif not verdict.assessment.flagged and label == "benign":
                benign.append(text)
        if flagged and benign:
            return TextPools(tuple(flagged), tuple(benign), "pipeline verdict")
    except Exception as err:
        say(f"pipeline unavailable for choosing texts ({type(err).__name__}: {err}); using labels")
    return TextPools(
        tuple(t for label, t in padded if label != "benign"),
        tuple(t for label, t in padded if label == "benign"),
        "corpus label",
    )


_ROOM_MARK = 987_654_321
_ID_MARK = "bench-id-placeholder"
_INDEX_MARK = 7_777_777  # a multiple of 7, so ordinary_mail() names it news0@


@functools.cache
def _client_template(name: str, text: str) -> bytes:
    return client_mail(_ROOM_MARK, name, text, f"<{_ID_MARK}@upwork.test>")


def fast_client_mail(room: int, name: str, text: str, message_id: str) -> bytes:
    """client_mail() from a cached rendering (about 100x faster for bulk loads)."""
    raw = _client_template(name, text)
    raw = raw.replace(f"room_{_ROOM_MARK}@".encode(), f"room_{room}@".encode(), 1)
    return raw.replace(f"<{_ID_MARK}@upwork.test>".encode(), message_id.encode(), 1)


@functools.cache
def _ordinary_template() -> bytes:
    return ordinary_mail(_INDEX_MARK)


def fast_ordinary_mail(index: int) -> bytes:
    """ordinary_mail(index) from a cached rendering (about 100x faster for bulk loads)."""
    raw = _ordinary_template().replace(b"news0@", f"news{index % 7}@".encode(), 1)
    return raw.replace(str(_INDEX_MARK).encode(), str(index).encode())


@dataclass(frozen=True)
class Notifications:
    raws: tuple[bytes, ...]
    flagged: int
    pools: str

    @property
    def mean_bytes(self) -> float:
        return sum(len(r) for r in self.raws) / max(1, len(self.raws))


def notifications(
    count: int,
    flagged_share: float = 0.3,
    *,
    body_bytes: int = 2200,
    seed: int = 11,
    first_room: int = 1_000_000,
    tag: str = "bench",
) -> Notifications:
    """`count` client notifications (~3 KB each), `flagged_share` of them flagged by their text.

    Every message has its own room, so each flagged one is a first request and gets a draft.
    """
    pools = text_pools(body_bytes)
    rng = random.Random(seed)
    flagged_count = round(count * flagged_share)
    marks = [True] * flagged_count + [False] * (count - flagged_count)
    rng.shuffle(marks)
    raws = []
    for index, flagged in enumerate(marks):
        text = rng.choice(pools.flagged if flagged else pools.benign)
        name = CLIENT_NAMES[index % len(CLIENT_NAMES)]
        raws.append(
            fast_client_mail(first_room + index, name, text, f"<{tag}-{index}@upwork.test>")
        )
    return Notifications(tuple(raws), flagged_count, pools.source)


def haystack(total_ordinary: int, needles: Sequence[bytes], seed: int = 3) -> Iterator[bytes]:
    """Ordinary mail with the needles spread evenly (with a little jitter) among it."""
    rng = random.Random(seed)
    gap = total_ordinary / max(1, len(needles))
    slots = sorted(
        min(total_ordinary, int(i * gap + rng.random() * gap)) for i in range(len(needles))
    )
    position = 0
    for index in range(total_ordinary + 1):
        while position < len(slots) and slots[position] == index:
            yield needles[position]
            position += 1
        if index < total_ordinary:
            yield fast_ordinary_mail(index)


# -- configuration ----------------------------------------------------------------------
def write_config(
    directory: Path,
    endpoint: DovecotEndpoint,
    *,
    port: int | None = None,
    poll_interval: float = 1,
    account_extra: Sequence[str] = (),
    state_name: str = "state.sqlite3",
    name: str = "config.toml",
    folders: Sequence[str] = ("INBOX",),
    extra: Sequence[str] = (),
) -> Path:
    """A config in the format of tests/conftest.py::write_config (plain IMAP on loopback).

    ``extra``: more top-level lines, e.g. ``("[detectors]", "workers = 0")``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    secret = directory / "password"
    secret.write_text(endpoint.password + "\n")
    os.chmod(secret, 0o600)
    lines = [
        "[[accounts]]",
        'name = "work"',
        f'host = "{endpoint.host}"',
        f"port = {port or endpoint.port}",
        'tls = "none"',
        f'username = "{endpoint.username}"',
        f'password_file = "{secret}"',
        "folders = [" + ", ".join(f'"{f}"' for f in folders) + "]",
        f"poll_interval = {poll_interval}",
        "timeout = 120",
        *account_extra,
        "",
        "[state]",
        f'path = "{directory / state_name}"',
        "",
        "[drafts]",
        'freelancer_name = "Sam Carter"',
        'signature = "Sam Carter, web developer"',
        "",
        "[logging]",
        'format = "json"',
        "",
        *extra,
    ]
    path = directory / name
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"onplatform-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- the CLI as a subprocess ------------------------------------------------------------
@dataclass
class CliRun:
    returncode: int
    wall_s: float
    cpu_s: float
    max_rss_kb: int
    events: list[dict[str, Any]]
    stderr: str

    def event(self, name: str) -> dict[str, Any] | None:
        found = [e for e in self.events if e.get("event") == name]
        return found[-1] if found else None

    def require(self, name: str) -> dict[str, Any]:
        found = self.event(name)
        if found is None:
            raise RuntimeError(
                f"onplatform exited {self.returncode} without {name}: {self.stderr.strip()[-800:]}"
            )
        return found


def read_events(path: Path) -> list[dict[str, Any]]:
    events = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
    return events


def run_cli(args: Sequence[str], out_dir: Path, *, timeout: float = 300) -> CliRun:
    """Run ``onplatform ARGS``; wall time, CPU (user+sys) and peak RSS come from wait4()."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stdout_path = out_dir / "stdout.jsonl"
    stderr_path = out_dir / "stderr.txt"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(ONPLATFORM), *args], stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=ROOT
        )
    timer = threading.Timer(timeout, lambda: _kill_pid(proc.pid))
    timer.start()
    try:
        _pid, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return CliRun(
        returncode=proc.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        max_rss_kb=usage.ru_maxrss,
        events=read_events(stdout_path),
        stderr=stderr_path.read_text(errors="replace"),
    )


def _kill_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def check_config(config: Path) -> tuple[bool, str]:
    result = subprocess.run(
        [str(ONPLATFORM), "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=60,
    )
    return result.returncode == 0, (result.stderr or result.stdout).strip()


# -- /proc -----------------------------------------------------------------------------
def proc_status_kb(pid: int, key: str) -> int:
    """VmRSS, VmHWM ... of a process, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children_named(parent: int, name: str) -> list[int]:
    """PIDs of the direct children of `parent` whose comm is `name`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and comm == name:
            found.append(int(entry.name))
    return found


# -- the daemon -----------------------------------------------------------------------
@dataclass
class Event:
    at: float
    data: dict[str, Any]


class Daemon:
    """``onplatform run`` as a subprocess, its JSON log lines read as they come."""

    KEEP = frozenset(
        {
            "poll.finished",
            "poll.failed",
            "mailbox.error",
            "mailbox.connected",
            "draft.appended",
            "daemon.started",
            "daemon.stopped",
        }
    )

    def __init__(self, config: Path) -> None:
        self.proc = subprocess.Popen(
            [str(ONPLATFORM), "run", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        self.events: list[Event] = []
        self.stderr: list[str] = []
        self._changed = threading.Condition()
        self._listeners: list[Callable[[Event], None]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_err, daemon=True)
        self._err_reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def on_event(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            at = time.monotonic()
            if not line.startswith(b"{"):
                continue
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if data.get("event") not in self.KEEP:
                continue
            event = Event(at, data)
            for listener in self._listeners:
                listener(event)
            with self._changed:
                self.events.append(event)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.decode(errors="replace"))

    def named(self, name: str) -> list[Event]:
        with self._changed:
            return [e for e in self.events if e.data.get("event") == name]

    def wait_for(self, predicate: Callable[[list[Event]], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.events):
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    return predicate(self.events)
                self._changed.wait(min(left, 0.5))
            return True

    def wait_polls(self, count: int, timeout: float) -> bool:
        return self.wait_for(
            lambda events: sum(e.data.get("event") == "poll.finished" for e in events) >= count,
            timeout,
        )

    def failure(self) -> str:
        errors = [
            e.data for e in self.events if e.data.get("event") in {"poll.failed", "mailbox.error"}
        ]
        tail = "".join(self.stderr[-20:])
        return f"exit={self.proc.poll()} errors={errors[-3:]} stderr={tail[-800:]}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        self._err_reader.join(timeout=5)


@contextlib.contextmanager
def daemon(config: Path) -> Iterator[Daemon]:
    process = Daemon(config)
    try:
        yield process
    finally:
        process.stop()


# -- counting IMAP commands -------------------------------------------------------------
_LITERAL = re.compile(rb"\{(\d+)\+?\}$")


@dataclass
class _Lines:
    """Splits an IMAP byte stream into lines, skipping literals ({n} then n bytes).

    Each line comes with a flag: True when it starts a command (client side) or a
    response (server side), False when it continues one after a literal.
    """

    buffer: bytearray = field(default_factory=bytearray)
    literal_left: int = 0
    continued: bool = False

    def feed(self, data: bytes) -> list[tuple[bytes, bool]]:
        lines: list[tuple[bytes, bool]] = []
        self.buffer += data
        pos = 0
        size = len(self.buffer)
        while pos < size:
            if self.literal_left:
                taken = min(self.literal_left, size - pos)
                pos += taken
                self.literal_left -= taken
                continue
            end = self.buffer.find(b"\r\n", pos)
            if end < 0:
                break
            line = bytes(self.buffer[pos:end])
            pos = end + 2
            lines.append((line, not self.continued))
            match = _LITERAL.search(line)
            self.literal_left = int(match.group(1)) if match else 0
            self.continued = bool(match)
        del self.buffer[:pos]
        return lines


@dataclass
class Command:
    sent_at: float
    name: str
    tag: bytes
    answered_at: float | None = None

    @property
    def latency_s(self) -> float | None:
        return None if self.answered_at is None else self.answered_at - self.sent_at


@dataclass
class CommandLog:
    commands: list[Command] = field(default_factory=list)
    bytes_from_server: int = 0


class CommandCounter:
    """A loopback TCP relay in front of Dovecot that records every IMAP command sent.

    Counting on the wire sees exactly what the product sends, whatever library it uses,
    without touching the product or the server's configuration. Each command also gets
    the time its tagged answer came back, i.e. the server's latency for it.
    """

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self.log = CommandLog()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()
        self._threads.append(accept)

    def snapshot(self) -> tuple[int, int]:
        with self._lock:
            return len(self.log.commands), self.log.bytes_from_server

    def commands(self, start: int = 0, stop: int | None = None) -> list[Command]:
        with self._lock:
            return list(self.log.commands[start:stop])

    def _accept(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _addr = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._relay, args=(client,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _from_client(self, lines: list[tuple[bytes, bool]], idling: bool, now: float) -> bool:
        for line, starts in lines:
            if not starts:
                continue
            if idling and line.strip().upper() == b"DONE":
                idling = False
                continue
            parts = line.split(b" ")
            name = parts[1].upper() if len(parts) > 1 else b"?"
            if name == b"UID" and len(parts) > 2:
                name = b"UID " + parts[2].upper()
            idling = name == b"IDLE"
            with self._lock:
                self.log.commands.append(Command(now, name.decode(errors="replace"), parts[0]))
        return idling

    def _from_server(self, lines: list[tuple[bytes, bool]], pending: dict[bytes, Command]) -> None:
        now = time.monotonic()
        for line, starts in lines:
            if starts and not line.startswith((b"*", b"+")):
                command = pending.pop(line.split(b" ", 1)[0], None)
                if command is not None:
                    command.answered_at = now

    def _relay(self, client: socket.socket) -> None:
        client_lines, server_lines = _Lines(), _Lines()
        pending: dict[bytes, Command] = {}
        idling = False
        try:
            upstream = socket.create_connection(self._target, timeout=10)
        except OSError:
            client.close()
            return
        with client, upstream:
            # No Nagle on the relay's own legs, so it adds no delayed-ACK stalls of its own.
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sockets = [client, upstream]
            while not self._stop.is_set():
                readable, _w, _x = select.select(sockets, [], [], 0.2)
                for sock in readable:
                    try:
                        data = sock.recv(262_144)
                    except OSError:
                        data = b""
                    if not data:
                        return
                    if sock is client:
                        # imapclient sends a command's line and its CRLF in two writes; with
                        # Nagle on the product's side, a delayed ACK here would stall it
                        # ~40 ms. Dovecot acknowledges at once, so the relay must too.
                        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                        now = time.monotonic()
                        with self._lock:
                            known = len(self.log.commands)
                        idling = self._from_client(client_lines.feed(data), idling, now)
                        with self._lock:
                            for command in self.log.commands[known:]:
                                pending[command.tag] = command
                        upstream.sendall(data)
                    else:
                        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                        with self._lock:
                            self.log.bytes_from_server += len(data)
                        self._from_server(server_lines.feed(data), pending)
                        client.sendall(data)

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        for thread in self._threads:
            thread.join(timeout=2)


@contextlib.contextmanager
def command_counter(endpoint: DovecotEndpoint) -> Iterator[CommandCounter]:
    counter = CommandCounter(endpoint.host, endpoint.port)
    try:
        yield counter
    finally:
        counter.close()


# -- machine -------------------------------------------------------------------------
def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with contextlib.suppress(OSError, KeyError):
        total_kb = int(
            next(
                line.split()[1]
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal:")
            )
        )
        ram = f"{total_kb / 1024 / 1024:.1f} GiB"
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu,
        "ram": ram,
        "python": sys.version.split()[0],
        "dovecot": dovecot_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
