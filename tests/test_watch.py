"""`build --watch`: a rebuild per change, the last good output kept on errors, Ctrl-C ends it;
the watcher's pieces (the polling loop, the in-memory cache, the write step's record of what
it wrote) each on their own."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from entra_sigma import write
from entra_sigma.verbs.incremental.cache import Cache, FileResult
from entra_sigma.verbs.incremental.watch import MemoryCache, fingerprint, watch
from entra_sigma.write import WriteStats, replace_folder

from .helpers import REPO, VENV_BIN

ENTRA_SIGMA = VENV_BIN / "entra-sigma"


# -- the polling loop -------------------------------------------------------------------------
def test_a_change_is_built_once_it_holds_still_and_nothing_else_is_built(tmp_path):
    rule = tmp_path / "rules" / "a.yml"
    rule.parent.mkdir()
    rule.write_text("v1\n")
    edits = iter([
        lambda: None,  # a look with nothing changed: no build
        lambda: rule.write_text("v2, half written"),
        lambda: rule.write_text("v2, written whole\n"),  # still moving at the settling look
        lambda: None,  # held still: built now, once
    ])
    builds: list[str] = []

    def sleep(_seconds):
        next(edits, lambda: None)()

    done = watch(lambda: [tmp_path / "rules"], lambda: builds.append(rule.read_text()), sleep=sleep, rounds=1)
    assert done == 1
    assert builds == ["v1\n", "v2, written whole\n"]


def test_new_and_removed_files_are_changes_and_the_output_folder_inside_is_not(tmp_path):
    rules = tmp_path / "rules"
    (rules / "sub").mkdir(parents=True)
    (rules / "a.yml").write_text("a\n")
    (rules / "build").mkdir()
    first = fingerprint([rules], ignore=[rules / "build"])
    (rules / "build" / "out.kql").write_text("written by the build\n")
    (rules / ".git").mkdir()
    (rules / ".git" / "index").write_text("git's\n")
    assert fingerprint([rules], ignore=[rules / "build"]) == first
    (rules / "sub" / "b.yml").write_text("b\n")
    added = fingerprint([rules], ignore=[rules / "build"])
    assert added != first
    (rules / "sub" / "b.yml").unlink()
    assert fingerprint([rules], ignore=[rules / "build"]) == first


# -- the in-memory cache ----------------------------------------------------------------------
def test_the_memory_cache_keeps_what_the_last_build_used_and_reads_through_to_disk(tmp_path):
    disk = Cache(tmp_path / "cache", "context")
    stored = FileResult("rules/old.yml", files={"kql/old.kql": "old\n"})
    disk.put(disk.key("rules/old.yml", b"old"), stored)
    memory = MemoryCache("context", disk)
    assert memory.key("rules/old.yml", b"old") == disk.key("rules/old.yml", b"old")
    assert memory.get(memory.key("rules/old.yml", b"old")) == stored  # from disk
    memory.put(memory.key("rules/new.yml", b"new"), FileResult("rules/new.yml"))
    assert disk.get(disk.key("rules/new.yml", b"new")) == FileResult("rules/new.yml")  # written through
    memory.settle()
    assert len(memory.entries) == 2
    memory.get(memory.key("rules/new.yml", b"new"))
    memory.settle()  # the next build used only the new file
    assert list(memory.entries) == [memory.key("rules/new.yml", b"new")]


# -- the write step's record of what it wrote -------------------------------------------------
def age(folder: Path, seconds: float = 60) -> None:
    """Make every file look written `seconds` ago (a record is trusted once its file is older
    than write.TRUST_AFTER_NS)."""
    then = time.time() - seconds
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


def test_a_recorded_file_is_carried_over_without_reading_it_and_a_hand_edit_is_still_seen(tmp_path, monkeypatch):
    out, known = tmp_path / "build", {}
    files = {"q.kql": "SigninLogs\n", "r.kql": "r\n", "sub/s.yaml": "s: 1\n"}
    replace_folder(out, files, known=known)
    assert known == {}  # just written: too fresh to trust
    age(out)
    replace_folder(out, files, known=known)  # read back once, then recorded
    assert sorted(known) == sorted(files)

    (out / "q.kql").write_bytes(b"SigninLogz\n")  # by hand: same size, other bytes
    read: list[str] = []
    same_file = write._same_file
    monkeypatch.setattr(write, "_same_file", lambda path, data: read.append(Path(path).name) or same_file(path, data))
    stats = WriteStats()
    replace_folder(out, {**files, "r.kql": "r2\n"}, stats, known=known)
    assert (out / "q.kql").read_bytes() == b"SigninLogs\n"
    assert (out / "r.kql").read_bytes() == b"r2\n"
    assert read == ["q.kql", "r.kql"]  # s.yaml carried over on its record alone; the others compared
    assert (stats.linked, stats.written) == (1, 2)


def test_a_replaced_file_of_the_same_size_and_time_is_not_trusted(tmp_path):
    out, known = tmp_path / "build", {}
    replace_folder(out, {"q.kql": "SigninLogs\n"}, known=known)
    age(out)
    replace_folder(out, {"q.kql": "SigninLogs\n"}, known=known)
    info = os.stat(out / "q.kql")
    (out / "q.kql").unlink()
    (out / "q.kql").write_bytes(b"SigninLogz\n")
    os.utime(out / "q.kql", ns=(info.st_atime_ns, info.st_mtime_ns))  # a new file (inode) with the old time
    replace_folder(out, {"q.kql": "SigninLogs\n"}, known=known)
    assert (out / "q.kql").read_bytes() == b"SigninLogs\n"


# -- the verb ---------------------------------------------------------------------------------
class Watcher:
    """`entra-sigma build --watch` in its own process, its stderr read line by line."""

    def __init__(self, cwd: Path, *arguments: str):
        self.process = subprocess.Popen(
            [str(ENTRA_SIGMA), "build", *arguments, "--watch", "--interval", "0.05"],
            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.process.stderr], daemon=True).start()

    def until(self, text: str, timeout: float = 60) -> list[str]:
        """The lines up to and including the next one holding `text`."""
        seen, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            seen.append(line)
            if text in line:
                return seen
        raise AssertionError(f"no line with {text!r} in {timeout} s; saw {seen}")

    def stop(self, sig: int) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=30)


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_watch_rebuilds_each_edit_keeps_the_last_good_output_on_errors_and_stops_cleanly(tmp_path, stop):
    rules = tmp_path / "rules"
    rules.mkdir()
    for name in ("protocols/device-code-flow.yml", "failures/aadsts-failures.yml"):
        shutil.copy(REPO / "rules" / name, rules / Path(name).name)
    rule = rules / "device-code-flow.yml"
    watcher = Watcher(tmp_path, "rules", "--out", "build", "--cache", ".cache")
    try:
        first = watcher.until("built ")
        assert "built 2 rule file(s) into " in first[-1] and "(2 compiled, " in first[-1]
        watcher.until("watching rules for changes")

        rule.write_text(rule.read_text(encoding="utf-8").replace("level: medium", "level: high"), encoding="utf-8")
        assert "(1 compiled, " in watcher.until("built ")[-1]
        watcher.until("watching")
        subprocess.run([str(ENTRA_SIGMA), "build", "rules", "--out", "plain"], cwd=tmp_path, check=True, capture_output=True)
        assert tree(tmp_path / "build") == tree(tmp_path / "plain")  # what the plain build writes, byte for byte
        assert b"severity: High" in (tmp_path / "build/sentinel/device-code-flow.yaml").read_bytes()

        good = tree(tmp_path / "build")
        rule.write_text(rule.read_text(encoding="utf-8").replace("level: high", "level: hihg"), encoding="utf-8")
        lines = watcher.until("nothing written to build")
        assert any("device-code-flow.yml" in line and "'level' must be one of" in line for line in lines)
        watcher.until("watching")
        assert tree(tmp_path / "build") == good  # the last good output stays

        rule.write_text(rule.read_text(encoding="utf-8").replace("level: hihg", "level: low"), encoding="utf-8")
        watcher.until("built ")
    finally:
        code = watcher.stop(stop)
    assert code == 0
    assert "stopped watching" in "".join(watcher.until("stopped watching"))
    assert b"severity: Low" in (tmp_path / "build/sentinel/device-code-flow.yaml").read_bytes()


@pytest.mark.slow
def test_the_watch_transcript_in_the_docs_shows_what_a_watching_build_prints(tmp_path):
    """docs/output.md shows a watching build of the bundled rules and one edit; run it so."""
    from .test_doc_commands import matches

    page = (REPO / "docs" / "output.md").read_text(encoding="utf-8")
    block = page[page.index("$ entra-sigma build rules --env prod --out build --watch"):]
    command, shown = block[: block.index("\n```")].split("\n", 1)
    shutil.copytree(REPO / "rules", tmp_path / "rules")
    shutil.copy(REPO / "entra-sigma.toml", tmp_path)  # the pack's placeholders take the values of its environment
    watcher = Watcher(tmp_path, *command.split()[3:-1])
    try:
        printed = watcher.until("watching rules")
        edited = tmp_path / "rules" / "protocols" / "device-code-flow.yml"
        edited.write_text(edited.read_text(encoding="utf-8").replace("level: medium", "level: high"), encoding="utf-8")
        printed += watcher.until("watching rules")
    finally:
        assert watcher.stop(signal.SIGINT) == 0
    printed += watcher.until("stopped watching")
    assert matches(shown, "".join(printed)), "".join(printed)


def test_an_edit_saved_while_a_build_runs_is_built_after_it(tmp_path):
    rule = tmp_path / "a.yml"
    rule.write_text("v1\n")
    builds: list[str] = []

    def rebuild():
        builds.append(rule.read_text())
        if len(builds) == 1:
            rule.write_text("v2, saved during the first build\n")

    looks = iter(range(10))

    def sleep(_seconds):
        if next(looks, None) is None:
            raise AssertionError(f"no second build after 10 looks; built {builds}")

    assert watch(lambda: [tmp_path], rebuild, sleep=sleep, rounds=1) == 1
    assert builds == ["v1\n", "v2, saved during the first build\n"]


def test_interval_without_watch_is_a_usage_error(tmp_path):
    from entra_sigma.cli import app
    from typer.testing import CliRunner

    (tmp_path / "rules").mkdir()
    result = CliRunner().invoke(app, ["build", str(tmp_path / "rules"), "--out", str(tmp_path / "out"), "--interval", "2"])
    assert result.exit_code == 2
    assert "--interval is how often --watch looks for changes" in result.output
    assert not (tmp_path / "out").exists()
