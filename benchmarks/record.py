"""Write one benchmark's results into its own section of docs/benchmarks.md, replacing the previous run's.

Each benchmark owns the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`; sections of other benchmarks
are left alone, so benchmarks can be rerun one at a time. The file has two parts: current results first, then, after
the `<!-- studies -->` marker, studies of designs the course measured and does not ship (`STUDIES`). A section not yet
in the file is added at the end of its part.
"""
from __future__ import annotations

import os
import platform
import re
import statistics
from pathlib import Path

import torch

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
STUDIES_MARKER = "<!-- studies -->"
#: benchmarks that measure designs the course does not ship: their sections go in the studies part
STUDIES = frozenset({"unet_vs_diffusers", "text_init", "text_position", "latent_init", "gpu_session"})
HEADER = ("# Benchmarks\n\nNumbers written by the scripts in `benchmarks/` (`python -m benchmarks.NAME`; "
          "`make benchmarks` runs them all).\n")


def machine() -> str:
    """One line describing where the numbers were measured."""
    if torch.cuda.is_available():
        where = torch.cuda.get_device_name(0)
    else:
        where = f"CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    return f"{where}; torch {torch.__version__}; Python {platform.python_version()}"


def median(values) -> float:
    return float(statistics.median(values))


def judge_line(name: str = "evaluator") -> str:
    """Which shipped judge measured a section: its name and weights' sha256 (sections without this line were judged by
    `evaluator_clean`, the judge the course used before its evaluator was trained through image defects)."""
    from diffusion_course.training.checkpoints import read_manifest

    return f"Judge: `{name}` (sha256 {read_manifest()[name]['sha256'][:12]}…)."


def record(name: str, title: str, command: str, body: str, path: Path = BENCHMARKS_MD, where: str | None = None,
           judged: bool = False) -> None:
    """Replace (or add) the section `name` of docs/benchmarks.md with `body` (markdown); `where` replaces this machine's
    description (for results measured elsewhere, then written here); `judged`: the section's numbers come from the shipped
    evaluator, and it says which (`judge_line`)."""
    judge = f"  \n{judge_line()}" if judged else ""
    section = (
        f"<!-- bench:{name} -->\n## {title}\n\n"
        f"Machine: {where or machine()}.  \nCommand: `{command}`{judge}\n\n{body.strip()}\n<!-- /bench:{name} -->"
    )
    text = path.read_text() if path.exists() else HEADER
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    elif name not in STUDIES and STUDIES_MARKER in text:  # a new current result: at the end of the first part
        head, tail = text.split(STUDIES_MARKER, 1)
        text = head.rstrip() + "\n\n" + section + "\n\n" + STUDIES_MARKER + tail
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(section)
