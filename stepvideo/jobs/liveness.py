"""Is the worker recorded on a running job still alive? Torch-free.

A worker killed from outside (SIGKILL, the OOM-killer, a closed terminal) cannot mark its job; the
next worker does, when it starts. Until then a reader (`stepvideo queue list`, the desktop) would show
the job `running` under a dead pid. `reap_dead_workers` looks the pid up in /proc and, for a process
that is gone (or a zombie, dead but not yet collected by its parent), marks its jobs `interrupted` —
exactly what the next worker would do, so nothing is counted twice. Only jobs of that pid are touched:
a new worker that claimed a job meanwhile has another pid.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stepvideo.jobs.store import JobQueue

DEAD_WORKER_REASON = "the worker process (pid {pid}) is gone (killed or crashed); the job resumes from its last checkpoint"


def pid_alive(pid: int, proc: Path = Path("/proc")) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    if pid <= 0:
        return False
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc here (or hidden): ask the kernel instead
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # "pid (comm) S …": the state follows the last ')' (comm may hold spaces and parentheses)
    state = stat.rsplit(")", 1)[-1].split()[:1]
    return state != ["Z"]


def reap_dead_workers(queue: JobQueue) -> list[int]:
    """Mark running jobs whose worker process is gone `interrupted`; return their ids."""
    dead = sorted({job.worker_pid for job in queue.list(("running",))
                   if job.worker_pid is not None and not pid_alive(job.worker_pid)})
    reaped: list[int] = []
    for pid in dead:
        reaped += queue.recover_interrupted(DEAD_WORKER_REASON.format(pid=pid), pid=pid)
    return reaped
