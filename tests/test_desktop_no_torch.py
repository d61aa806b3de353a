"""The UI process never imports torch: a fresh interpreter builds the real main window and checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r"""
import sys
from desktop.app import make_application
app = make_application([sys.argv[0]])
from desktop.controller import Controller
c = Controller(start_worker=False)
c.window.show()
c.composer.prompt.setPlainText("a fox")
c.composer._update_fit()       # the memory planner
c.composer._update_counts()    # the tokenizers
for page in c.page_keys:
    c.window.show_page(page)
    app.processEvents()
c.hub.wait_idle(20000)          # hub listing and the online check ran
c.shutdown()
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print("TORCH:" + ",".join(loaded))
"""


def test_building_the_main_window_does_not_import_torch(sandbox):
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("TORCH:"))
    assert line == "TORCH:", f"the UI imported {line[6:]}"
