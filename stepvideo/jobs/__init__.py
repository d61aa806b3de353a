"""The persistent queue and the process that runs it.

`store` (JobQueue: the user's side) over `database` (the SQLite file, WAL, migrations from `schema`),
`record` (the Job row) and `transitions` (the worker's state changes); `checkpoints` (mid-denoise
resume); `worker` (runs jobs, reports events), `worker_entry` (the process: `python -m
stepvideo.jobs.worker_entry`), `lock` (one worker per queue) and `supervisor` (stop after a grace).
Importing the package imports nothing; everything but `worker` and `worker_entry` is torch-free.
"""
