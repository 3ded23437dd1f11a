"""Write one benchmark's results into its own section of BENCHMARKS.md, replacing the previous run's.

Each benchmark owns the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`; sections
of other benchmarks are left alone, so benchmarks can be rerun one at a time.
"""
from __future__ import annotations

import datetime
import os
import platform
import re
import statistics
from pathlib import Path

import torch

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def machine() -> str:
    """One line describing where the numbers were measured."""
    if torch.cuda.is_available():
        where = torch.cuda.get_device_name(0)
    else:
        where = f"CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    return f"{where}; torch {torch.__version__}; Python {platform.python_version()}"


def median(values) -> float:
    return float(statistics.median(values))


def record(name: str, title: str, command: str, body: str, path: Path = BENCHMARKS_MD, where: str | None = None,
           date: str | None = None) -> None:
    """Replace (or append) the section `name` of BENCHMARKS.md with `body` (markdown); `where` and `date` replace this
    machine and today (for results measured elsewhere, then written here)."""
    stamp = date or datetime.date.today().isoformat()
    section = (
        f"<!-- bench:{name} -->\n## {title}\n\n"
        f"Measured {stamp} on {where or machine()}.  \nCommand: `{command}`\n\n{body.strip()}\n<!-- /bench:{name} -->"
    )
    text = path.read_text() if path.exists() else "# Benchmarks\n\nNumbers written by the scripts in `benchmarks/`.\n"
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
    print(section)
