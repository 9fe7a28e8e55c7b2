"""The one prompt parser (English and Chinese), shared by the built-in engine, the built-in planner
and the diffusers engine's image-set splitting. Imports nothing from the server; Chinese is read
with jieba (segmentation) and OpenCC (Traditional -> Simplified), loaded on first use (`warm`).

  vocabulary.py  number, colour, size, region and relation words; singular / plural
  zh_words.py    the Chinese words: numerals, measure words, colours, regions, relations, styles
  parse.py       prompt -> ParsedPrompt (objects, relations, background, style, kept text)
  chinese.py     a prompt with Chinese -> the same ParsedPrompt (lang "zh" / "zh-Hant")
  edits.py       image sets -> per-image parts; edit prompts -> EditIntent, source images"""

from __future__ import annotations

from .chinese import warm
from .edits import EditIntent, image_refs, parse_edit, set_prompts, source_images, split_set
from .parse import ParsedObject, ParsedPrompt, Scene, is_chinese, parse, parse_object, scene_words
from .vocabulary import (
    COLOURS,
    MAX_COUNT,
    NUMBERS,
    PAIRED,
    REGIONS,
    Region,
    colour_words,
    count_word,
    plural,
    plural_phrase,
    region_name,
    share_counts,
    singular,
)

__all__ = [
    "COLOURS", "MAX_COUNT", "NUMBERS", "PAIRED", "REGIONS", "EditIntent", "ParsedObject", "ParsedPrompt", "Region", "Scene",
    "colour_words", "count_word", "image_refs", "is_chinese", "parse", "parse_edit", "parse_object", "plural",
    "plural_phrase", "region_name", "scene_words", "set_prompts", "share_counts", "singular", "source_images",
    "split_set", "warm",
]
