"""retain.testing from outside the package, as a third-party backend uses it: a storage defined
here runs the storage suite, and the tests that need an ability it declares it lacks (atomic
put-if-absent; being opened by `make_storage` from its URL) are skipped with the ability named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from retain.storage import LocalStorage, Storage
from retain.testing import require
from retain.testing.storage import StorageConformance


class PlainFileStorage(LocalStorage):
    """A backend of its own (local files underneath) that does not promise atomic
    put-if-absent."""

    supports_exclusive_create = False


class TestThirdPartyStorageConformance(StorageConformance):
    reopens_by_url = False  # make_storage knows only retain's own backends

    @pytest.fixture
    def storage(self, tmp_path: Path) -> Storage:
        return PlainFileStorage(tmp_path / "third-party")


def test_a_lacking_ability_skips_naming_it(tmp_path: Path) -> None:
    storage = PlainFileStorage(tmp_path / "third-party")
    with pytest.raises(pytest.skip.Exception, match="PlainFileStorage declares supports_exclusive_create = False"):
        require(storage, "supports_exclusive_create")
    require(storage, "supports_runs")  # declared: nothing happens


def test_importing_retain_does_not_import_the_suites() -> None:
    code = "import sys, retain; print(sorted(m for m in sys.modules if m.startswith(('retain.testing', 'pytest'))))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_without_pytest_the_import_says_what_to_install() -> None:
    code = "import sys; sys.modules['pytest'] = None; import retain.testing"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "ImportError: retain.testing is for test suites and needs pytest: pip install pytest" in done.stderr
