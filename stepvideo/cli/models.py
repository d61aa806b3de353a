"""`stepvideo models list|info|download|verify|delete|path|clean`: the model manager on the command line.

MODEL is a hub repo id (any repo, any branch/tag/commit via --revision) or an alias: base, turbo.
Weights go to the standard Hugging Face cache, or --cache-dir / $STEPVIDEO_MODELS_DIR.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..hub.progress import human_bytes, human_seconds

ALIASES_HELP = "a hub repo id (e.g. stepfun-ai/stepvideo-t2v) or an alias: base, turbo, ti2v"


def register(subparsers) -> None:
    models = subparsers.add_parser("models", help="list, download, verify and delete model weights",
                                   description="Manage downloaded Step-Video-T2V weights (Hugging Face cache layout).")
    verbs = models.add_subparsers(dest="models_verb", metavar="ACTION", parser_class=type(models))
    verbs.required = True
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cache-dir", help="weights folder (default: $STEPVIDEO_MODELS_DIR or the Hugging Face cache)")

    p = verbs.add_parser("list", parents=[common], help="downloaded versions and their state")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--offline", action="store_true", help="do not contact the hub (same as HF_HUB_OFFLINE=1)")
    p.set_defaults(handler=cmd_list)

    p = verbs.add_parser("info", parents=[common], help="what the hub offers for a model (commit, refs, files)")
    _model_args(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_info)

    p = verbs.add_parser("download", parents=[common], help="download, resume or repair a version")
    _model_args(p)
    p.add_argument("--dry-run", action="store_true", help="print the size and free space, download nothing")
    p.add_argument("--include-lib", action="store_true",
                   help="also fetch the closed-source lib/*.so attention op (native code; off by default)")
    p.add_argument("--workers", type=_positive_int, default=4, help="files fetched in parallel (default 4)")
    p.add_argument("--json", action="store_true", help="print progress events as JSON lines")
    p.set_defaults(handler=cmd_download)

    p = verbs.add_parser("verify", parents=[common], help="hash every file against the hub's published hash")
    _model_args(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_verify)

    p = verbs.add_parser("delete", parents=[common], help="delete a version (frees blobs no other version uses, and its quantized copies)")
    _model_args(p)
    p.add_argument("--force", action="store_true",
                   help="delete even when another version (turbo) uses its text encoders and VAE")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_delete)

    p = verbs.add_parser("path", parents=[common], help="print a downloaded version's folder (no network)")
    _model_args(p)
    p.set_defaults(handler=cmd_path)

    p = verbs.add_parser("clean", parents=[common],
                         help="remove leftover partial downloads and quantized copies whose weights are gone")
    p.add_argument("--all-partials", action="store_true",
                   help="also remove partial files an unfinished download could resume from")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_clean)


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help=ALIASES_HELP)
    parser.add_argument("--revision", help="branch, tag or commit (default: main)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or value > 32:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; give a whole number from 1 to 32")
    return value


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=1, default=str))


# --- handlers ----------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    from .. import hub

    versions = hub.list_installed(args.cache_dir, online=False if args.offline else None)
    others = hub.unlisted_quantized_copies(versions)
    if args.json:
        _print_json({"cache_dir": str(hub.cache_root(args.cache_dir)), "versions": [v.to_dict() for v in versions],
                     "other_quantized": [c.to_dict() for c in others]})
        return 0
    if not versions:
        print(f"no models in {hub.cache_root(args.cache_dir)}")
    for v in versions:
        refs = ",".join(v.refs) or ("(" + ",".join(v.requested) + ")" if v.requested else "-")
        line = f"{v.repo_id:40} {refs:16} {v.commit[:10]}  {human_bytes(v.size_on_disk):>9}  {v.status}"
        if v.missing:
            line += f" ({len(v.missing)} missing)"
        if v.corrupt:
            line += f" (corrupt: {', '.join(v.corrupt[:3])})"
        if v.components_missing:
            base = v.components_missing[0].split(":", 1)[0]
            line += f" (text encoders/VAE from {base} are gone; run: stepvideo models download {v.repo_id})"
        if v.components_only:
            line += " (text encoders + VAE only, for turbo)"
        if v.update_available:
            line += " (update available)"
        print(line)
        for c in v.quantized:
            print(f"    quantized {c.component} {c.qtype:8} {human_bytes(c.size):>9}  {c.path}")
    if others:
        print(f"{len(others)} quantized copies of other weights ({human_bytes(sum(c.size for c in others))}) in"
              f" {others[0].path.parents[2]}; `stepvideo models clean` removes those whose weights are gone")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .. import hub

    info = hub.model_info(args.model, args.revision)
    if args.json:
        _print_json(info)
        return 0
    print(f"{info['repo']} @ {info['revision']}: commit {info['commit']}, {len(info['files'])} files, "
          f"{human_bytes(info['size'])}")
    print("branches: " + ", ".join(f"{n} ({c[:10]})" for n, c in info["refs"]["branches"].items()))
    print("tags: " + (", ".join(f"{n} ({c[:10]})" for n, c in info["refs"]["tags"].items()) or "-"))
    for c in info["commits"][:5]:
        print(f"  {c['commit'][:10]} {c['date'][:10]} {c['title']}")
    return 0


class _TerminalProgress:
    """One status line on stderr: rewritten in place on a terminal, every few seconds otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, event: dict[str, Any]) -> None:
        now = time.monotonic()
        final = event["phase"] in ("done", "failed", "cancelled")
        if not final and not self.tty and now - self.last < 5:
            return
        self.last = now
        line = (f"{human_bytes(event['bytes_done'])} / {human_bytes(event['bytes_total'])}  "
                f"{human_bytes(event['speed_bps'])}/s  ETA {human_seconds(event['eta_seconds'])}  "
                f"[{event['files_done']}/{event['files_total']}] {event.get('file') or ''}")
        if self.tty:
            sys.stderr.write("\r\033[K" + line + ("\n" if final else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def cmd_download(args: argparse.Namespace) -> int:
    from .. import hub

    plan = hub.plan_download(args.model, args.revision, cache_dir=args.cache_dir, include_lib=args.include_lib)
    if args.dry_run:
        if args.json:
            _print_json(plan.to_dict())
        else:
            print(plan.summary())
            print("fits on disk" if plan.fits else "does NOT fit on disk")
        return 0 if plan.fits else 1
    if not args.json and plan.fits:  # (if it does not fit, download() refuses in one line)
        print(plan.summary(), file=sys.stderr)
    on_event = (lambda e: print(json.dumps(e), flush=True)) if args.json else _TerminalProgress()
    path = hub.download(args.model, args.revision, cache_dir=args.cache_dir, include_lib=args.include_lib,
                        on_event=on_event, workers=args.workers, plan=plan)
    if not args.json:
        print(path)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from .. import hub

    report = hub.verify(args.model, args.revision, cache_dir=args.cache_dir)
    if args.json:
        _print_json(report.to_dict())
        return 0 if report.ok else 1
    for part in (report, report.components):
        if part is None:
            continue
        print(f"{part.repo_id} @ {part.commit[:10]}: {part.checked} files checked against the {part.source}'s hashes")
        for path in part.corrupt:
            print(f"  corrupt: {path}")
        for path in part.missing:
            print(f"  missing: {path}")
    if report.ok:
        print("all files match")
        return 0
    print(f"run `stepvideo models download {args.model}"
          + (f" --revision {args.revision}" if args.revision else "") + "` to fetch the bad files again")
    return 1


def cmd_delete(args: argparse.Namespace) -> int:
    from .. import hub

    report = hub.delete_version(args.model, args.revision, cache_dir=args.cache_dir, force=args.force)
    if args.json:
        _print_json({"repo": report.repo_id, "commit": report.commit, "refs_removed": list(report.refs_removed),
                     "freed_bytes": report.freed_bytes, "quantized_removed": list(report.quantized_removed)})
    else:
        refs = f" ({', '.join(report.refs_removed)})" if report.refs_removed else ""
        quantized = f", with {len(report.quantized_removed)} quantized copies" if report.quantized_removed else ""
        print(f"deleted {report.repo_id} @ {report.commit[:10]}{refs}{quantized}: freed {human_bytes(report.freed_bytes)}")
    return 0


def cmd_path(args: argparse.Namespace) -> int:
    from .. import hub

    print(hub.resolve_model_dir(args.model, args.revision, args.cache_dir))
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    from .. import hub

    report = hub.clean(args.cache_dir, include_resumable=args.all_partials)
    if args.json:
        _print_json({"removed": list(report.removed), "freed_bytes": report.freed_bytes,
                     "kept_resumable": report.kept_resumable, "quantized_removed": list(report.quantized_removed)})
        return 0
    for path in report.removed:
        print(f"removed {path}")
    for path in report.quantized_removed:
        print(f"removed quantized copy {path} (its weights are gone)")
    print(f"freed {human_bytes(report.freed_bytes)}"
          + (f"; kept {report.kept_resumable} partial file(s) a download can resume (--all-partials removes them)"
             if report.kept_resumable else ""))
    return 0
