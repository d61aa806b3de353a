"""Screenshots of every page for docs/screenshots, from a throwaway home with real content.

    python packaging/make_screenshots.py [--size 1280x800] [--size 1024x640] [--page composer-image] [--out docs/screenshots]

It makes the tiny random model, registers it as a folder on disk, renders three short videos with the
real worker (`stepvideo queue run`, seconds on a CPU), leaves a failed, an interrupted and a waiting
job in the queue, then runs `stepvideo-desktop --screenshot` once per page and size. Nothing touches
the user's own folders: every StepVideo folder and HOME point into the work folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("composer", "queue", "gallery", "models", "settings")
DONE_PROMPTS = ("A red fox trots through fresh snow at dawn.", "一只橘色的猫在窗台上晒太阳，尾巴轻轻摆动。",
                "Close-up of coffee being poured into a glass cup, slow motion.")
FAILED_PROMPT = "夕阳下，海浪拍打着金色的沙滩，远处有一艘帆船。"
# Without a font for Chinese (fc-list :lang=zh finds none) Chinese text renders as boxes: English stand-ins.
ENGLISH_FOR = {DONE_PROMPTS[1]: "An orange cat suns itself on a windowsill, its tail swaying gently.",
               FAILED_PROMPT: "Waves wash over a golden beach at sunset, a sailboat far out at sea."}


def has_cjk_font() -> bool:
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return bool(out.strip())


def shown(prompt: str) -> str:
    return prompt if has_cjk_font() else ENGLISH_FOR.get(prompt, prompt)


def run(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def prepare(work: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOME=str(work / "home"), HF_HOME=str(work / "hf"),
               STEPVIDEO_MODELS_DIR=str(work / "hf" / "hub"), OMP_NUM_THREADS="2")
    for name in ("config", "data", "log", "videos"):
        env[f"STEPVIDEO_{name.upper()}_DIR"] = str(work / name)
        (work / name).mkdir(parents=True, exist_ok=True)
    model = work / "models" / "stepvideo-t2v-tiny"
    if not model.exists():
        run(env, "-m", "stepvideo", "make-tiny-model", str(model))
    settings = {"local_models": [str(model)], "active_model": str(model), "theme": "light"}
    (work / "config" / "settings.json").write_text(json.dumps(settings))
    if not list((work / "videos").glob("*.mp4")):
        for prompt in DONE_PROMPTS:
            run(env, "-m", "stepvideo", "queue", "add", "--prompt", shown(prompt), "--model", str(model),
                "--size", "144x256", "--frames", "17", "--steps", "4")
        run(env, "-m", "stepvideo", "queue", "run")
        add_unfinished_jobs(env, model)
    return env


def add_unfinished_jobs(env: dict[str, str], model: Path) -> None:
    """A failed job, one interrupted at step 20 of 50, and one waiting: the states the Queue page shows."""
    code = f"""
from stepvideo.api import GenerationRequest
from stepvideo.jobs.store import JobQueue
q = JobQueue()
failed = q.add(GenerationRequest(prompt={shown(FAILED_PROMPT)!r}, seed=3))
q.claim_next(pid=None); q.mark_failed(failed.id, "error", "out of memory: try the low-VRAM profile")
resumed = q.add(GenerationRequest(prompt="An astronaut rides a horse across a desert at sunset.", preset="turbo", seed=8))
q.claim_next(pid=None); q.mark_checkpoint(resumed.id, 20); q.mark_progress(resumed.id, step=20, steps=50)
q.mark_interrupted(resumed.id, "the app was closed")
q.add(GenerationRequest(prompt="A vintage tram rattles down a steep cobbled street.", model={str(model)!r},
                        height=144, width=256, frames=17, steps=4, seed=5))
"""
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)


def source_image(work: Path) -> Path:
    """A portrait picture for Create's image-to-video screenshot (ffmpeg's Mandelbrot source)."""
    import imageio_ffmpeg

    path = work / "portrait-source.png"
    if not path.exists():
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                        "mandelbrot=size=960x1280:start_scale=2", "-frames:v", "1", str(path)], check=True)
    return path


def image_shot(env: dict[str, str], work: Path, target: Path, size: str) -> None:
    """Create with a portrait source image: the first video's settings, then the image (its crop outlined)."""
    videos = sorted((work / "videos").glob("*.mp4"))
    run(env, "-m", "stepvideo_desktop", "--screenshot", str(target), "--page", "composer", "--size", size,
        "--theme", "light", *[str(v) for v in videos[:1]], str(source_image(work)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", action="append", help="WxH (repeatable; default 1280x800 and 1024x640)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--work", type=Path, help="keep the throwaway home here (default: a temporary folder)")
    parser.add_argument("--page", action="append", choices=(*PAGES, "composer-image"),
                        help="only these (repeatable; default: every page, and Create with an image)")
    args = parser.parse_args()
    sizes = args.size or ["1280x800", "1024x640"]
    work = args.work or Path(tempfile.mkdtemp(prefix="stepvideo-shots-"))
    env = prepare(work)
    args.out.mkdir(parents=True, exist_ok=True)
    for size in sizes:
        suffix = "" if size == "1280x800" else f"-{size}"
        for page in args.page or (*PAGES, "composer-image"):
            target = args.out / f"{page}{suffix}.png"
            if page == "composer-image":
                image_shot(env, work, target, size)
            else:
                run(env, "-m", "stepvideo_desktop", "--screenshot", str(target), "--page", page, "--size", size,
                    "--theme", "light")
            print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
