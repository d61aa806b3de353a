"""Model versions: list, download (progress, resume, verify), delete, disk usage. Torch-free.

The facade the pipeline, the CLI (`stepvideo models …`) and the desktop's HubClient use. The work
is done in the modules of this package:
  cache          the Hugging Face cache layout on disk (no network)
  resolve        model → folder for the pipeline (no network)
  remote         hub metadata over HTTP (huggingface_hub's HfApi): revision → commit, file tree
  select         which files a download takes
  transfer       one file: resumable ranged GET into blobs/<etag>.incomplete, hashed, then linked
  downloader     plan (dry run, disk space), parallel download, progress events, cancel
  verified       per-blob verification records (what `verify` found, for the next download)
  progress       bytes done/total, speed, ETA → `download` protocol events
  listing        our record of each commit's published files (paths, sizes, hashes)
  inventory      list (with the quantized copies made from each version), verify
  cleanup        delete a version (and its quantized copies), clean partial files and orphaned copies

Weights live in the standard HF cache (HF_HUB_CACHE) or the folder given by `cache_dir` /
$STEPVIDEO_MODELS_DIR, in the same layout. The endpoint is $HF_ENDPOINT, read per call.
"""

from __future__ import annotations

import os

# huggingface_hub reads these at import; ours is the first import in this process that can reach it.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from stepvideo.hub.cache import MODELS_DIR_ENV, cache_root  # noqa: E402
from stepvideo.hub.cleanup import CleanReport, DeleteReport, clean, delete_version  # noqa: E402
from stepvideo.hub.downloader import DownloadPlan, PlannedFile, download, plan_download  # noqa: E402
from stepvideo.hub.inventory import (  # noqa: E402
    InstalledVersion,
    VerifyReport,
    list_installed,
    unlisted_quantized_copies,
    verify,
)
from stepvideo.hub.remote import HubUnreachable, RepoNotFound, RevisionNotFound, model_info  # noqa: E402
from stepvideo.hub.resolve import (  # noqa: E402
    ALIASES,
    ModelFolders,
    canonical_model,
    resolve_model_dir,
    resolve_model_roots,
)
from stepvideo.hub.transfer import DiskFull, HashMismatch  # noqa: E402
from stepvideo.presets import BASE_REPO, TI2V_REPO, TURBO_REPO  # noqa: E402

KNOWN_MODELS = {
    BASE_REPO: "Step-Video-T2V (30B), 50 steps",
    TURBO_REPO: "Step-Video-T2V Turbo (distilled transformer, 15 steps; encoders and VAE from the base repo)",
    TI2V_REPO: "Step-Video-TI2V (30B image-to-video, 50 steps; encoders and VAE identical to T2V's are shared)",
}

__all__ = [
    "ALIASES", "BASE_REPO", "KNOWN_MODELS", "MODELS_DIR_ENV", "TI2V_REPO", "TURBO_REPO",
    "CleanReport", "DeleteReport", "DiskFull", "DownloadPlan", "HashMismatch", "HubUnreachable",
    "RepoNotFound", "RevisionNotFound", "InstalledVersion", "ModelFolders", "PlannedFile", "VerifyReport",
    "cache_root", "canonical_model", "clean", "delete_version", "download", "list_installed", "model_info",
    "plan_download", "resolve_model_dir", "resolve_model_roots", "unlisted_quantized_copies", "verify",
]
