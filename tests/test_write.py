"""write.py: an output folder is replaced whole and atomically, with LF UTF-8 files; foreign folders are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from entra_sigma.write import MARKER, OutputError, replace_folder


def contents(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(parent: Path, out: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p != out)


def test_writes_every_file_and_the_marker(tmp_path):
    out = tmp_path / "build"
    written = replace_folder(out, {"b.kql": "b\n", "sub/a.kql": "a\n"})
    assert written == [out / "b.kql", out / "sub" / "a.kql"]
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
