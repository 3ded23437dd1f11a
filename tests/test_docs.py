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


def test_the_teachers_guide_lists_each_lessons_exercises():
    from diffusion_course.notebook.exercises import EXERCISES

    guide = (ROOT / "docs" / "teaching.md").read_text()
    listed = {}
    for section in guide.split("**Class ")[1:]:
        lesson = re.match(r"\d+ · \[(\d\d) ", section).group(1)
        listed[lesson] = set(re.findall(r"`(\w+)`", re.search(r"\n- Exercises: ([^\n]*)", section).group(1)))
    registered = {}
    for ex in EXERCISES.values():
        registered.setdefault(ex.lesson, set()).add(ex.name)
    assert listed == registered
