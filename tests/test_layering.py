"""The house rules, checked on the source (no imports run), and shown to bite on a planted violation.

- the engine (`stepvideo`) never imports Qt or the app (`stepvideo_desktop`);
- `stepvideo.models` and `stepvideo.memory` never import the queue, the model manager or the CLI;
- the model manager (`stepvideo.hub`) never imports torch, and importing it never pulls torch in;
- importing any module of the app never pulls torch in (lazy imports inside functions are the app's
  business at run time, which test_desktop_no_torch.py checks in a running process);
- no import circles anywhere in our code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from import_graph import ImportGraph, build, top, within

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("stepvideo", "stepvideo_desktop")
QT = ("PySide6", "shiboken6")
LOWER_LAYERS = ("stepvideo.models", "stepvideo.memory")
UPPER_LAYERS = ("stepvideo.jobs", "stepvideo.hub", "stepvideo.cli")


def violations(graph: ImportGraph) -> list[str]:
    found = []
    for module, targets in sorted(graph.edges.items()):
        for target in sorted(targets):
            if within(module, "stepvideo") and (top(target) in QT or top(target) == "stepvideo_desktop"):
                found.append(f"{module} imports {target}: the engine never imports Qt or the app")
            if any(within(module, low) for low in LOWER_LAYERS) and any(within(target, up) for up in UPPER_LAYERS):
                found.append(f"{module} imports {target}: models/memory sit below jobs, hub and cli")
    for module in sorted(graph.edges):
        if within(module, "stepvideo.hub") and "torch" in {top(t) for t in graph.edges[module]}:
            found.append(f"{module} imports torch, even if lazily: the model manager never needs it")
        if within(module, "stepvideo.hub") or within(module, "stepvideo_desktop"):
            if "torch" in {top(t) for t in graph.reachable(module)}:
                found.append(f"{module} reaches torch: {_path_to(graph, module, 'torch')}")
    found += [f"import circle: {' ↔ '.join(group)}" for group in graph.cycles()]
    return found


def _path_to(graph: ImportGraph, start: str, goal: str) -> str:
    """One chain of imports from start to the goal's package, for a message a person can act on."""
    paths = {start: [start]}
    todo = [start]
    while todo:
        module = todo.pop(0)
        for target in sorted(graph.load_edges.get(module, ())):
            if top(target) == goal:
                return " → ".join([*paths[module], target])
            if target not in paths and graph.ours(target):
                paths[target] = [*paths[module], target]
                todo.append(target)
    return "?"


def test_our_code_keeps_the_house_rules():
    graph = build(ROOT, PACKAGES)
    assert len(graph.edges) > 100  # the walk really found the code
    assert violations(graph) == []


def _plant(root: Path, files: dict[str, str]) -> ImportGraph:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return build(root, PACKAGES)


@pytest.mark.parametrize(("files", "expected"), [
    ({"stepvideo/memory/planner.py": "from stepvideo.jobs import store\n", "stepvideo/jobs/store.py": ""},
     "models/memory sit below"),
    ({"stepvideo/engine/x.py": "from PySide6.QtCore import QObject\n"}, "never imports Qt"),
    ({"stepvideo/hub/cache.py": "from stepvideo.engine import weights\n",
      "stepvideo/engine/weights.py": "import torch\n"}, "stepvideo.hub.cache reaches torch"),
    ({"stepvideo/hub/cache.py": "def f():\n    import torch\n"}, "imports torch, even if lazily"),
    ({"stepvideo_desktop/app.py": "from stepvideo.engine import weights\n",
      "stepvideo/engine/weights.py": "import safetensors.torch\nimport torch\n"}, "stepvideo_desktop.app reaches torch"),
    ({"stepvideo/jobs/store.py": "from stepvideo.jobs import states\n",
      "stepvideo/jobs/states.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .store import Job\n"},
     "import circle: stepvideo.jobs.states ↔ stepvideo.jobs.store"),
])
def test_the_rules_bite_on_a_planted_violation(tmp_path, files, expected):
    found = violations(_plant(tmp_path, {"stepvideo/__init__.py": "", "stepvideo_desktop/__init__.py": "", **files}))
    assert any(expected in line for line in found), found
