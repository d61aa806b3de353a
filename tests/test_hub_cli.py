"""`stepvideo models …`: output, exit codes, and one-line errors that harm nothing already downloaded."""

from __future__ import annotations

import errno
import json

import pytest

from stepvideo import hub
from stepvideo.cli import main
from stepvideo.engine import layout
from stepvideo.hub import downloader as hub_download
from stepvideo.hub import transfer as hub_transfer
from tests.fixtures import local_hub as hub_fixtures

stepvideo_hub = hub_fixtures.stepvideo_hub  # a pytest fixture, bound by name so pytest finds it

BASE = hub.BASE_REPO


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(err: str) -> str:
    """The error is one line, the last one (progress lines may come before it), with no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("stepvideo: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert "Traceback" not in err
    return errors[0]


@pytest.fixture
def installed(stepvideo_hub, tmp_path):
    """main downloaded into tmp_path/cache; returns the cache dir."""
    cache = tmp_path / "cache"
    hub.download(BASE, cache_dir=cache)
    return cache


def assert_intact(cache) -> None:
    assert hub.verify(BASE, cache_dir=cache).ok


def test_download_dry_run_then_download_list_path_verify_delete(stepvideo_hub, tmp_path, capsys):
    cache = str(tmp_path / "c")
    rc, out, _ = run(capsys, "models", "download", "base", "--revision", "v1.0", "--dry-run", "--cache-dir", cache)
    assert rc == 0 and "to download" in out and "fits on disk" in out
    assert not (tmp_path / "c" / "models--stepfun-ai--stepvideo-t2v" / "blobs").exists()

    rc, out, err = run(capsys, "models", "download", "base", "--revision", "v1.0", "--cache-dir", cache)
    assert rc == 0 and out.strip().endswith(stepvideo_hub.v1)
    assert "/" in err and "ETA" in err  # progress on stderr: bytes done/total, speed, ETA, file

    rc, out, _ = run(capsys, "models", "list", "--json", "--cache-dir", cache)
    [version] = json.loads(out)["versions"]
    assert rc == 0 and version["status"] == "complete" and version["refs"] == ["v1.0"]

    rc, out, _ = run(capsys, "models", "path", "base", "--revision", "v1.0", "--cache-dir", cache)
    assert rc == 0 and out.strip() == version["path"]

    rc, out, _ = run(capsys, "models", "verify", "base", "--cache-dir", cache)
    assert rc == 0 and "all files match" in out

    rc, out, _ = run(capsys, "models", "delete", "base", "--revision", "v1.0", "--cache-dir", cache)
    assert rc == 0 and "freed" in out
    rc, out, _ = run(capsys, "models", "list", "--cache-dir", cache)
    assert rc == 0 and "no models" in out


def test_download_json_prints_protocol_events(stepvideo_hub, tmp_path, capsys):
    rc, out, _ = run(capsys, "models", "download", "turbo", "--json", "--cache-dir", str(tmp_path))
    events = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and events[0]["phase"] == "start" and events[-1]["phase"] == "done"
    assert all(e["type"] == "download" and e["v"] == 1 for e in events)


def test_info_shows_refs_and_commits(stepvideo_hub, capsys):
    rc, out, _ = run(capsys, "models", "info", "base", "--json")
    info = json.loads(out)
    assert rc == 0 and info["commit"] == stepvideo_hub.v2
    assert info["refs"]["tags"] == {"v1.0": stepvideo_hub.v1}
    assert [c["commit"] for c in info["commits"]] == [stepvideo_hub.v2, stepvideo_hub.v1]


def test_verify_exit_code_names_corrupt_file(installed, capsys):
    blob = (hub.resolve_model_dir(BASE, cache_dir=installed) / layout.VAE_WEIGHTS).resolve()
    with open(blob, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    rc, out, _ = run(capsys, "models", "verify", "base", "--cache-dir", str(installed))
    assert rc == 1 and f"corrupt: {layout.VAE_WEIGHTS}" in out and "models download base" in out


def test_unknown_repo(installed, capsys):
    rc, _, err = run(capsys, "models", "download", "someone/no-such-model", "--cache-dir", str(installed))
    assert rc == 1 and "model someone/no-such-model not found" in one_line_error(err)
    assert_intact(installed)


def test_unknown_revision(installed, capsys):
    rc, _, err = run(capsys, "models", "download", "base", "--revision", "v9.9", "--cache-dir", str(installed))
    assert rc == 1 and "revision v9.9 not found" in one_line_error(err)
    assert_intact(installed)


def test_unreachable_endpoint_and_offline_mode(installed, capsys, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    rc, _, err = run(capsys, "models", "download", "base", "--cache-dir", str(installed))
    assert rc == 1 and "cannot reach the model hub at http://127.0.0.1:9" in one_line_error(err)
    rc, out, _ = run(capsys, "models", "list", "--cache-dir", str(installed))  # falls back to the cache
    assert rc == 0 and "complete" in out
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rc, _, err = run(capsys, "models", "download", "base", "--cache-dir", str(installed))
    assert rc == 1 and "offline mode" in one_line_error(err)
    assert_intact(installed)


def test_not_enough_disk_space_is_refused_up_front(installed, capsys, monkeypatch):
    monkeypatch.setattr(hub_download, "free_bytes", lambda path: 1_000_000)
    rc, out, _ = run(capsys, "models", "download", "base", "--revision", "v1.0", "--dry-run",
                     "--cache-dir", str(installed))
    assert rc == 1 and "does NOT fit" in out
    rc, _, err = run(capsys, "models", "download", "base", "--revision", "v1.0", "--cache-dir", str(installed))
    line = one_line_error(err)
    assert rc == 1 and "not enough disk space" in line and "free in" in line
    blobs = installed / "models--stepfun-ai--stepvideo-t2v" / "blobs"
    assert not list(blobs.glob("*.incomplete"))
    assert_intact(installed)


def test_disk_filling_up_mid_download(installed, capsys, monkeypatch, stepvideo_hub):
    written = {"n": 0}
    real_write = hub_transfer._write

    def write(fd, data):
        if written["n"] > 300_000:
            raise OSError(errno.ENOSPC, "No space left on device")
        written["n"] += len(data)
        return real_write(fd, data)

    monkeypatch.setattr(hub_transfer, "_write", write)
    rc, _, err = run(capsys, "models", "download", "base", "--revision", "v1.0", "--cache-dir", str(installed))
    assert rc == 1 and "the disk is full while writing transformer/" in one_line_error(err)
    assert_intact(installed)  # main keeps working
    monkeypatch.setattr(hub_transfer, "_write", real_write)
    [partial] = (installed / "models--stepfun-ai--stepvideo-t2v" / "blobs").glob("*.incomplete")
    kept = partial.stat().st_size
    assert kept > 300_000  # what was written before the disk filled stays for the resume
    stepvideo_hub.hub.reset_counters()
    rc, _, _ = run(capsys, "models", "download", "base", "--revision", "v1.0", "--cache-dir", str(installed))
    shard = "transformer/diffusion_pytorch_model-00001-of-00003.safetensors"
    assert rc == 0 and stepvideo_hub.hub.bytes_served(BASE) == 1_090_760 - kept
    assert hub.verify(BASE, "v1.0", cache_dir=installed).ok and (installed / "x").parent.is_dir()
    assert shard in {p for (_r, p) in stepvideo_hub.hub.served}


def test_unwritable_cache_dir(stepvideo_hub, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    rc, _, err = run(capsys, "models", "download", "base", "--cache-dir", str(blocker / "models"))
    assert rc == 1 and "cannot write to the models folder" in one_line_error(err)
    assert blocker.read_text() == "not a folder"


def test_bad_arguments_are_one_line(capsys, tmp_path):
    rc, _, err = run(capsys, "models", "download", "not/a/repo/id", "--cache-dir", str(tmp_path))
    assert rc == 1 and "not a model repo id" in one_line_error(err)
    rc, _, err = run(capsys, "models", "path", "base", "--cache-dir", str(tmp_path))
    assert rc == 2 and "not downloaded" in one_line_error(err)
    rc, _, err = run(capsys, "models", "delete", "base", "--cache-dir", str(tmp_path))
    assert rc == 2 and "not downloaded" in one_line_error(err)
    with pytest.raises(SystemExit) as exc:
        main(["models", "download", "base", "--workers", "0"])
    assert exc.value.code == 2 and "whole number from 1 to 32" in capsys.readouterr().err


def test_clean_reports_what_it_freed(installed, capsys):
    blobs = installed / "models--stepfun-ai--stepvideo-t2v" / "blobs"
    (blobs / ("a" * 40 + ".1234abcd.incomplete")).write_bytes(b"x" * 2000)
    rc, out, _ = run(capsys, "models", "clean", "--cache-dir", str(installed))
    assert rc == 0 and "freed 2.0 KB" in out
    assert_intact(installed)


def test_deleting_the_base_that_turbo_borrows_is_refused_unless_forced(stepvideo_hub, tmp_path, capsys):
    cache = str(tmp_path)
    hub.download("turbo", cache_dir=cache)  # takes the base repo's text encoders and VAE (main)
    turbo = stepvideo_hub.turbo
    rc, _, err = run(capsys, "models", "delete", "base", "--cache-dir", cache)
    line = one_line_error(err)
    assert rc == 1 and f"stepfun-ai/stepvideo-t2v-turbo @ {turbo[:10]} uses the text encoders and VAE" in line
    assert "--force" in line
    assert hub.verify("turbo", cache_dir=cache).ok  # nothing was touched
    hub.resolve_model_roots("turbo", cache_dir=cache)

    rc, out, _ = run(capsys, "models", "delete", "base", "--force", "--cache-dir", cache)
    assert rc == 0 and "freed" in out
    rc, out, _ = run(capsys, "models", "list", "--json", "--offline", "--cache-dir", cache)
    [version] = json.loads(out)["versions"]
    assert version["repo_id"] == hub.TURBO_REPO and version["status"] == "partial"
    assert f"{BASE}@{stepvideo_hub.v2[:10]}:{layout.VAE_WEIGHTS}" in version["components_missing"]
    assert version["missing"] == []  # its own files are all there: only the borrowed ones are gone
    rc, out, _ = run(capsys, "models", "list", "--offline", "--cache-dir", cache)
    assert "partial" in out and "models download stepfun-ai/stepvideo-t2v-turbo" in out

    # Downloading turbo again brings the components back; deleting turbo first needs no --force.
    hub.download("turbo", cache_dir=cache)
    assert [v.status for v in hub.list_installed(cache, online=False)] == ["complete", "complete"]
    assert run(capsys, "models", "delete", "turbo", "--cache-dir", cache)[0] == 0
    assert run(capsys, "models", "delete", "base", "--cache-dir", cache)[0] == 0
