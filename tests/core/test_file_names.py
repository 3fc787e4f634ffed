"""Download names made from captions: readable, ASCII, never a path."""

from __future__ import annotations

from lookalike.core.files import safe_file_name


def test_a_caption_becomes_a_readable_ascii_name():
    name = safe_file_name("photo in the style of Cafés à Paris — Édouard Manet, 1878", ".png")
    assert name == "photo-in-the-style-of-cafes-a-paris-edouard-manet-1878.png"


def test_path_parts_and_odd_characters_never_survive():
    for text in ("../../etc/passwd", "a\\b/c", "con:*?<>|\x00", "..", ""):
        name = safe_file_name(text, ".png", fallback="stylized")
        assert "/" not in name and "\\" not in name and ".." not in name and ":" not in name
        assert name.endswith(".png") and len(name) > len(".png")
    assert safe_file_name("???", ".png", fallback="stylized") == "stylized.png"


def test_long_captions_are_cut_at_a_word():
    name = safe_file_name("word " * 60, ".png", max_length=40)
    assert len(name) <= 44 and name.removesuffix(".png").split("-") == ["word"] * 8
