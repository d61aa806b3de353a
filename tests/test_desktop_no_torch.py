"""The UI process never imports torch: a fresh interpreter builds the real main window with a tiny model
installed and runs the parts that touch model files and videos (token counting with the model's own
tokenizers, gallery thumbnails, reusing the settings in an mp4's metadata), then checks sys.modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from stepvideo.engine import video_io

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r"""
import sys, time
model, video = sys.argv[1], sys.argv[2]
from stepvideo_desktop.app import make_application
app = make_application([sys.argv[0]])
from stepvideo_desktop.controller import Controller
from stepvideo_desktop.views.gallery_model import thumbnail_path

def spin_until(check, seconds=30):
    end = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < end, "timed out"
        app.processEvents()
        time.sleep(0.01)

c = Controller(start_worker=False)
c.store.update(active_model=model)
c.window.show()
c.composer.prompt.setPlainText("a fox in the snow")  # the live counter runs on its own timer
spin_until(lambda: c.composer.llm_count.text().startswith("Step-LLM ") and "/ 320" in c.composer.llm_count.text())
assert c.composer.clip_count.text().startswith("CLIP ") and "/ 77" in c.composer.clip_count.text()
for page in c.page_keys:
    c.window.show_page(page)
    app.processEvents()
c.window.show_page("gallery")
spin_until(lambda: c.gallery_model.rowCount() == 1)
item = c.gallery_model.item(0)
spin_until(lambda: thumbnail_path(item.path, item.mtime).exists() and c.gallery_model.item(0).thumbnail is not None)
assert c.load_video_settings(video), c.window.banner.text.text()  # no sidecar: read from the mp4's tag
assert c.composer.prompt.toPlainText() == "a heron at dawn", c.composer.prompt.toPlainText()
c.hub.wait_idle(20000)          # hub listing and the online check ran
c.shutdown()
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print("TORCH:" + ",".join(loaded))
"""


def test_the_ui_never_imports_torch_even_with_a_model_and_videos(sandbox, tiny_model):
    video = sandbox / "videos" / "heron.mp4"
    request = {"prompt": "a heron at dawn", "height": 544, "width": 992, "frames": 17, "seed": 3}
    video_io.write_mp4(np.full((17, 32, 32, 3), 120, np.uint8), video, {"request": request})
    assert not video_io.sidecar_path(video).exists()
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_model), str(video)], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("TORCH:"))
    assert line == "TORCH:", f"the UI imported torch: {line[6:300]}…"
