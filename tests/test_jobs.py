"""The SQLite queue: operations, validation at enqueue, ordering, recovery, schema versions, durability."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from stepvideo.api import GenerationRequest
from stepvideo.errors import InvalidRequest, QueueDatabaseError
from stepvideo.jobs import schema as jobs_schema
from stepvideo.jobs.lock import WorkerAlreadyRunning, WorkerLock, worker_pid
from stepvideo.jobs.store import MAX_CRASHES, JobNotFound, JobQueue, JobStateError

ROOT = Path(__file__).resolve().parent.parent


def req(prompt: str = "a cat", **kw) -> GenerationRequest:
    fields = {"height": 32, "width": 32, "frames": 17, "steps": 4, **kw}
    return GenerationRequest(prompt=prompt, **fields)


@pytest.fixture
def queue(tmp_path):
    with JobQueue(tmp_path / "queue.sqlite3") as q:
        yield q


def snapshot(q: JobQueue) -> list[dict]:
    return [j.to_dict() for j in q.list()]


def test_default_path_is_the_data_dir_and_wal(sandbox):
    with JobQueue() as q:
        assert q.path == sandbox / "data" / "queue.sqlite3"
        assert q._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert q._conn.execute("PRAGMA user_version").fetchone()[0] == jobs_schema.schema_version()
        assert q.checkpoint_dir == sandbox / "data" / "checkpoints"


def test_add_stores_the_full_request_and_lists_in_order(queue):
    a = queue.add(req("first", seed=7, revision="abc123"))
    b = queue.add(req("second"))
    assert a.status == "queued" and a.request == req("first", seed=7, revision="abc123").to_dict()
    assert a.model == "stepfun-ai/stepvideo-t2v" and a.revision == "abc123"
    assert a.generation_request == req("first", seed=7, revision="abc123")
    assert [j.id for j in queue.list()] == [a.id, b.id]
    # persisted, not in memory: a second connection sees the same
    with JobQueue(queue.path) as other:
        assert snapshot(other) == snapshot(queue)


@pytest.mark.parametrize("bad, words", [
    (dict(prompt="  "), "prompt is empty"),
    (dict(height=33), "multiple of 16"),
    (dict(frames=20), "multiple of 17"),
    (dict(preset="fast"), "allowed: standard, turbo"),
    (dict(profile="huge"), "allowed: auto"),
])
def test_bad_request_is_rejected_with_one_line_and_queue_unchanged(queue, bad, words):
    queue.add(req())
    before = snapshot(queue)
    fields = {"prompt": "ok", "height": 32, "width": 32, "frames": 17, "steps": 4, **bad}
    with pytest.raises(InvalidRequest) as info:
        queue.add(GenerationRequest(**fields))
    assert words in str(info.value) and "\n" not in str(info.value)
    assert snapshot(queue) == before


def test_add_many_is_all_or_nothing(queue):
    with pytest.raises(InvalidRequest):
        queue.add_many([req("good"), req("bad", height=10)])
    assert queue.list() == []


def test_import_prompt_file_one_job_per_line_with_shared_settings(queue, tmp_path):
    eval_prompts = (ROOT / "stepvideo_desktop/resources/prompts/step-video-t2v-eval.txt").read_text(encoding="utf-8").splitlines()
    file = tmp_path / "prompts.txt"
    file.write_text("\n".join(eval_prompts[:3]) + "\n\n  \n", encoding="utf-8")
    jobs = queue.import_prompts(file, req("ignored", preset="turbo", seed=99))
    assert [j.prompt for j in jobs] == eval_prompts[:3]
    assert {j.request["preset"] for j in jobs} == {"turbo"} and {j.request["seed"] for j in jobs} == {99}
    assert len({j.batch for j in jobs}) == 1 and jobs[0].batch.startswith("prompts.txt@")


def test_import_rejects_bad_files_and_leaves_queue_unchanged(queue, tmp_path):
    queue.add(req())
    before = snapshot(queue)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    for file, words in ((tmp_path / "missing.txt", "does not exist"), (empty, "holds no prompts"),
                        (latin, "not UTF-8")):
        with pytest.raises(InvalidRequest, match=words):
            queue.import_prompts(file, req())
    with pytest.raises(InvalidRequest, match="--output"):
        queue.import_prompts(ROOT / "stepvideo_desktop/resources/prompts/step-video-t2v-eval.txt", req(output="/tmp/x.mp4"))
    with pytest.raises(InvalidRequest, match=r"prompts.txt:1: height 20"):
        (tmp_path / "prompts.txt").write_text("a\nb\n", encoding="utf-8")
        queue.import_prompts(tmp_path / "prompts.txt", req(height=20))
    assert snapshot(queue) == before


def test_move_and_reorder(queue):
    ids = [queue.add(req(f"p{i}")).id for i in range(5)]
    queue.move(ids[4], 0)
    assert [j.id for j in queue.list()] == [ids[4], *ids[:4]]
    queue.move(ids[4], 99)  # clamps to the end
    assert [j.id for j in queue.list()] == ids
    # a filtered view (jobs 1 and 3) swapped: they trade slots, others stay
    queue.reorder([ids[3], ids[1]])
    assert [j.id for j in queue.list()] == [ids[0], ids[3], ids[2], ids[1], ids[4]]
    with pytest.raises(JobNotFound):
        queue.move(12345, 0)
    with pytest.raises(InvalidRequest, match="more than once"):
        queue.reorder([ids[0], ids[0]])


def test_claim_takes_runnable_jobs_in_position_order(queue):
    a, b, c = (queue.add(req(p)) for p in "abc")
    queue.pause(a.id)
    queue.move(c.id, 0)
    first = queue.claim_next(pid=4242)
    assert first.id == c.id and first.status == "running" and first.worker_pid == 4242 and first.attempts == 1
    assert queue.claim_next().id == b.id
    assert queue.claim_next() is None  # a is paused
    queue.resume(a.id)
    assert queue.claim_next().id == a.id


def test_cancel_pause_resume_retry_duplicate_remove(queue):
    a = queue.add(req("a"))
    assert queue.cancel(a.id).status == "cancelled"
    with pytest.raises(JobStateError, match="only queued, running"):
        queue.cancel(a.id)
    retried = queue.retry(a.id)
    assert retried.status == "queued" and retried.error_kind is None
    # running jobs get a request the worker polls, not a status change
    running = queue.claim_next()
    assert queue.cancel(running.id).requested == "cancel" and queue.get(running.id).status == "running"
    assert queue.requested(running.id) == "cancel"
    queue.mark_running(running.id)
    assert queue.pause(running.id).requested == "pause"
    assert queue.resume(running.id).requested is None
    with pytest.raises(JobStateError, match="cancel it first"):
        queue.remove(running.id)
    queue.mark_done(running.id, {"video": "/v.mp4", "sidecar": "/v.json"}, {"seconds": 1.0})
    done = queue.get(running.id)
    assert done.status == "done" and done.outputs["video"] == "/v.mp4" and done.finished_at
    with pytest.raises(JobStateError, match="use duplicate"):
        queue.retry(done.id)
    copy = queue.duplicate(done.id, seed=5)
    assert copy.status == "queued" and copy.request == {**done.request, "seed": 5} and copy.id != done.id
    with pytest.raises(InvalidRequest):
        queue.duplicate(done.id, seed=-1)
    queue.remove(done.id)
    with pytest.raises(JobNotFound, match=f"no job {done.id}"):
        queue.get(done.id)
    assert queue.requested(done.id) == "cancel"  # a removed job must stop


def test_cancel_of_waiting_job_removes_its_checkpoint(queue):
    pytest.importorskip("torch")
    import torch

    job = queue.add(req())
    store = queue.checkpoints(job.id)
    store.save(2, torch.zeros(2, 2))
    queue.pause(job.id)
    assert store.exists()  # pause keeps it
    queue.cancel(job.id)
    assert not store.exists()


def test_progress_and_failure_records(queue):
    job = queue.claim_next() or queue.claim_next()
    assert job is None
    job = queue.add(req())
    queue.claim_next()
    queue.mark_progress(job.id, stage="denoise")
    queue.mark_progress(job.id, step=2, steps=4)
    queue.mark_checkpoint(job.id, 2)
    got = queue.get(job.id)
    assert (got.step, got.steps, got.stage, got.checkpoint_step) == (2, 4, "denoise", 2)
    queue.mark_failed(job.id, "out_of_memory", "the GPU ran out of memory\nTraceback...")
    got = queue.get(job.id)
    assert got.status == "failed" and got.error_kind == "out_of_memory"
    assert got.error_message == "the GPU ran out of memory"
    assert got.to_dict()["error"] == {"kind": "out_of_memory", "message": "the GPU ran out of memory"}


def test_recover_interrupted_and_crash_limit(queue):
    job = queue.add(req())
    for crash in range(1, MAX_CRASHES + 1):
        queue.claim_next(pid=999)
        assert queue.recover_interrupted("the worker died") == [job.id]
        got = queue.get(job.id)
        if crash < MAX_CRASHES:
            assert got.status == "interrupted" and got.error_message == "the worker died"
        else:
            assert got.status == "failed" and got.error_kind == "crashed" and "3 times" in got.error_message
    assert queue.retry(job.id).crashes == 0


def test_recover_only_the_dead_workers_jobs(queue):
    a, b = queue.add(req("a")), queue.add(req("b"))
    queue.claim_next(pid=111)
    queue.claim_next(pid=222)
    assert queue.recover_interrupted("gone", pid=111) == [a.id]
    assert queue.get(b.id).status == "running"


def test_ui_recovery_respects_a_live_worker_lock(queue):
    queue.add(req())
    queue.claim_next(pid=os.getpid())
    with WorkerLock(queue.path):
        assert worker_pid(queue.path) == os.getpid()
        assert queue.recover_if_no_worker() == []
        with pytest.raises(WorkerAlreadyRunning, match=f"pid {os.getpid()}"):
            WorkerLock(queue.path).acquire()
    assert worker_pid(queue.path) is None
    assert len(queue.recover_if_no_worker()) == 1


def test_list_filters_by_status(queue):
    a, _ = queue.add(req("a")), queue.add(req("b"))
    queue.cancel(a.id)
    assert [j.id for j in queue.list(["cancelled"])] == [a.id]
    assert queue.counts()["queued"] == 1
    with pytest.raises(InvalidRequest, match="allowed: queued"):
        queue.list(["bogus"])


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "q.sqlite3"
    JobQueue(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {jobs_schema.schema_version() + 1}")
    with pytest.raises(jobs_schema.QueueDatabaseError, match="newer than this app"):
        JobQueue(path)


def test_a_failing_migration_leaves_the_old_version_and_data(tmp_path):
    path = tmp_path / "q.sqlite3"
    with JobQueue(path) as q:
        q.add(req("keep me"))

    def broken(conn):
        conn.execute("ALTER TABLE jobs ADD COLUMN extra TEXT")
        raise RuntimeError("disk full")

    current = jobs_schema.schema_version()
    conn = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(RuntimeError):
        jobs_schema.migrate(conn, [*jobs_schema.MIGRATIONS, broken])
    assert conn.execute("PRAGMA user_version").fetchone()[0] == current
    assert "extra" not in [r[1] for r in conn.execute("PRAGMA table_info(jobs)")]
    conn.close()

    def added(conn):
        conn.execute("ALTER TABLE jobs ADD COLUMN extra TEXT")

    conn = sqlite3.connect(path, isolation_level=None)
    assert jobs_schema.migrate(conn, [*jobs_schema.MIGRATIONS, added]) == current + 1
    assert conn.execute("SELECT json_extract(request, '$.prompt') FROM jobs").fetchone()[0] == "keep me"
    conn.close()


def test_jobs_module_does_not_import_torch():
    code = "import sys, stepvideo.jobs.store, stepvideo.jobs.checkpoints, stepvideo.jobs.lock; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


WRITER = textwrap.dedent("""
    import sys
    from stepvideo.api import GenerationRequest
    from stepvideo.jobs.store import JobQueue
    q = JobQueue(sys.argv[1])
    r = GenerationRequest(prompt="p", height=32, width=32, frames=17, steps=3)
    while True:
        job = q.add(r)
        q.mark_progress(job.id, step=1, steps=3, stage="denoise")
        print(job.id, flush=True)
""")


def test_killing_a_writer_mid_write_loses_nothing(tmp_path):
    path = tmp_path / "q.sqlite3"
    JobQueue(path).close()
    committed: list[int] = []
    for delay in (0.3, 0.45, 0.6):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        first = proc.stdout.readline()  # it is writing now
        committed.append(int(first))
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        committed += [int(line) for line in proc.stdout.read().split()]
        proc.wait()
    with JobQueue(path) as q:
        assert q._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {j.id: j for j in q.list()}
    assert len(committed) > 3
    assert set(committed) <= set(stored)  # every job a writer saw committed is there
    assert all(json.dumps(stored[i].request) for i in committed)


# --- fixes: copies never share an output file; unusable databases are reported, never touched -----------

def test_duplicate_writes_its_own_video(queue, tmp_path):
    original = queue.add(req("a", output=str(tmp_path / "mine.mp4")))
    copy = queue.duplicate(original.id, seed=5)
    assert copy.request["output"] is None and copy.request["seed"] == 5
    assert queue.get(original.id).request["output"] == str(tmp_path / "mine.mp4")
    named = queue.duplicate(original.id, output=str(tmp_path / "other.mp4"))  # unless the change names one
    assert named.request["output"] == str(tmp_path / "other.mp4")


def test_retry_of_a_finished_job_starts_clean_and_spares_existing_files(queue, tmp_path):
    taken, free = tmp_path / "taken.mp4", tmp_path / "free.mp4"
    a, b = queue.add(req("a", output=str(taken))), queue.add(req("b", output=str(free)))
    for job in (a, b):
        queue.claim_next(pid=111)
        queue.mark_progress(job.id, step=2, steps=4, stage="denoise", seconds_per_step=1.5)
        queue.mark_failed(job.id, "internal", "boom")
    queue.preview_dir(a.id).mkdir(parents=True)
    (queue.preview_dir(a.id) / "preview-0002.png").write_bytes(b"old")
    taken.write_bytes(b"somebody's video")  # appeared at the job's output path meanwhile
    retried = queue.retry(a.id)
    assert retried.status == "queued" and retried.request["output"] is None
    assert (retried.step, retried.stage, retried.step_at, retried.outputs, retried.result) == (None, None, None, {}, None)
    assert not queue.preview_dir(a.id).exists() and taken.read_bytes() == b"somebody's video"
    assert queue.retry(b.id).request["output"] == str(free)  # nothing there: the user's path stays


def test_progress_records_when_the_last_step_ended(queue):
    job = queue.add(req())
    queue.claim_next()
    before = time.time()
    queue.mark_progress(job.id, step=1, steps=4, seconds_per_step=2.5)
    got = queue.get(job.id)
    assert got.seconds_per_step == 2.5 and before <= got.step_at <= time.time()
    assert got.to_dict()["progress"]["seconds_per_step"] == 2.5


def test_a_pending_cancel_is_not_turned_into_a_pause(queue):
    job = queue.add(req())
    queue.claim_next()
    queue.cancel(job.id)
    assert queue.pause(job.id).requested == "cancel"


def test_v1_database_is_migrated_keeping_its_jobs(tmp_path):
    path = tmp_path / "q.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    jobs_schema.migrate(conn, jobs_schema.MIGRATIONS[:1])  # what the first release wrote
    conn.execute("INSERT INTO jobs (request, model, status, position, created_at, updated_at)"
                 " VALUES (?, 'm', 'queued', 1, 0, 0)", (json.dumps(req("old").to_dict()),))
    conn.close()
    with JobQueue(path) as q:
        [job] = q.list()
        assert job.prompt == "old" and job.step_at is None and job.seconds_per_step is None
        assert q._conn.execute("PRAGMA user_version").fetchone()[0] == jobs_schema.schema_version()


def test_garbage_database_is_reported_in_one_line_and_left_untouched(tmp_path):
    path = tmp_path / "queue.sqlite3"
    path.write_bytes(b"not a database at all " * 200)
    before = path.read_bytes()
    with pytest.raises(QueueDatabaseError) as info:
        JobQueue(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "file is not a database" in message
    assert "queue.sqlite3-wal" in message and "move" in message
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["queue.sqlite3"]


def test_corrupt_pages_found_later_are_reported_too(tmp_path):
    path = tmp_path / "queue.sqlite3"
    with JobQueue(path) as q:
        q.add_many([req(f"job {i}") for i in range(200)])
        page_size = q._conn.execute("PRAGMA page_size").fetchone()[0]
    with open(path, "r+b") as f:  # the header and schema (page 1) survive; the jobs table's pages do not
        f.seek(page_size)
        f.write(b"\xff" * page_size * 3)
    before = path.read_bytes()
    with JobQueue(path) as q, pytest.raises(QueueDatabaseError, match="malformed.*StepVideo leaves it untouched"):
        q.list()
    assert path.read_bytes() == before
