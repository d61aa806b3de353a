"""Text checked once at the request boundary (api.validate) for `generate`, `queue add` and `queue import`
alike, `--prompt-file`, and text made safe to show (display_text.for_display)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stepvideo.api import GenerationRequest, validate
from stepvideo.display_text import for_display
from stepvideo.errors import InvalidRequest
from stepvideo.jobs.store import JobQueue
from stepvideo.request_text import MAX_PROMPT_CHARS

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--size", "32x32", "--frames", "17", "--steps", "1"]
SURROGATE = os.fsdecode(b"caf\xe9 au lait")  # what Python makes of non-UTF-8 argv bytes: 'caf\udce9 au lait'
RLO = "\u202e"


def stepvideo(*argv: str | bytes, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m stepvideo` with argv passed as given (bytes reach the program undecoded, as from a shell)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LC_ALL": "C.UTF-8"}
    return subprocess.run([sys.executable, "-m", "stepvideo", *argv], capture_output=True, timeout=120, env=env,
                          cwd=cwd or ROOT)


def one_line_error(proc: subprocess.CompletedProcess, code: int, *words: str) -> str:
    err = proc.stderr.decode("utf-8", "backslashreplace")
    assert proc.returncode == code, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def jobs_in(sandbox: Path) -> list:
    with JobQueue(sandbox / "data" / "queue.sqlite3") as queue:
        return queue.list()


# --- api.validate: the one place ----------------------------------------------------------------------


@pytest.mark.parametrize("field, value, words", [
    ("prompt", SURROGATE, "the prompt is not valid UTF-8 text (an undecodable byte at character 4)"),
    ("prompt", "a cat\x00 on a sofa", "the prompt contains a NUL byte (character 6)"),
    ("prompt", "x" * (MAX_PROMPT_CHARS + 1), f"at most {MAX_PROMPT_CHARS:,} are allowed"),
    ("negative_prompt", "blurry\x00", "the negative prompt contains a NUL byte"),
    ("positive_suffix", SURROGATE, "the prompt suffix is not valid UTF-8"),
    ("output", "/tmp/" + SURROGATE + ".mp4", "the output path is not valid UTF-8"),
    ("output", "/tmp/a\x00.mp4", "the output path contains a NUL byte"),
    ("model", "/models/" + SURROGATE, "the model is not valid UTF-8"),
])
def test_validate_refuses_text_that_cannot_reach_the_model_or_the_file(field, value, words):
    request = GenerationRequest(prompt="a cat").replace(**{field: value})
    with pytest.raises(InvalidRequest) as info:
        validate(request)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_validate_keeps_long_and_bidi_text_unchanged():
    text = RLO + "مرحبا" + "\u2066a cat\u2069 " + "猫" * (MAX_PROMPT_CHARS - 20)
    request = GenerationRequest(prompt=text[:MAX_PROMPT_CHARS])
    assert validate(request) is request and request.prompt == text[:MAX_PROMPT_CHARS]


# --- for_display ----------------------------------------------------------------------------------------


def test_for_display_neutralises_bidi_escapes_and_surrogates_only():
    assert for_display("abc" + RLO + "def\u202c \u2067x\u2069\u200f") == "abc[U+202E]def[U+202C] [U+2067]x[U+2069][U+200F]"
    assert for_display("red\x1b[31m fox\x07") == "red\ufffd[31m fox\ufffd"
    assert for_display(SURROGATE) == "caf\ufffd au lait"
    assert for_display("line one\r\nline two\ttab") == "line one\nline two\ttab"
    assert for_display("line one\r\nline two\ttab", one_line=True) == "line one line two tab"
    assert for_display("一只橘猫 مرحبا 🦊") == "一只橘猫 مرحبا 🦊"  # RTL script itself is text, not a control


# --- the CLI: one line, exit 2, nothing queued or written -----------------------------------------------


def test_generate_with_undecodable_argv_bytes_is_one_line(sandbox, tiny_model):
    proc = stepvideo("generate", "--model", str(tiny_model), "--prompt", b"caf\xe9 au lait", *SMALL)
    one_line_error(proc, 2, "the prompt is not valid UTF-8 text")
    assert list((sandbox / "videos").iterdir()) == []


def test_generate_with_an_overlong_prompt_names_the_cap(sandbox, tiny_model):
    proc = stepvideo("generate", "--model", str(tiny_model), "--prompt", "a" * 10_000, *SMALL)
    one_line_error(proc, 2, "the prompt is 10,000 characters long; at most 4,000 are allowed")
    assert list((sandbox / "videos").iterdir()) == []


@pytest.mark.parametrize("argv, words", [
    (["--prompt", b"caf\xe9"], "the prompt is not valid UTF-8 text"),
    (["--prompt", "a cat", "--negative", b"\xff\xfe"], "the negative prompt is not valid UTF-8 text"),
    (["--prompt", "a cat", "--output", b"/tmp/\xe9.mp4"], "the output path is not valid UTF-8 text"),
    (["--prompt", "a cat", "--model", b"/m/\xe9"], "the model is not valid UTF-8 text"),
])
def test_queue_add_refuses_bad_text_and_queues_nothing(sandbox, argv, words):
    one_line_error(stepvideo("queue", "add", *argv), 2, words)
    assert jobs_in(sandbox) == []


def test_queue_import_checks_every_line_and_the_shared_options(sandbox):
    nul = sandbox / "nul.txt"
    nul.write_text("a fox\nred\x00 panda\n", encoding="utf-8")
    one_line_error(stepvideo("queue", "import", str(nul)), 2, "nul.txt:2: the prompt contains a NUL byte")
    long = sandbox / "long.txt"
    long.write_text("a fox\n" + "b" * (MAX_PROMPT_CHARS + 1) + "\n", encoding="utf-8")
    one_line_error(stepvideo("queue", "import", str(long)), 2, "long.txt:2: the prompt is 4,001 characters long")
    good = sandbox / "good.txt"
    good.write_text("a fox\n", encoding="utf-8")
    one_line_error(stepvideo("queue", "import", str(good), "--negative", b"\xe9"), 2, "negative prompt is not valid UTF-8")
    assert jobs_in(sandbox) == []


@pytest.mark.parametrize("content, words", [
    (None, "does not exist"),
    ("folder", "is a folder"),
    (b"caf\xe9\n", "is not UTF-8 text (byte 3)"),
    (b"  \n\n", "is empty"),
    (b"x" * (MAX_PROMPT_CHARS * 4 + 1), "is too long; a prompt is at most 4,000 characters"),
    (b"a cat\x00\n", "the prompt contains a NUL byte"),
])
def test_a_bad_prompt_file_is_one_line_and_queues_nothing(sandbox, content, words):
    path = sandbox / "prompt.txt"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    one_line_error(stepvideo("queue", "add", "--prompt-file", str(path)), 2, words)
    assert jobs_in(sandbox) == []


def test_prompt_files_carry_long_prompts_exactly(sandbox):
    prompt = "一只橘猫在阳光下的草地上奔跑，" * 100 + "\n" + RLO + "the end"
    (sandbox / "p.txt").write_text("\ufeff" + prompt + "\n\n", encoding="utf-8")
    (sandbox / "n.txt").write_text("blurry, low quality\n", encoding="utf-8")
    proc = stepvideo("queue", "add", "--prompt-file", str(sandbox / "p.txt"), "--negative-file", str(sandbox / "n.txt"))
    assert proc.returncode == 0, proc.stderr
    [job] = jobs_in(sandbox)
    assert job.request["prompt"] == prompt  # BOM and the final newlines gone; the text itself, bidi and all, kept
    assert job.request["negative_prompt"] == "blurry, low quality"
    both = stepvideo("queue", "add", "--prompt", "x", "--prompt-file", str(sandbox / "p.txt"))
    one_line_error(both, 2, "not allowed with argument")


def test_queue_list_shows_bidi_prompts_neutralised_but_stores_them_whole(sandbox):
    assert stepvideo("queue", "add", "--prompt", f"a cat {RLO}gnikeem\x1b[2J").returncode == 0
    listed = stepvideo("queue", "list")
    assert listed.returncode == 0
    out = listed.stdout.decode()
    assert RLO not in out and "\x1b" not in out and "a cat [U+202E]gnikeem\ufffd[2J" in out
    assert jobs_in(sandbox)[0].request["prompt"] == f"a cat {RLO}gnikeem\x1b[2J"
