"""The one English prompt parser, shared by the built-in engine, the built-in planner and the
diffusers engine's image-set splitting. Pure: imports only the standard library.

  vocabulary.py  number, colour, size, region and relation words; singular / plural
  parse.py       prompt -> ParsedPrompt (objects, relations, background, style, kept text)
  edits.py       image sets -> per-image parts; edit prompts -> EditIntent, source images"""

from __future__ import annotations

from .edits import EditIntent, image_refs, parse_edit, set_prompts, source_images, split_set
from .parse import ParsedObject, ParsedPrompt, Scene, parse, parse_object, scene_words
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
    "colour_words", "count_word", "image_refs", "parse", "parse_edit", "parse_object", "plural",
    "plural_phrase", "region_name", "scene_words", "set_prompts", "share_counts", "singular", "source_images",
    "split_set",
]
