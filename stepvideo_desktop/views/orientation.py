"""Orientation follows the image: the video size Create picks when an image is chosen. Pure, Qt-free."""

from __future__ import annotations

from stepvideo.source_image import SQUARE_TOLERANCE, size_for_image


def follow_image(src_width: int, src_height: int, small_base: tuple[int, int] | None = None) -> tuple[int, int]:
    """(height, width) for an image: the published sizes (source_image.size_for_image), or, for a small
    test model whose own size is `small_base` (height, width), that size turned to the image's way."""
    if small_base is None:
        return size_for_image(src_width, src_height)
    short, long = sorted(small_base)
    aspect = src_width / src_height
    if aspect > SQUARE_TOLERANCE:
        return short, long
    if aspect < 1 / SQUARE_TOLERANCE:
        return long, short
    return short, short
