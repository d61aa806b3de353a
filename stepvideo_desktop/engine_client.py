"""EngineClient: a QProcess around `python -m stepvideo.jobs.worker_entry --serve`; its events become Qt signals.

An OOM, a CUDA fault or the OOM-killer ends the worker, never the window: `finished` with a crash is
turned into `crashed(message, details, pid)` and the app decides what to tell the user. Stopping asks
politely (a shutdown command: the running job checkpoints), then SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from stepvideo_desktop import protocol
from stepvideo_desktop.protocol import LineBuffer, ProtocolError, WorkerOptions

log = logging.getLogger(__name__)

STATES = ("stopped", "starting", "idle", "loading", "running", "stopping")
_PROJECT_ROOT = Path(__file__).resolve().parent.parent  # so `-m stepvideo.jobs.worker_entry` imports this checkout


class EngineClient(QObject):
    event = Signal(dict)
    state_changed = Signal(str)
    crashed = Signal(str, str, int)  # message in words, stderr tail, pid
    stopped = Signal()

    def __init__(self, options: Callable[[], WorkerOptions], env: Callable[[], dict[str, str]] | None = None,
                 term_after_ms: int = 15_000, kill_after_ms: int = 5_000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._options = options
        self._env = env or (lambda: {})
        self._term_after_ms = term_after_ms
        self._kill_after_ms = kill_after_ms
        self._process: QProcess | None = None
        self._buffer = LineBuffer()
        self._stderr: deque[str] = deque(maxlen=40)
        self._stopping = False
        self.state = "stopped"
        self.job_id: int | None = None
        self.pid: int | None = None
        self.last_step: dict | None = None

    # ---- lifecycle -------------------------------------------------------------------------------
    def is_alive(self) -> bool:
        return self._process is not None and self._process.state() != QProcess.ProcessState.NotRunning

    def start(self) -> None:
        if self.is_alive():
            return
        argv = protocol.worker_argv(self._options())
        process = QProcess(self)
        process.setProgram(argv[0])
        process.setArguments(argv[1:])
        env = QProcessEnvironment.systemEnvironment()
        python_path = env.value("PYTHONPATH", "")
        env.insert("PYTHONPATH", os.pathsep.join(p for p in (str(_PROJECT_ROOT), python_path) if p))
        env.insert("PYTHONUNBUFFERED", "1")
        for key, value in self._env().items():
            env.insert(key, value)
        process.setProcessEnvironment(env)
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._error)
        self._process = process
        self._buffer = LineBuffer()
        self._stderr.clear()
        self._stopping = False
        self.job_id = None
        self._set_state("starting")
        log.info("starting worker: %s", " ".join(argv))
        process.start()
        self.pid = int(process.processId()) or None

    def stop(self) -> None:
        """Ask the worker to stop after its current step (the job keeps a checkpoint), escalating if it hangs."""
        if not self.is_alive():
            return
        self._stopping = True
        self._set_state("stopping")
        self.send("shutdown")
        process = self._process
        QTimer.singleShot(self._term_after_ms, lambda: self._escalate(process, "terminate"))
        QTimer.singleShot(self._term_after_ms + self._kill_after_ms, lambda: self._escalate(process, "kill"))

    def wait_stopped(self, timeout_ms: int) -> bool:
        """Block until the worker exits (used while the app quits); kill it if it will not."""
        if not self.is_alive():
            return True
        if self._process.waitForFinished(timeout_ms):
            return True
        self._process.terminate()
        if self._process.waitForFinished(self._kill_after_ms):
            return True
        self._process.kill()
        return self._process.waitForFinished(2000)

    def _escalate(self, process: QProcess, how: str) -> None:
        if process is self._process and self.is_alive():
            log.warning("worker did not stop in time; sending %s", how)
            getattr(process, how)()

    # ---- commands --------------------------------------------------------------------------------
    def send(self, name: str, job_id: int | None = None) -> bool:
        if not self.is_alive():
            return False
        self._process.write(protocol.encode_command(name, job_id))
        return True

    def cancel(self, job_id: int | None = None) -> bool:
        return self.send("cancel", job_id)

    def pause(self, job_id: int | None = None) -> bool:
        return self.send("pause", job_id)

    def wake(self) -> None:
        """Look at the queue now: start the worker if it is not running, else nudge it."""
        if self.is_alive() and not self._stopping:
            self.send("wake")
        elif not self.is_alive():
            self.start()

    # ---- reading ---------------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        for raw in self._buffer.feed(bytes(self._process.readAllStandardOutput())):
            try:
                ev = protocol.decode_line(raw)
            except ProtocolError as exc:
                log.error("worker protocol: %s", exc)
                continue
            if ev is None:
                if raw.strip():
                    log.info("worker stdout: %s", raw.decode("utf-8", "replace").rstrip())
                continue
            self._track(ev)
            self.event.emit(ev)

    def _read_stderr(self) -> None:
        text = bytes(self._process.readAllStandardError()).decode("utf-8", "replace")
        for line in text.splitlines():
            self._stderr.append(line)
            log.info("worker: %s", line)

    def _track(self, ev: dict) -> None:
        kind = ev["type"]
        if kind == "ready":
            self.pid = int(ev.get("pid") or self.pid or 0) or None
            self._set_state("idle")
        elif kind == "job_started":
            self.job_id = ev.get("job_id")
            self.last_step = None
            self._set_state("loading")
        elif kind == "stage" and ev.get("state") == "started":
            self._set_state("loading" if ev.get("name") == "load" else "running")
        elif kind == "step":
            self.last_step = ev
            self._set_state("running")
        elif kind in ("job_done", "job_failed", "job_paused", "job_interrupted"):
            self.job_id = None
            self._set_state("stopping" if self._stopping else "idle")

    def _finished(self, exit_code: int, status: QProcess.ExitStatus) -> None:
        crashed = status == QProcess.ExitStatus.CrashExit
        if self._process is not None:  # drain what it said last
            self._read_stdout()
            self._read_stderr()
        pid = self.pid or 0
        intentional = self._stopping and not crashed
        self._set_state("stopped")
        self.job_id = None
        if not intentional:
            details = "\n".join(self._stderr)
            message = protocol.describe_exit(exit_code, crashed, details)
            log.error("%s (exit %s, crashed=%s)", message, exit_code, crashed)
            self.crashed.emit(message, details, pid)
        self.stopped.emit()

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            log.error("the worker could not be started: %s", self._process.errorString())
            self._set_state("stopped")
            self.crashed.emit(f"the worker could not be started: {self._process.errorString()}", "", 0)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)
