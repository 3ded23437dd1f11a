"""The package's architecture, checked from its imports: each layer imports only from the layers below it, no module
imports itself in a circle, and the old import paths still work with a deprecation warning."""
import ast
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import diffusion_course as dc

PACKAGE = Path(dc.__file__).parent
#: layer → its height; a module may import from strictly lower layers and from its own layer
LAYERS = {"runtime": 0, "core": 1, "data": 1, "networks": 2, "evaluation": 3, "training": 4, "notebook": 5,
          "recipes": 5, "train": 6, "rejudge": 6}
#: same-height layers that must not import each other
INDEPENDENT = [("core", "data"), ("notebook", "recipes")]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    """The package modules `name` imports, anywhere in its code (function bodies included)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1] if node.level > 1 else package
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.startswith("diffusion_course"):
                target = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:  # `from . import shape_render` imports a module
                found.add(".".join(target + [alias.name]) if ".".join(target + [alias.name]) in _modules()
                          else ".".join(target))
    return found - {""}


def _layer(module: str) -> str | None:
    return module.split(".")[0] if module.split(".")[0] in LAYERS else None


GRAPH = {name: _imports(name, path) for name, path in _modules().items()}


def test_every_module_belongs_to_a_layer():
    assert {m for m in GRAPH if _layer(m) is None} == {"", "_moved"}  # the package's __init__ and its old paths


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _layer(m)))
def test_imports_point_down(module):
    mine = _layer(module)
    for target in GRAPH[module] - {"_moved"}:  # old names forward through _moved, which imports lazily
        theirs = _layer(target)
        assert theirs is not None, f"{module} imports {target}, which belongs to no layer"
        assert LAYERS[theirs] <= LAYERS[mine], f"{module} ({mine}) imports {target} ({theirs}), a higher layer"
        assert (mine, theirs) not in INDEPENDENT and (theirs, mine) not in INDEPENDENT or mine == theirs, \
            f"{module} imports {target}: {mine} and {theirs} are independent layers"


def test_no_module_imports_itself_in_a_circle():
    seen, on_path = set(), []

    def visit(m):
        if m in on_path:
            pytest.fail("import cycle: " + " → ".join(on_path[on_path.index(m):] + [m]))
        if m in seen or m not in GRAPH:
            return
        on_path.append(m)
        for t in sorted(GRAPH[m]):
            visit(t)
        on_path.pop()
        seen.add(m)

    for m in sorted(GRAPH):
        visit(m)


def test_the_package_exports_what_a_learner_uses_and_little_more():
    assert len(dc.__all__) < 60 and len(set(dc.__all__)) == len(dc.__all__)
    assert all(hasattr(dc, name) for name in dc.__all__)


def test_old_import_paths_still_work_and_say_where_things_moved():
    from diffusion_course.evaluation.distances import real_data_floor
    from diffusion_course.networks.vae_decoder import widen_decoder
    from diffusion_course.recipes.configs import UNCOND_UNET
    from diffusion_course.recipes.studies import PATCHED_UNET
    with pytest.warns(DeprecationWarning, match="diffusion_course.evaluation.distances.real_data_floor"):
        assert dc.floor is real_data_floor
    with pytest.warns(DeprecationWarning, match="networks.vae_decoder.widen_decoder"):
        assert dc.widen_decoder is widen_decoder
    with pytest.warns(DeprecationWarning):
        from diffusion_course.recipes import PIXEL_UNET, UNCOND_UNET as old_uncond
    assert PIXEL_UNET is PATCHED_UNET and old_uncond is UNCOND_UNET
    with pytest.warns(DeprecationWarning, match="core.schedules"):
        from diffusion_course.schedules import NoiseSchedule
    assert NoiseSchedule is dc.NoiseSchedule
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        dc.no_such_name  # noqa: B018


def test_names_a_learner_imports_from_the_package_raise_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in dc.__all__:
            getattr(dc, name)


def test_the_training_command_answers_help():
    out = subprocess.run([sys.executable, "-m", "diffusion_course.train", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "python -m diffusion_course.train" in out and "vae_decoder_wide" in out
