"""The SQLite state store: progress, retries, parked messages and client history."""

from __future__ import annotations

from pathlib import Path

from onplatform.daemon.state import MAX_ATTEMPTS, FolderProgress, StateStore


def test_progress_survives_reopening(tmp_path: Path) -> None:
    """Folder progress and client history are on disk, not in memory."""
    path = tmp_path / "s.sqlite3"
    store = StateStore.open(path)
    store.set_folder_progress("a", "INBOX", FolderProgress(7, 42))
    store.add_client_event("a", "room_1@upwork.com", "<m1>", "scam", "report")
    store.close()
    again = StateStore.open(path)
    assert again.folder_progress("a", "INBOX") == FolderProgress(7, 42)
    assert [e.action for e in again.client_history("a", "room_1@upwork.com")] == ["report"]
    assert again.client_history("b", "room_1@upwork.com") == []


def test_failures_are_retried_then_parked(tmp_path: Path) -> None:
    """A failing message is retried up to the limit, then parked, never dropped."""
    store = StateStore.open(tmp_path / "s.sqlite3")
    for attempt in range(1, MAX_ATTEMPTS):
        assert store.record_failure("a", "INBOX", 1, 5, "boom") == attempt
        assert store.retry_uids("a", "INBOX", 1) == [5]
    store.record_failure("a", "INBOX", 1, 5, "boom")
    assert store.retry_uids("a", "INBOX", 1) == []


def test_client_event_is_counted_once_per_source(tmp_path: Path) -> None:
    """Replaying the same mail (a rescan) never counts twice in a client's history."""
    store = StateStore.open(tmp_path / "s.sqlite3")
    for _ in range(3):
        store.add_client_event("a", "c", "<same>", "offplatform_payment", "decline")
    assert len(store.client_history("a", "c")) == 1


def test_snapshot_leaves_the_file_untouched(tmp_path: Path) -> None:
    """A dry run's writes go to an in-memory copy."""
    path = tmp_path / "s.sqlite3"
    store = StateStore.open(path)
    store.set_folder_progress("a", "INBOX", FolderProgress(1, 1))
    copy = store.snapshot()
    copy.set_folder_progress("a", "INBOX", FolderProgress(1, 99))
    assert copy.folder_progress("a", "INBOX") == FolderProgress(1, 99)
    assert store.folder_progress("a", "INBOX") == FolderProgress(1, 1)
