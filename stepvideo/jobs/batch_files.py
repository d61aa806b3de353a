"""Batch files with per-row settings: CSV (a header row names the columns) and JSON Lines (one object per
line). Torch-free.

Columns and keys are the request's fields in the CLI's words (stepvideo/request_fields.py), plus `group`:
rows with the same group label are shown together as variations. Whatever a row leaves out comes from
the shared settings (the command's options, or the Create page). Every row is checked before anything is
queued and the jobs are added in one transaction, so a file with one bad row queues nothing, and the error
names that row (spreadsheet numbering for CSV: the header is row 1; line numbers for JSON Lines).
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stepvideo.api import GenerationRequest, validate
from stepvideo.engine.output_path import normalise_output
from stepvideo.errors import InvalidRequest
from stepvideo.jobs.record import Job
from stepvideo.jobs.variations import new_group_id
from stepvideo.presets import BASE_REPO, TI2V_DEFAULT_FRAMES, TI2V_REPO
from stepvideo.request_fields import field_names, request_changes
from stepvideo.request_text import read_utf8_file
from stepvideo.source_image import check_image_size, read_image, size_for_image

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
GROUP = "group"  # not a request field: the rows' variation group label
MAX_REPORTED = 8  # bad rows listed by number after the first one's message


@dataclass(frozen=True)
class BatchRow:
    number: int  # CSV: spreadsheet row (header = 1); JSON Lines: line number
    fields: dict[str, Any]


def batch_format(path: str | os.PathLike[str]) -> str | None:
    """'csv' or 'jsonl' from the file name; None for anything else (a text file of prompts)."""
    return FORMATS.get(Path(path).suffix.lower())


def _word(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _csv_rows(path: Path, text: str) -> list[BatchRow]:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise InvalidRequest(f"{path.name} row 1: the header row is missing; name the columns, e.g. prompt,seed,steps")
    header = [_word(cell) for cell in rows[0]]
    allowed = (*field_names(), GROUP)
    for column, name in enumerate(header, start=1):
        if not name:
            raise InvalidRequest(f"{path.name} row 1: column {column} has no name; allowed: {', '.join(allowed)}")
        if name not in allowed:
            raise InvalidRequest(f"{path.name} row 1: unknown column {name!r}; allowed: {', '.join(allowed)}")
    twice = sorted({n for n in header if header.count(n) > 1})
    if twice:
        raise InvalidRequest(f"{path.name} row 1: column {twice[0]!r} appears twice; name each column once")
    out = []
    for number, cells in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue  # a blank line between rows
        if len(cells) > len(header):
            raise InvalidRequest(f"{path.name} row {number}: {len(cells)} cells but the header names "
                                 f"{len(header)} columns; quote cells that hold commas")
        # An empty cell means "not given": the shared settings (or the preset) decide.
        out.append(BatchRow(number, {name: cell for name, cell in zip(header, cells) if cell.strip()}))
    return out


def _jsonl_rows(path: Path, text: str) -> list[BatchRow]:
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise InvalidRequest(f"{path.name} line {number}: not valid JSON ({exc.msg}); write one JSON object per line") from None
        if not isinstance(data, dict):
            raise InvalidRequest(f"{path.name} line {number}: a {type(data).__name__}, not a JSON object; "
                                 "write one object per line, e.g. {\"prompt\": \"a fox\", \"seed\": 7}")
        out.append(BatchRow(number, {_word(str(k)): v for k, v in data.items()}))
    return out


def read_rows(path: str | os.PathLike[str]) -> list[BatchRow]:
    """The file's rows as {word: value}; InvalidRequest (one line, naming the row) for a malformed file."""
    path = Path(path)
    kind = batch_format(path)
    if kind is None:
        raise InvalidRequest(f"{path.name} is not a batch file; allowed: {', '.join(FORMATS)}")
    text = read_utf8_file(path, "batch file")
    return _csv_rows(path, text) if kind == "csv" else _jsonl_rows(path, text)


def batch_requests(path: str | os.PathLike[str], settings: GenerationRequest) -> list[tuple[GenerationRequest, str | None]]:
    """Each row over `settings` (its prompt is not used), validated; with its group label. Every bad row
    is found before this raises, and the one line names the first problem and the numbers of the rest."""
    path = Path(path)
    kind = "row" if batch_format(path) == "csv" else "line"
    rows = read_rows(path)
    if not rows:
        raise InvalidRequest(f"batch file {path} holds no rows; write a header and one row per video")
    base = settings.replace(prompt="", output=None)
    planned: list[tuple[GenerationRequest, str | None]] = []
    problems: list[tuple[int, str]] = []
    outputs: dict[str, int] = {}
    for row in rows:
        fields = dict(row.fields)
        label = fields.pop(GROUP, None)
        try:
            unknown = [k for k in fields if k not in field_names()]
            if unknown:
                raise InvalidRequest(f"unknown key {unknown[0]!r}; allowed: {', '.join((*field_names(), GROUP))}")
            request = validate(_row_request(base, fields, path.parent))
            if request.output is not None:
                if request.output in outputs:
                    raise InvalidRequest(f"output {request.output!r} is already {kind} {outputs[request.output]}'s; "
                                         "give each video its own file")
                outputs[request.output] = row.number
            planned.append((request, None if label in (None, "") else str(label)))
        except (InvalidRequest, TypeError) as exc:
            problems.append((row.number, str(exc)))
    if problems:
        number, message = problems[0]
        rest = [str(n) for n, _ in problems[1:]]
        more = ""
        if rest:
            listed = ", ".join(rest[:MAX_REPORTED]) + (", …" if len(rest) > MAX_REPORTED else "")
            more = f" (also bad: {kind}s {listed})"
        raise InvalidRequest(f"{path.name} {kind} {number}: {message}{more}; nothing was queued")
    return planned


def _row_request(base: GenerationRequest, fields: dict[str, Any], folder: Path) -> GenerationRequest:
    """One row over the shared settings. Relative `image` and `output` paths are the file's neighbours.
    A row with an image follows `generate --image`: the TI2V model, 102 frames and the image's
    orientation, unless the row itself names the model, the frames or the size."""
    changes = request_changes(fields)
    for name in ("image", "output"):
        if changes.get(name) and not Path(os.path.expanduser(changes[name])).is_absolute():
            changes[name] = str(folder / changes[name])
    if changes.get("output"):
        changes["output"] = normalise_output(changes["output"])
    if not changes.get("image"):
        return base.replace(**changes)
    source = read_image(changes["image"])
    changes["image"] = str(Path(source.path).resolve())
    if "model" not in fields and base.model == BASE_REPO:
        changes["model"] = TI2V_REPO
    if "frames" not in fields:
        changes["frames"] = TI2V_DEFAULT_FRAMES
    if "size" not in fields:
        changes["height"], changes["width"] = size_for_image(source.width, source.height)
    request = base.replace(**changes)
    check_image_size(source, request.height, request.width)
    return request


def import_batch(queue, path: str | os.PathLike[str], settings: GenerationRequest) -> list[Job]:
    """Queue every row of a CSV or JSON Lines file in one transaction (all or nothing)."""
    planned = batch_requests(path, settings)
    groups: dict[str, str] = {}  # the file's labels -> fresh group ids (importing twice makes two groups)
    ids = [groups.setdefault(label, new_group_id()) if label is not None else None for _, label in planned]
    return queue.add_many([r for r, _ in planned], groups=ids,
                          batch=f"{Path(path).name}@{time.strftime('%Y-%m-%d %H:%M:%S')}")


def import_file(queue, path: str | os.PathLike[str], settings: GenerationRequest) -> list[Job]:
    """`queue import`: CSV and JSON Lines by their suffix, anything else as one prompt per line."""
    if batch_format(path) is None:
        return queue.import_prompts(path, settings)
    return import_batch(queue, path, settings)
