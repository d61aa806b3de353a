"""An image pasted from the clipboard (pixels, no file) saved as a PNG, so a request can name it.

The files live in the app's data folder under pasted-images/, named by their content hash: pasting the
same picture twice reuses one file. They are the user's input and are never deleted by the app (the
queue copies the image into the job's folder anyway).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from PySide6.QtCore import QBuffer, QIODevice
from PySide6.QtGui import QImage

from stepvideo import paths
from stepvideo.errors import InvalidRequest


def pasted_dir() -> Path:
    return paths.data_dir() / "pasted-images"


def save_pasted(image: QImage) -> Path:
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if image.isNull() or not image.save(buffer, "PNG"):
        raise InvalidRequest("the clipboard holds no image that can be saved; copy a PNG or JPEG image")
    data = bytes(buffer.data())
    target = pasted_dir() / f"pasted-{hashlib.sha256(data).hexdigest()[:16]}.png"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(target)
    except OSError as exc:
        raise InvalidRequest(f"cannot save the pasted image in {target.parent} ({exc.strerror or exc})") from None
    return target
