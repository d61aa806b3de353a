"""Batch work from the command line: variations, CSV/JSON Lines batches, export → import, editing jobs,
and --gpu. The runs use the tiny random model at 32×32×17 with 2 steps."""

from __future__ import annotations

import hashlib
import json
import os
import sys

import imageio_ffmpeg
import pytest
from fake_nvml import GIB, TWO_GPUS, fake_nvml

from stepvideo.api import GenerationRequest
from stepvideo.cli import main
from stepvideo.jobs.store import JobQueue

TINY = ["--size", "32x32", "--frames", "17", "--steps", "2"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def frames_hash(video: str) -> str:
    reader = imageio_ffmpeg.read_frames(video)
    next(reader)  # metadata
    return hashlib.sha256(b"".join(reader)).hexdigest()


def jobs(db=None) -> list:
    with JobQueue(db) as q:
        return q.list()


def test_variations_have_distinct_seeds_and_make_distinct_videos(sandbox, capsys, tiny_model):
    code, out, _ = run(capsys, "queue", "add", "-p", "waves at dusk", "--model", str(tiny_model), *TINY,
                       "--seed", "40", "--variations", "3", "--seed-step", "5")
    assert code == 0 and out.startswith("queued 3 variations (1–3, seeds 40…50, step 5) as group g-")
    queued = jobs()
    assert [j.request["seed"] for j in queued] == [40, 45, 50]
    assert len({j.group_id for j in queued}) == 1 and queued[0].group_id is not None
    assert {j.request["prompt"] for j in queued} == {"waves at dusk"}

    code, out, _ = run(capsys, "queue", "run")
    assert code == 0 and "ran 3 job(s)" in out
    done = jobs()
    assert [j.status for j in done] == ["done"] * 3
    assert [j.result["seed"] for j in done] == [40, 45, 50]
    assert len({frames_hash(j.outputs["video"]) for j in done}) == 3  # three different videos


def test_variations_refuse_bad_counts_and_seed_overflow(sandbox, capsys):
    for argv, words in ((("--variations", "0"), "variations 0 is not allowed"),
                        (("--variations", "two"), "--variations 'two' is not allowed"),
                        (("--variations", "2", "--seed-step", "0"), "seed step 0 is not allowed"),
                        (("--variations", "3", "--seed", str(2**63 - 2)), "the last variation's seed"),
                        (("--variations", "2", "-o", "/tmp/a.mp4"), "cannot share one --output")):
        code, out, err = run(capsys, "queue", "add", "-p", "x", *TINY, *argv)
        assert code == 2 and out == "" and words in err and err.count("\n") == 1, (argv, err)
    assert jobs() == []


def test_csv_and_jsonl_batches_queue_exactly_their_rows(sandbox, capsys):
    csv_file = sandbox / "batch.csv"
    csv_file.write_text(
        "Prompt,Seed,Steps,CFG,Size,Preset,Negative,group\n"
        '"a cat, asleep",3,4,6.5,32x32,standard,blurry,A\n'
        "a dog,,5,,square,turbo,,A\n"
        "\n"
        "一只鸡,9,,,64x96,,,\n", encoding="utf-8-sig")  # a spreadsheet's BOM and mixed-case headers
    code, out, _ = run(capsys, "queue", "import", str(csv_file), "--frames", "17", "--shift", "3")
    assert code == 0 and out.startswith("queued 3 jobs (1–3)")
    got = [GenerationRequest.from_dict(j.request) for j in jobs()]
    base = GenerationRequest(prompt="", frames=17, shift=3.0)
    assert got == [
        base.replace(prompt="a cat, asleep", seed=3, steps=4, cfg=6.5, height=32, width=32, negative_prompt="blurry"),
        base.replace(prompt="a dog", steps=5, height=768, width=768, preset="turbo"),
        base.replace(prompt="一只鸡", seed=9, height=64, width=96),
    ]
    groups = [j.group_id for j in jobs()]
    assert groups[0] == groups[1] and groups[0] is not None and groups[2] is None

    jsonl = sandbox / "batch.jsonl"
    jsonl.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"prompt": "a fox", "frames": 34, "seed": 1, "suffix": "", "profile": "low-vram"},
        {"prompt": "a hen", "cfg": 7, "quantization": "qint4", "model": "/models/x", "negative": ""},
    ]) + "\n\n", encoding="utf-8")
    code, out, _ = run(capsys, "queue", "import", str(jsonl), "--size", "32x32")
    assert code == 0 and out.startswith("queued 2 jobs (4–5)")
    got = [GenerationRequest.from_dict(j.request) for j in jobs()[3:]]
    base = GenerationRequest(prompt="", height=32, width=32)
    assert got == [base.replace(prompt="a fox", frames=34, seed=1, positive_suffix="", profile="low-vram"),
                   base.replace(prompt="a hen", cfg=7.0, quantization="qint4", model="/models/x", negative_prompt="")]


@pytest.mark.parametrize("name, text, words", [
    ("one-bad.csv", "prompt,steps\na,4\nb,ten\nc,5\n", "one-bad.csv row 3: steps 'ten' is not allowed"),
    ("unknown.csv", "prompt,stepz\na,4\n", "unknown.csv row 1: unknown column 'stepz'; allowed: prompt,"),
    ("ragged.csv", "prompt,steps\na,4,9\n", "ragged.csv row 2: 3 cells but the header names 2 columns"),
    ("many.csv", "prompt,frames\na,16\n,17\nc,17\nd,0\n",
     "many.csv row 2: frames 16 is not allowed; it must be a positive multiple of 17 (17, 34, …, 204) "
     "(also bad: rows 3, 5); nothing was queued"),
    ("one-bad.jsonl", '{"prompt": "a"}\n{"prompt": "b", "seed": -1}\n', "one-bad.jsonl line 2: seed -1 is not allowed"),
    ("float.jsonl", '{"prompt": "a", "steps": 4.0}\n', "float.jsonl line 1: steps 4.0 is not allowed"),
    ("key.jsonl", '{"prompt": "a"}\n{"prompt": "b", "sead": 3}\n', "key.jsonl line 2: unknown key 'sead'"),
    ("array.jsonl", '["a"]\n', "array.jsonl line 1: a list, not a JSON object"),
    ("broken.jsonl", '{"prompt": "a"\n', "broken.jsonl line 1: not valid JSON"),
    ("outputs.jsonl", '{"prompt": "a", "output": "/v/a.mp4"}\n{"prompt": "b", "output": "/v/a.mp4"}\n',
     "outputs.jsonl line 2: output '/v/a.mp4' is already line 1's"),
])
def test_a_batch_with_a_bad_row_queues_nothing_and_names_the_row(sandbox, capsys, name, text, words):
    run(capsys, "queue", "add", "-p", "already there", *TINY)
    before = jobs()
    file = sandbox / name
    file.write_text(text, encoding="utf-8")
    code, out, err = run(capsys, "queue", "import", str(file), *TINY)
    assert code == 2 and out == "" and words in err and err.count("\n") == 1, err
    assert jobs() == before


def test_export_then_import_round_trips_field_for_field(sandbox, capsys, tmp_path):
    requests = [
        GenerationRequest(prompt="a fox", height=32, width=32, frames=17, steps=3, cfg=6.5, seed=1,
                          negative_prompt="", positive_suffix="", profile="low-ram", quantization="qint4",
                          revision="abc123", transformer_model="/models/turbo", output=str(tmp_path / "fox.mp4")),
        GenerationRequest(prompt="一只橘猫, \"quoted\"\nsecond line", preset="turbo", shift=17.5, seed=2**63 - 4,
                          model=str(tmp_path / "local model")),
        GenerationRequest(prompt="waves", frames=34, seed=7, negative_prompt="blurry, dark"),
    ]
    with JobQueue() as q:
        q.add(requests[0])
        from stepvideo.jobs.variations import add_variations

        add_variations(q, requests[1], 2, 3)
        q.add(requests[2])
        q.pause(1)
        q.cancel(4)  # finished: left out of a "waiting" export
    exported = tmp_path / "queue.jsonl"
    code, out, _ = run(capsys, "queue", "export", str(exported))
    assert code == 0 and out.strip() == f"exported 3 job(s) to {exported}"
    code, _, err = run(capsys, "queue", "export", str(exported))
    assert code == 2 and "already exists" in err  # never overwritten unasked

    other = tmp_path / "other.sqlite3"
    code, out, _ = run(capsys, "queue", "--queue", str(other), "import", str(exported))
    assert code == 0 and out.startswith("queued 3 jobs")
    source, copy = jobs()[:3], jobs(other)
    assert [j.request for j in copy] == [j.request for j in source]  # every field, exactly
    assert copy[0].group_id is None and copy[1].group_id == copy[2].group_id != source[1].group_id

    again = tmp_path / "again.jsonl"
    run(capsys, "queue", "--queue", str(other), "export", "--status", "all", str(again))
    first = [json.loads(line) for line in exported.read_text().splitlines()]
    second = [json.loads(line) for line in again.read_text().splitlines()]
    assert [{k: v for k, v in r.items() if k != "group"} for r in first] == \
           [{k: v for k, v in r.items() if k != "group"} for r in second]
    code, out, _ = run(capsys, "queue", "export", "--status", "all", "--force", str(exported))
    assert code == 0 and "exported 4 job(s)" in out


def test_editing_a_waiting_job_changes_what_runs(sandbox, capsys, tiny_model):
    run(capsys, "queue", "add", "-p", "a red ball", "--model", str(tiny_model), *TINY, "--seed", "1")
    code, out, _ = run(capsys, "queue", "edit", "1", "--prompt", "a blue cube", "--seed", "99", "--steps", "3",
                       "--negative", "noise", "--no-suffix")
    assert code == 0 and out.strip() == "job 1: updated negative_prompt, positive_suffix, prompt, seed, steps"
    code, out, _ = run(capsys, "queue", "run", "--once")
    assert code == 0 and "job 1: done" in out
    job = jobs()[0]
    from stepvideo.engine import video_io

    meta = video_io.read_metadata(job.outputs["video"])
    assert meta["request"]["prompt"] == "a blue cube" and meta["seed"] == 99 and meta["resolved"]["steps"] == 3
    assert meta["request"]["negative_prompt"] == "noise" and meta["request"]["positive_suffix"] == ""


def test_editing_is_refused_for_running_and_done_jobs_and_bad_values(sandbox, capsys):
    for prompt in ("one", "two"):
        run(capsys, "queue", "add", "-p", prompt, *TINY)
    with JobQueue() as q:
        q.claim_next(pid=os.getpid())
    before = jobs()
    for argv, words in ((("1", "--seed", "3"), "job 1 is running; only waiting, paused, interrupted or failed"),
                        (("2", "--size", "33x32"), "height 33 is not allowed"),
                        (("2", "--frames", "ten"), "--frames 'ten' is not allowed"),
                        (("2",), "nothing to change"),
                        (("9", "--seed", "1"), "no job 9 in the queue")):
        code, out, err = run(capsys, "queue", "edit", *argv)
        assert code == 2 and out == "" and words in err and err.count("\n") == 1, (argv, err)
    assert jobs() == before


def test_editing_a_job_with_a_checkpoint_needs_consent_and_discards_it(sandbox, capsys):
    run(capsys, "queue", "add", "-p", "one", *TINY)
    with JobQueue() as q:
        q.mark_checkpoint(1, 1)
        q.pause(1)
        store = q.checkpoints(1)
        store.directory.mkdir(parents=True, exist_ok=True)
        store.path.write_bytes(b"latents")  # stands in for a real checkpoint: only its existence matters here
    code, out, err = run(capsys, "queue", "edit", "1", "--steps", "default")
    assert code == 2 and "has a checkpoint at step 1" in err and "--discard-checkpoint" in err
    assert store.path.exists() and jobs()[0].request["steps"] == 2
    code, out, _ = run(capsys, "queue", "edit", "1", "--steps", "default", "--discard-checkpoint")
    assert code == 0 and not store.path.exists()
    job = jobs()[0]
    assert job.request["steps"] is None and job.checkpoint_step is None and job.status == "paused"


@pytest.mark.parametrize("verb", [("generate", "-p", "x", *TINY), ("queue", "run"), ("plan",)])
def test_a_missing_gpu_is_one_line(sandbox, capsys, monkeypatch, verb):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # like this CPU machine: no NVML at all
    code, out, err = run(capsys, *verb, "--gpu", "7")
    assert code == 2 and out == "" and err == "stepvideo: error: GPU 7 is not present; GPUs present: none\n"
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(TWO_GPUS))
    code, out, err = run(capsys, *verb, "--gpu", "7")
    assert code == 2 and err.strip().endswith(
        "GPU 7 is not present; GPUs present: 0 (NVIDIA RTX 4090), 1 (NVIDIA RTX A6000)")


def test_plan_reads_the_chosen_gpu(sandbox, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(TWO_GPUS))
    for name in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER"):
        monkeypatch.delenv(name, raising=False)  # restored after the test; --gpu sets them in this process
    sizes = {}
    for gpu in ("0", "1"):
        code, out, _ = run(capsys, "plan", "--gpu", gpu, "--ram", "64GiB", "--json")
        sizes[gpu] = json.loads(out)["gpu_bytes"]
    assert sizes == {"0": 22 * GIB, "1": 47 * GIB}
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1" and os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"


def test_a_queue_written_before_groups_opens_and_keeps_its_jobs(tmp_path):
    import sqlite3

    from stepvideo.jobs import schema

    db = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(db, isolation_level=None)
    assert schema.migrate(conn, schema.MIGRATIONS[:2]) == 2  # the schema before group ids
    conn.execute("INSERT INTO jobs (request, model, status, position, created_at, updated_at) VALUES (?, ?, 'queued', 1, 0, 0)",
                 (json.dumps(GenerationRequest(prompt="old job").to_dict()), "m"))
    conn.close()
    with JobQueue(db) as q:
        (job,) = q.list()
        assert job.prompt == "old job" and job.group_id is None
        assert q._conn.execute("PRAGMA user_version").fetchone()[0] == schema.schema_version() == 3


def test_a_csv_row_with_an_image_is_an_image_to_video_job(sandbox, capsys):
    from ti2v_support import gradient_image

    folder = sandbox / "set"
    folder.mkdir()
    gradient_image(folder / "wide.png", 256, 144)
    gradient_image(folder / "tall.png", 48, 64)
    (folder / "batch.csv").write_text("prompt,image,motion,size,frames\n"
                                      "a boat,wide.png,10,,\n"
                                      "a tower,tall.png,,32x32,17\n"
                                      "text only,,,32x32,17\n", encoding="utf-8")
    code, out, err = run(capsys, "queue", "import", str(folder / "batch.csv"), "--steps", "2")
    assert code == 0, err
    boat, tower, text = jobs()
    assert boat.request["model"] == "stepfun-ai/stepvideo-ti2v" and boat.request["motion"] == 10.0
    assert (boat.request["height"], boat.request["width"], boat.request["frames"]) == (544, 992, 102)
    assert (tower.request["height"], tower.request["width"], tower.request["frames"]) == (32, 32, 17)
    assert tower.request["image"].endswith("/tall.png") and tower.request["image"] != str(folder / "tall.png")
    assert text.request["image"] is None and text.request["model"] == "stepfun-ai/stepvideo-t2v"
    (folder / "bad.csv").write_text("prompt,image\na,missing.png\n", encoding="utf-8")
    code, _, err = run(capsys, "queue", "import", str(folder / "bad.csv"))
    assert code == 2 and "bad.csv row 2:" in err and "does not exist" in err and len(jobs()) == 3
