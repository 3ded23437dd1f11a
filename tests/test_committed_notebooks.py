"""The notebooks are committed as learners should first see them: executed top to bottom in full mode, under 3 MB
each, with no machine-specific clutter (execution timestamps, file paths of this machine)."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "notebooks" / "appendix").glob("*.ipynb"))


def _text(output: dict) -> str:
    text = output.get("text") or output.get("data", {}).get("text/plain", "")
    return "".join(text)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_notebook_is_committed_executed_in_full_mode(path):
    assert path.stat().st_size < 3_000_000, f"{path.name} is {path.stat().st_size / 1e6:.1f} MB; keep outputs under 3 MB"
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    counts = [c["execution_count"] for c in cells]
    assert counts == list(range(1, len(cells) + 1)), f"{path.name} was not executed top to bottom in one run"
    assert "fast mode: False" in "".join(_text(o) for o in cells[0]["outputs"]), f"{path.name} was run in fast mode"
    for cell in cells:
        assert "execution" not in cell["metadata"], f"{path.name} keeps execution timestamps"
        for output in cell["outputs"]:
            assert output["output_type"] != "error", f"{path.name} is committed with an error"
            assert not re.search(r"/(work|home|tmp)/\S+\.py", _text(output)), f"{path.name} shows a local file path"
