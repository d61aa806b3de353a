"""stepvideo_desktop.assets: the style sheet and example prompts come through stepvideo.resources (override included),
and the example chips are chosen by file: English, Chinese, and a few official eval prompts."""

from __future__ import annotations

from pathlib import Path

from stepvideo_desktop import assets
from stepvideo_desktop import resource_files as resources

RES = Path(__file__).resolve().parent.parent / "stepvideo_desktop" / "resources"


def _cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_examples_from_the_shipped_files_in_order_english_chinese_eval():
    en = set((RES / "prompts" / "examples_en.txt").read_text(encoding="utf-8").splitlines())
    zh = set((RES / "prompts" / "examples_zh.txt").read_text(encoding="utf-8").splitlines())
    eval_set = set((RES / "prompts" / "step-video-t2v-eval.txt").read_text(encoding="utf-8").splitlines())
    picked = assets.example_prompts(6)
    assert len(picked) == len(set(picked)) == 6
    assert [p in en for p in picked] == [True, True, False, False, False, False]
    assert [p in zh for p in picked] == [False, False, True, True, False, False]
    assert [p in eval_set for p in picked] == [False, False, False, False, True, True]
    assert not any(_cjk(p) for p in picked[:2]) and all(_cjk(p) for p in picked[2:4])
    assert assets.example_prompts(6) == picked  # stable: the chips do not reshuffle on every start


def test_the_resources_override_is_honoured_and_missing_files_leave_their_share(tmp_path, monkeypatch):
    (tmp_path / f"{resources.APP_ID}.desktop").write_text("[Desktop Entry]\n")
    (tmp_path / "app.qss").write_text("QWidget { margin: 8px; }")
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "examples_en.txt").write_text("a fox\n\na heron\n", encoding="utf-8")
    (tmp_path / "prompts" / "step-video-t2v-eval.txt").write_text("评测一\n评测二\n评测三\n评测四\n", encoding="utf-8")
    (tmp_path / "prompts" / "examples_zh-extra.txt").write_text("不是示例\n", encoding="utf-8")  # not a chip file
    monkeypatch.setenv(resources.RESOURCES_ENV, str(tmp_path))
    assert assets.style_sheet() == "QWidget { margin: 8px; }"
    picked = assets.example_prompts(6)
    assert sorted(picked[:2]) == ["a fox", "a heron"]  # blank lines are not prompts
    assert set(picked[2:]) == {"评测一", "评测二", "评测三", "评测四"} and len(picked) == 6  # no Chinese file: the eval set fills in
    assert assets.prompts("examples_zh.txt") == ()


def test_no_resources_at_all_gives_no_chips_and_the_builtin_look(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "packaged_dir", lambda: tmp_path)
    assert assets.example_prompts() == [] and assets.style_sheet() is None
