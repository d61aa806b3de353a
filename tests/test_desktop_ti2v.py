"""Image-to-video on the Create page (no worker): drop/paste/browse an image, orientation follows it, the
crop outline, the motion slider's value in the request, a bad image's one line, Remove; and the Models
page's Step-Video-TI2V row with its real download size next to an installed T2V (our own hub server)."""

from __future__ import annotations

import pytest
from desktop_support import app_dirs, drop_file, make_controller  # noqa: F401
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QGuiApplication, QImage
from ti2v_support import animated_gif, gradient_image

from stepvideo import hub
from stepvideo.presets import BASE_REPO, SIZES, TI2V_REPO
from stepvideo_desktop.views.orientation import follow_image
from stepvideo_desktop.views.source_thumb import kept_rect
from tests.fixtures import local_hub as hub_fixtures

local_hub = hub_fixtures.local_hub
WAIT_MS = 60_000


@pytest.fixture
def controller(qtbot, app_dirs, monkeypatch):  # noqa: F811
    c = make_controller(qtbot, monkeypatch=monkeypatch)
    yield c
    c.shutdown()


def test_a_portrait_image_selects_a_portrait_size_and_the_request_carries_it(controller, tmp_path, qtbot):
    composer = controller.composer
    composer.prompt.setPlainText("the dancer turns slowly")
    image = gradient_image(tmp_path / "dancer.png", 270, 480)
    event = drop_file(composer.image, image)
    assert event.isAccepted() and composer.image.path == str(image)
    assert composer.size.currentData() == "portrait" and composer._dimensions() == SIZES["portrait"]
    assert composer.frames.value() * 17 == 102  # TI2V's default length
    assert not composer.image.thumb.pixmap().isNull() and not composer.image.motion.isHidden()
    assert "text-to-video only" in composer.image.note.text() and TI2V_REPO in composer.image.note.text()

    composer.image.motion.slider.setValue(100)  # 10.0: the documented "camera tracking"
    assert composer.image.motion.text.text() == "10 · camera tracking"
    request = composer.request()
    assert (request.image, request.motion, request.model) == (str(image), 10.0, TI2V_REPO)
    assert (request.height, request.width) == SIZES["portrait"]

    wide = gradient_image(tmp_path / "lake.png", 640, 360, seed=1)
    drop_file(composer.image, wide)
    assert composer.size.currentData() == "landscape"
    composer.image.remove.click()  # back to text-to-video
    request = composer.request()
    assert request.image is None and request.motion is None and request.model != TI2V_REPO


def test_crop_outline_is_the_cover_crop_and_small_models_turn_their_own_size():
    # 1000x500 into 992x544: the height fits (scale 1.088), the sides are cut evenly.
    keep = kept_rect(1000, 500, 992, 544)
    assert keep.height() == pytest.approx(500, abs=1) and keep.width() == pytest.approx(992 / 1.088, abs=1)
    assert keep.left() == pytest.approx((1000 - keep.width()) / 2, abs=1) and keep.top() == pytest.approx(0, abs=0.5)
    assert follow_image(300, 600) == SIZES["portrait"] and follow_image(600, 590) == SIZES["square"]
    assert follow_image(300, 600, (144, 256)) == (256, 144) and follow_image(600, 300, (144, 256)) == (144, 256)


def test_a_bad_image_gets_one_line_and_the_old_image_stays(controller, tmp_path, qtbot):
    composer = controller.composer
    composer.prompt.setPlainText("a fox")
    good = gradient_image(tmp_path / "fox.png", 320, 180)
    drop_file(composer.image, good)
    for bad, words in ((tmp_path / "notes.png", "not an image"), (animated_gif(tmp_path / "anim.gif"), "animated"),
                       (gradient_image(tmp_path / "tiny.png", 8, 8), "at least 16")):
        if bad.suffix == ".png" and bad.name == "notes.png":
            bad.write_text("not pixels")
        drop_file(composer.image, bad)
        line = composer.error.text()
        assert words in line and "\n" not in line and "Traceback" not in line
        assert composer.image.path == str(good)
    # An image too small for the chosen size is refused by the same check as the engine's, at submit.
    small = gradient_image(tmp_path / "small.png", 64, 36)
    drop_file(composer.image, small)
    qtbot.waitUntil(lambda: "too small" in composer.error.text())
    assert not composer.add_button.isEnabled()


def test_paste_an_image_or_a_file_url_and_browse(controller, tmp_path, qtbot, monkeypatch):
    composer = controller.composer
    clipboard = QGuiApplication.clipboard()
    picture = QImage(str(gradient_image(tmp_path / "pixels.png", 200, 200)))
    mime = QMimeData()
    mime.setImageData(picture)
    clipboard.setMimeData(mime)
    assert composer.image.paste()
    assert composer.image.source.width == 200 and composer.size.currentData() == "square"
    copied = gradient_image(tmp_path / "copied.png", 320, 180)
    clipboard.setText(QUrl.fromLocalFile(str(copied)).toString())
    qtbot.keyClick(composer.prompt, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert composer.image.path != str(copied) and "file://" in composer.prompt.toPlainText()  # typed text stays text
    composer.image.paste()
    assert composer.image.path == str(copied)
    chosen = gradient_image(tmp_path / "chosen.png", 180, 320)
    composer.image.pick_file = lambda: str(chosen)
    composer.image.browse.click()
    assert composer.image.path == str(chosen) and composer.size.currentData() == "portrait"


def test_models_page_lists_ti2v_with_its_size_given_the_installed_t2v(qtbot, local_hub, app_dirs, tiny_model,  # noqa: F811
                                                                      tiny_ti2v_model, monkeypatch):
    files = {p.relative_to(tiny_model).as_posix(): p for p in sorted(tiny_model.rglob("*")) if p.is_file()}
    ti2v_files = {p.relative_to(tiny_ti2v_model).as_posix(): p for p in sorted(tiny_ti2v_model.rglob("*"))
                  if p.is_file()}
    local_hub.create_repo(BASE_REPO).commit(files, message="t2v")
    local_hub.create_repo(TI2V_REPO).commit(ti2v_files, message="ti2v")
    hub.download(BASE_REPO, cache_dir=app_dirs / "models")
    expected = hub.plan_download(TI2V_REPO, cache_dir=app_dirs / "models")
    assert 0 < expected.bytes_to_fetch < expected.total_bytes  # the precondition: shared blobs

    c = make_controller(qtbot, monkeypatch=monkeypatch)
    try:
        c.window.show_page("models")
        card = c.models.cards[TI2V_REPO]
        assert card.title.text() == "Step-Video-TI2V" and card.status.text() == "not installed"
        qtbot.waitUntil(lambda: "shared with models already installed" in card.size_line.text(), timeout=WAIT_MS)
        from stepvideo_desktop.views.widgets import human_bytes

        assert card.size_line.text().startswith(
            f"Download size: {human_bytes(expected.bytes_to_fetch)} of {human_bytes(expected.total_bytes)}")
    finally:
        c.shutdown()
