"""The source image of an image-to-video request: decoding through ffmpeg, and every bad input as one line."""

from __future__ import annotations

import numpy as np
import pytest
from ti2v_support import animated_gif, gradient_image

from stepvideo.engine.preview import write_png
from stepvideo.errors import InvalidRequest
from stepvideo.source_image import check_image, file_sha256, read_image, size_for_image


def test_png_decodes_to_its_exact_pixels(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    image = read_image(write_png(rgb, tmp_path / "a.png"))
    assert (image.width, image.height) == (50, 30) and np.array_equal(image.rgb, rgb)


def test_a_name_with_percent_signs_is_not_read_as_a_pattern(tmp_path):
    path = gradient_image(tmp_path / "100%d.png", 40, 30)
    assert read_image(path).width == 40


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda d: d / "missing.png", "does not exist"),
        (lambda d: (d / "t.png").write_text("not an image") and d / "t.png", "not an image"),
        (lambda d: (d / "empty.png").write_bytes(b"") or d / "empty.png", "not an image"),
        (lambda d: animated_gif(d / "a.gif"), "animated"),
        (lambda d: d, "not a file"),
    ],
)
def test_bad_files_are_one_line(tmp_path, make, needle):
    with pytest.raises(InvalidRequest) as info:
        read_image(make(tmp_path))
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_too_small_for_the_video_is_refused_with_the_size_needed(tmp_path):
    path = gradient_image(tmp_path / "small.png", 100, 60)
    with pytest.raises(InvalidRequest, match=r"enlarged 9\.9x.*at least 248x136"):
        check_image(path, 544, 992)
    assert check_image(path, 64, 96).width == 100  # fine for a small video
    tiny = gradient_image(tmp_path / "tiny.png", 8, 8)
    with pytest.raises(InvalidRequest, match="at least 16 pixels"):
        check_image(tiny, 16, 16)


@pytest.mark.parametrize("size, want", [((1920, 1080), (544, 992)), ((1080, 1920), (992, 544)),
                                        ((1024, 1024), (768, 768)), ((2392, 2500), (768, 768))])
def test_the_video_size_follows_the_image_orientation(size, want):
    assert size_for_image(*size) == want


def test_sha256_is_of_the_file_bytes(tmp_path):
    import hashlib

    path = gradient_image(tmp_path / "a.png", 20, 20)
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
