"""`stepvideo queue …` and the shared request options (cli/_request_args.py)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from stepvideo.cli import main
from stepvideo.cli._request_args import add_request_arguments, parse_size, request_from_args
from stepvideo.errors import InvalidRequest
from stepvideo.jobs.store import JobQueue

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--size", "32x32", "--frames", "17", "--steps", "3"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["queue", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def parse(*argv: str, **kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_request_arguments(parser, **kw)
    return parser.parse_args(list(argv))


def test_request_options_build_a_validated_request():
    r = request_from_args(parse("-p", "a fox", "--preset", "turbo", "--size", "768x768", "--frames", "34",
                                "--seed", "42", "--cfg", "6.5", "--shift", "15", "--steps", "12",
                                "--negative", "blurry", "--revision", "main", "--profile", "low-vram",
                                "--quantization", "qint8", "-o", "/tmp/x.mp4"))
    assert (r.prompt, r.preset, r.height, r.width, r.frames, r.seed) == ("a fox", "turbo", 768, 768, 34, 42)
    assert (r.cfg, r.shift, r.steps, r.negative_prompt, r.revision) == (6.5, 15.0, 12, "blurry", "main")
    assert (r.profile, r.quantization, r.output) == ("low-vram", "qint8", "/tmp/x.mp4")
    assert parse_size("portrait") == (992, 544) and parse_size(" 544 x 992 ") == (544, 992)
    random_seed = request_from_args(parse("-p", "x", "--seed", "random")).seed
    assert 0 <= random_seed < 2**63


@pytest.mark.parametrize("argv, words", [
    (("--size", "544by992"), "--size '544by992' is not allowed; write HEIGHTxWIDTH"),
    (("--size", "540x992"), "height 540 is not allowed"),
    (("--steps", "ten"), "--steps 'ten' is not allowed"),
    (("--cfg", "nan"), "--cfg 'nan' is not allowed"),
    (("--seed", "-1"), "seed -1 is not allowed"),
    (("--frames", "16"), "frames 16 is not allowed"),
    (("--profile", "max"), "unknown memory profile 'max'"),
])
def test_malformed_options_raise_one_line(argv, words):
    with pytest.raises(InvalidRequest) as info:
        request_from_args(parse("-p", "x", *argv))
    assert words in str(info.value) and "\n" not in str(info.value)


def test_add_list_show_and_actions(sandbox, capsys):
    code, out, _ = run(capsys, "add", "-p", "a fox", *TINY)
    assert code == 0 and out.strip() == "queued job 1"
    run(capsys, "add", "-p", "a hen", *TINY, "--seed", "9")
    code, out, _ = run(capsys, "list", "--json")
    listed = json.loads(out)
    assert [(j["id"], j["status"], j["request"]["prompt"], j["outputs"]) for j in listed] == [
        (1, "queued", "a fox", {}), (2, "queued", "a hen", {})]
    assert listed[1]["request"]["seed"] == 9
    assert json.loads(run(capsys, "show", "2")[1])["request"]["seed"] == 9

    assert run(capsys, "pause", "1")[1].strip() == "job 1: paused"
    assert run(capsys, "resume", "1")[1].strip() == "job 1: queued"
    assert run(capsys, "cancel", "1", "2")[1].split("\n")[:2] == ["job 1: cancelled", "job 2: cancelled"]
    assert run(capsys, "retry", "2")[1].strip() == "job 2: queued"
    assert run(capsys, "move", "2", "0")[1].strip() == "job 2 is now at place 0"
    assert "queued job 3 (a copy of job 2)" in run(capsys, "duplicate", "2", "--seed", "5")[1]
    assert run(capsys, "remove", "1")[1].strip() == "removed job 1"
    code, out, _ = run(capsys, "list")
    lines = out.strip().splitlines()
    assert [int(line.split()[0]) for line in lines] == [2, 3] and "queued" in lines[0]


def test_errors_are_one_line_and_leave_the_queue_unchanged(sandbox, capsys):
    run(capsys, "add", "-p", "a fox", *TINY)
    before = run(capsys, "list", "--json")[1]
    for argv, words in ((("add", "-p", "x", "--size", "33x32"), "height 33 is not allowed"),
                        (("add", "-p", "  "), "the prompt is empty"),
                        (("show", "99"), "no job 99 in the queue"),
                        (("retry", "1"), "job 1 is queued; only failed"),
                        (("import", "/nonexistent.txt"), "does not exist")):
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == "" and words in err and err.count("\n") == 1, (argv, err)
    assert run(capsys, "list", "--json")[1] == before


def test_import_the_eval_prompts(sandbox, capsys):
    file = ROOT / "stepvideo_desktop/resources/prompts/step-video-t2v-eval.txt"
    code, out, _ = run(capsys, "import", str(file), "--preset", "turbo", *TINY)
    assert code == 0 and out.startswith("queued 128 jobs (1–128)")
    with JobQueue() as q:
        jobs = q.list()
    assert len(jobs) == 128 and {j.request["preset"] for j in jobs} == {"turbo"}
    assert jobs[0].prompt == file.read_text(encoding="utf-8").splitlines()[0]


def test_run_once_then_drain_with_the_fake_engine(sandbox, capsys, monkeypatch):
    monkeypatch.setenv("STEPVIDEO_WORKER_ENGINE", "worker_engine_fake")
    for prompt in ("one", "two", "three"):
        run(capsys, "add", "-p", prompt, *TINY)
    code, out, _ = run(capsys, "run", "--once")
    assert code == 0 and "job 1: done" in out and "ran 1 job(s); 2 waiting" in out
    monkeypatch.setattr("sys.stdin", io.StringIO('{"cmd": "wake"}\nnot json\n'))
    code, out, _ = run(capsys, "run", "--json-events")
    events = [json.loads(line) for line in out.splitlines()]
    assert events[0]["type"] == "ready"
    assert any(e["type"] == "log" and "unreadable command" in e["message"] for e in events)
    assert [e["job_id"] for e in events if e["type"] == "job_done"] == [2, 3]
    assert [j["status"] for j in json.loads(run(capsys, "list", "--json")[1])] == ["done"] * 3


def test_corrupt_queue_database_is_one_line_and_kept(sandbox, capsys, tmp_path):
    db = tmp_path / "queue.sqlite3"
    db.write_bytes(b"\x00garbage" * 512)
    for argv in (("list",), ("add", "-p", "a fox", *TINY), ("run", "--once")):
        code, out, err = run(capsys, "--queue", str(db), *argv)
        assert code == 1 and out == "" and err.count("\n") == 1, (argv, err)
        assert f"the queue database {db} cannot be used" in err and "move" in err
    assert db.read_bytes() == b"\x00garbage" * 512


def test_cancel_wait_and_grace_options(sandbox, capsys):
    run(capsys, "add", "-p", "a fox", *TINY)
    code, out, _ = run(capsys, "cancel", "1", "--wait")
    assert code == 0 and out.strip() == "job 1: cancelled"  # not running: no waiting needed
    code, out, err = run(capsys, "pause", "1", "--grace", "-3")
    assert code == 2 and "--grace -3.0 is not allowed" in err
