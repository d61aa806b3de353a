"""Pictures of a source image (image-to-video): decoded, with the kept crop drawn on it, or inset into a
video's thumbnail so the Queue and Gallery show which image a video was made from."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QImageReader, QPainter, QPen, QPixmap

from stepvideo.errors import InvalidRequest
from stepvideo.source_image import cover_crop, read_image
from stepvideo_desktop import theme

log = logging.getLogger(__name__)


def rgb_to_image(rgb: np.ndarray) -> QImage:
    """A QImage that owns a copy of the (height, width, 3) uint8 pixels."""
    rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def load_image(path: str | Path, longest: int = 512) -> QImage | None:
    """The image scaled to at most `longest` px; Qt's readers first, the shipped ffmpeg for the rest
    (e.g. WebP without Qt's plugin). None when it cannot be read."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    image = reader.read()
    if image.isNull():
        try:
            image = rgb_to_image(read_image(path).rgb)
        except InvalidRequest as exc:
            log.info("no thumbnail for %s: %s", path, exc)
            return None
    if max(image.width(), image.height()) > longest:
        image = image.scaled(longest, longest, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
    return image


def kept_rect(src_width: int, src_height: int, width: int, height: int) -> QRectF:
    """The part of the source image (in its own pixels) that a width x height video keeps: the
    resize-to-cover then center-crop of source_image.cover_crop, mapped back through the scale."""
    crop = cover_crop(src_width, src_height, width, height)
    sx, sy = crop.resized_width / src_width, crop.resized_height / src_height
    return QRectF(crop.left / sx, crop.top / sy, width / sx, height / sy)


def crop_preview(image: QImage, src_width: int, src_height: int, width: int, height: int, box: QSize) -> QPixmap:
    """The image fitted into `box`, the part the video drops dimmed and the kept rectangle outlined."""
    shown = QPixmap.fromImage(image).scaled(box, Qt.AspectRatioMode.KeepAspectRatio,
                                            Qt.TransformationMode.SmoothTransformation)
    scale = shown.width() / src_width
    keep = kept_rect(src_width, src_height, width, height)
    keep = QRectF(keep.x() * scale, keep.y() * scale, keep.width() * scale, keep.height() * scale)
    painter = QPainter(shown)
    shade = QColor(0, 0, 0, 140)
    full = QRectF(shown.rect())
    for part in (QRectF(0, 0, full.width(), keep.top()), QRectF(0, keep.bottom(), full.width(), full.height() - keep.bottom()),
                 QRectF(0, keep.top(), keep.left(), keep.height()),
                 QRectF(keep.right(), keep.top(), full.width() - keep.right(), keep.height())):
        if part.width() > 0 and part.height() > 0:
            painter.fillRect(part, shade)
    painter.setPen(QPen(QColor(theme.colors().accent), 2))
    painter.drawRect(keep.adjusted(1, 1, -1, -1))
    painter.end()
    return shown


def with_inset(base: QPixmap, source: QImage) -> QPixmap:
    """`base` (a video thumbnail) with `source` in its bottom-left corner, a third of its height."""
    out = base.copy()
    side = max(8, out.height() // 3 + out.height() // 6)
    small = QPixmap.fromImage(source).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                             Qt.TransformationMode.SmoothTransformation)
    margin = max(2, out.height() // 24)
    painter = QPainter(out)
    x, y = margin, out.height() - small.height() - margin
    painter.fillRect(x - 1, y - 1, small.width() + 2, small.height() + 2, QColor("white"))
    painter.drawPixmap(x, y, small)
    painter.end()
    return out
