"""The UI side of the worker protocol: pure functions, no Qt, no worker."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from stepvideo.api import event
from stepvideo_desktop import protocol


def test_worker_argv_is_the_serve_command_with_the_queue_and_intervals():
    argv = protocol.worker_argv(protocol.WorkerOptions(Path("/q/queue.sqlite3"), 7, 3, python="/py"))
    assert argv == ["/py", "-m", "stepvideo.jobs.worker_entry", "--serve", "--queue", "/q/queue.sqlite3",
                    "--checkpoint-every-steps", "7", "--preview-every-steps", "3"]


def test_worker_argv_is_accepted_by_the_workers_own_parser():
    import argparse

    from stepvideo.jobs.worker_entry import add_worker_arguments

    parser = argparse.ArgumentParser()
    add_worker_arguments(parser)
    args = parser.parse_args(protocol.worker_argv(protocol.WorkerOptions(Path("/q.db"), 4, 0))[3:])
    assert (args.mode, args.queue, args.checkpoint_every_steps, args.preview_every_steps) == ("serve", "/q.db", 4, 0)


def test_commands_are_json_lines_the_worker_understands():
    line = protocol.encode_command("cancel", 12)
    assert line.endswith(b"\n") and json.loads(line) == {"v": 1, "cmd": "cancel", "job_id": 12}
    assert json.loads(protocol.encode_command("shutdown")) == {"v": 1, "cmd": "shutdown"}
    with pytest.raises(ValueError, match="allowed: cancel"):
        protocol.encode_command("explode")


def test_decode_accepts_engine_events_and_passes_stray_text():
    ev = event("step", i=3, n=50, seconds_per_step=1.5, eta_seconds=70.5, job_id=4)
    assert protocol.decode_line(json.dumps(ev).encode()) == ev
    assert protocol.decode_line("Loading weights...") is None
    assert protocol.decode_line("{not json") is None
    with pytest.raises(protocol.ProtocolError, match="version 9"):
        protocol.decode_line('{"v": 9, "type": "step"}')
    with pytest.raises(protocol.ProtocolError, match="without a type"):
        protocol.decode_line('{"v": 1}')
    assert protocol.decode_line('{"v": 1, "type": "teleport"}') == {"v": 1, "type": "teleport"}  # newer worker


def test_line_buffer_keeps_partial_lines_until_complete():
    buf = protocol.LineBuffer()
    assert buf.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert buf.feed(b':2}\n\n') == [b'{"b":2}', b""]
    assert buf.feed(b"tail") == []


@pytest.mark.parametrize(("code", "crashed", "tail", "words"), [
    (signal.SIGKILL, True, "", "killed"),
    (signal.SIGSEGV, True, "", "segmentation fault"),
    (1, False, "torch.OutOfMemoryError: CUDA out of memory", "out of memory"),
    (protocol.ALREADY_RUNNING_EXIT, False, "", "already running this queue"),
    (2, False, "line one\nstepvideo worker: error: bad flag\n", "exit code 2: stepvideo worker: error: bad flag"),
])
def test_exit_descriptions_say_what_happened(code, crashed, tail, words):
    assert words in protocol.describe_exit(code, crashed, tail)
