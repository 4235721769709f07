"""write.py: an output folder is replaced whole and atomically, with LF UTF-8 files; foreign folders are refused."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from entra_sigma import write
from entra_sigma.write import MARKER, OutputError, WriteStats, replace_folder


def contents(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(parent: Path, out: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p != out)


def test_writes_every_file_and_the_marker(tmp_path):
    out = tmp_path / "build"
    replace_folder(out, {"b.kql": "b\n", "sub/a.kql": "a\n"})
    assert contents(out) == {
        MARKER: b"This folder is replaced whole by every entra-sigma run.\n",
        "b.kql": b"b\n",
        "sub/a.kql": b"a\n",
    }
    assert leftovers(tmp_path, out) == []  # no staging folder left behind


def test_files_are_utf8_without_bom_and_keep_lf(tmp_path):
    out = tmp_path / "build"
    replace_folder(out, {"q.kql": "// zürich €\nSigninLogs\n"})
    assert (out / "q.kql").read_bytes() == "// zürich €\nSigninLogs\n".encode("utf-8")


def test_a_second_run_replaces_the_folder_and_drops_stale_files(tmp_path):
    out = tmp_path / "build"
    replace_folder(out, {"old.kql": "old\n", "keep.kql": "v1\n", "gone/x.kql": "x\n"})
    replace_folder(out, {"keep.kql": "v2\n", "new.kql": "new\n"})
    assert {k: v for k, v in contents(out).items() if k != MARKER} == {"keep.kql": b"v2\n", "new.kql": b"new\n"}
    assert not (out / "gone").exists()
    assert leftovers(tmp_path, out) == []


def test_an_empty_folder_may_be_used(tmp_path):
    out = tmp_path / "build"
    out.mkdir()
    replace_folder(out, {"q.kql": "q\n"})
    assert set(contents(out)) == {MARKER, "q.kql"}


def test_a_missing_parent_is_created(tmp_path):
    out = tmp_path / "deep" / "er" / "build"
    replace_folder(out, {"q.kql": "q\n"})
    assert (out / "q.kql").read_text(encoding="utf-8") == "q\n"


def test_a_foreign_folder_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "src"
    out.mkdir()
    (out / "main.py").write_text("print('mine')\n", encoding="utf-8")
    with pytest.raises(OutputError, match=r"src exists and was not written by entra-sigma; refusing to replace it"):
        replace_folder(out, {"q.kql": "q\n"})
    assert contents(out) == {"main.py": b"print('mine')\n"}
    assert leftovers(tmp_path, out) == []


def test_a_file_in_the_way_is_refused(tmp_path):
    out = tmp_path / "build"
    out.write_text("not a folder\n", encoding="utf-8")
    with pytest.raises(OutputError):
        replace_folder(out, {"q.kql": "q\n"})
    assert out.read_text(encoding="utf-8") == "not a folder\n"


def test_a_failed_run_keeps_the_previous_output_whole(tmp_path):
    out = tmp_path / "build"
    replace_folder(out, {"q.kql": "v1\n"})
    before = contents(out)
    with pytest.raises(OutputError, match="cannot write"):
        replace_folder(out, {"a": "file\n", "a/b.kql": "a file cannot also be a folder\n"})
    assert contents(out) == before
    assert leftovers(tmp_path, out) == []


# -- unchanged files are carried over as hard links ---------------------------------------------------
def inode(path: Path) -> int:
    return os.stat(path).st_ino


def test_unchanged_files_are_hard_links_to_the_previous_ones_and_changed_ones_are_new(tmp_path):
    out = tmp_path / "build"
    replace_folder(out, {"same.kql": "same\n", "sub/same.yaml": "s: 1\n", "changed.kql": "v1\n"})
    before = {name: inode(out / name) for name in ("same.kql", "sub/same.yaml", "changed.kql")}
    stats = WriteStats()
    replace_folder(out, {"same.kql": "same\n", "sub/same.yaml": "s: 1\n", "changed.kql": "v2\n", "new.kql": "n\n"}, stats)
    assert {k: v for k, v in contents(out).items() if k != MARKER} == {
        "same.kql": b"same\n", "sub/same.yaml": b"s: 1\n", "changed.kql": b"v2\n", "new.kql": b"n\n",
    }
    assert inode(out / "same.kql") == before["same.kql"]
    assert inode(out / "sub/same.yaml") == before["sub/same.yaml"]
    assert inode(out / "changed.kql") != before["changed.kql"]
    assert (stats.linked, stats.written) == (2, 2)
    assert os.stat(out / "same.kql").st_nlink == 1  # the previous folder is gone, its names with it
    assert leftovers(tmp_path, out) == []


def test_a_file_edited_by_hand_in_the_output_is_written_again_not_carried_over(tmp_path):
    out = tmp_path / "build"
    replace_folder(out, {"q.kql": "SigninLogs\n", "r.kql": "r\n"})
    (out / "q.kql").write_bytes(b"SigninLogz\n")  # same size, other bytes
    (out / "r.kql").write_bytes(b"r\nmore\n")
    stats = WriteStats()
    replace_folder(out, {"q.kql": "SigninLogs\n", "r.kql": "r\n"}, stats)
    assert (out / "q.kql").read_bytes() == b"SigninLogs\n"
    assert (out / "r.kql").read_bytes() == b"r\n"
    assert (stats.linked, stats.written) == (0, 2)


def test_a_symbolic_link_in_the_previous_output_is_neither_followed_nor_carried_over(tmp_path):
    out = tmp_path / "build"
    elsewhere = tmp_path / "elsewhere.kql"
    elsewhere.write_bytes(b"q\n")
    replace_folder(out, {"q.kql": "old\n"})
    (out / "q.kql").unlink()
    (out / "q.kql").symlink_to(elsewhere)
    replace_folder(out, {"q.kql": "q\n"})
    assert not (out / "q.kql").is_symlink()
    assert (out / "q.kql").read_bytes() == b"q\n"
    assert inode(out / "q.kql") != inode(elsewhere)
    assert elsewhere.read_bytes() == b"q\n"


@pytest.mark.parametrize("code", [errno.EPERM, errno.EXDEV, errno.EOPNOTSUPP])
def test_without_hard_links_every_file_is_written_instead(tmp_path, monkeypatch, code):
    """FAT and some network shares refuse link(): the files are copied (written) and the output is the same."""
    out = tmp_path / "build"
    files = {f"kql/{i}.kql": f"{i}\n" for i in range(4)}
    replace_folder(out, files)
    before = {name: inode(out / name) for name in files}
    calls = []

    def no_links(source, target, **kwargs):
        calls.append(target)
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(write.os, "link", no_links)
    stats = WriteStats()
    replace_folder(out, files, stats)
    assert {k: v for k, v in contents(out).items() if k != MARKER} == {k: v.encode() for k, v in files.items()}
    assert all(inode(out / name) != before[name] for name in files)
    assert (stats.linked, stats.written) == (0, 4)
    assert len(calls) == 1  # tried once, then every file is written
    assert leftovers(tmp_path, out) == []


def test_a_failure_after_files_were_linked_leaves_the_previous_output_as_it_was(tmp_path, monkeypatch):
    out = tmp_path / "build"
    replace_folder(out, {"a.kql": "a\n", "b.kql": "b\n", "c.kql": "c\n"})
    before = contents(out)
    real_open = open

    def failing_open(path, mode="r", *args, **kwargs):
        if "w" in mode and Path(path).name == "d.kql":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(write, "open", failing_open, raising=False)
    with pytest.raises(OutputError, match="No space left on device"):
        replace_folder(out, {"a.kql": "a\n", "b.kql": "b\n", "c.kql": "c\n", "d.kql": "d\n"})
    assert contents(out) == before
    assert all(os.stat(out / name).st_nlink == 1 for name in ("a.kql", "b.kql", "c.kql"))  # the staged links are gone
    assert leftovers(tmp_path, out) == []
