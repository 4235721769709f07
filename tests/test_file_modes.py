"""Files and folders we write follow the umask, as `open()` and `mkdir` would (issue 20, item 7).

`mkstemp` and `mkdtemp` make 0600 files and 0700 folders whatever the umask: the build folder
staged with one, and `schema pull`'s files written through the other, were private under the
usual umask 022 that leaves other files readable.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from entra_sigma.verbs.deploy.schema_pull import write_files
from entra_sigma.verbs.scaffold import scaffold, write_scaffold
from entra_sigma.write import replace_folder

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_build_folder_and_its_files_follow_the_umask(umask, tmp_path: Path):
    out = tmp_path / "out"
    replace_folder(out, {"kql/a.kql": "a\n", "manifest.json": "{}\n"})
    assert mode(out) == 0o777 & ~umask
    assert mode(out / "kql") == 0o777 & ~umask
    assert mode(out / "manifest.json") == 0o666 & ~umask
    replace_folder(out, {"kql/a.kql": "a\n", "manifest.json": "{}\n", "b.kql": "b\n"})  # a rebuild: linked and new
    assert (mode(out), mode(out / "b.kql"), mode(out / "kql" / "a.kql")) == (0o777 & ~umask, 0o666 & ~umask, 0o666 & ~umask)


def test_schema_pull_files_follow_the_umask(umask, tmp_path: Path):
    (written,) = write_files(tmp_path / "schemas", {"SigninLogs.json": "[]\n"})
    assert mode(written) == 0o666 & ~umask
    assert mode(tmp_path / "schemas") == 0o777 & ~umask


def test_init_files_follow_the_umask(umask, tmp_path: Path):
    write_scaffold(tmp_path / "repo", scaffold().files)
    assert mode(tmp_path / "repo" / "README.md") == 0o666 & ~umask
    assert mode(tmp_path / "repo" / "rules") == 0o777 & ~umask
