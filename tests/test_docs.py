"""The docs stay true to the repository: the checkpoint table matches the checkpoints' own records, every relative link
in the README and docs/ points to a file that exists, and the README stays about one screen."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_checkpoint_table_is_generated_from_the_checkpoints_records():
    result = subprocess.run([sys.executable, str(ROOT / "docs" / "make_checkpoints_table.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_point_to_files_that_exist(page):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


def test_the_readme_fits_on_about_one_screen():
    assert len((ROOT / "README.md").read_text().encode()) < 6_000
