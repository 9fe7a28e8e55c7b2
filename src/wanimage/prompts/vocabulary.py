"""The one English vocabulary of prompts: number words, colour words, sizes, regions, relations,
the words that are never objects, and the word forms (singular / plural / count words).

Data first, then the small word functions. Counts here are what the prompt says ("nine cats" is
9); whoever draws caps them (the built-in model draws at most 8 sprites, a layout at most 12)."""

from __future__ import annotations

import re

from . import zh_words

Region = tuple[float, float, float, float]  # x1, y1, x2, y2 as fractions of the canvas

MAX_COUNT = 20  # the largest count a prompt can ask for; more reads as 20
NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
    "a dozen": 12, "dozen": 12, "a couple of": 2, "a pair of": 2, "pair of": 2, "couple of": 2,
    "a few": 3, "few": 3, "several": 3, "some": 3, "many": 5, "lots of": 5, "a lot of": 5,
    "a single": 1, "single": 1, "a": 1, "an": 1, "the": 1, "another": 1,
}
PLURAL_COUNT = 3  # "apples on the left", no number: a few
COUNT_WORDS = {v: k for k, v in NUMBERS.items() if k.isalpha() and " " not in k and v <= MAX_COUNT
               and k not in ("a", "an", "the", "single", "another", "several", "some", "many", "few", "dozen")}

# Colour words -> the colour name they mean (a drawing engine maps names to RGB itself).
COLOURS = {
    "red": "red", "orange": "orange", "yellow": "yellow", "green": "green", "blue": "blue",
    "purple": "purple", "pink": "pink", "brown": "brown", "black": "black", "white": "white",
    "gray": "gray", "grey": "gray", "gold": "gold", "golden": "golden", "silver": "silver",
    "cyan": "cyan", "teal": "teal", "turquoise": "turquoise", "navy": "navy", "violet": "violet",
    "magenta": "magenta", "beige": "beige", "maroon": "maroon", "crimson": "crimson",
    "lime": "lime", "indigo": "indigo",
}
COLOUR_NOUNS = {"orange", "lime"}  # "an orange": the fruit, when no other noun follows
SIZES = {"big": "big", "large": "big", "huge": "big", "giant": "big", "enormous": "big",
         "massive": "big", "small": "small", "tiny": "small", "little": "small", "mini": "small",
         "miniature": "small"}

# Regions as fractions of the canvas, by the names positions normalise to (`region_name`).
REGIONS: dict[str, Region] = {
    "top left": (0.0, 0.0, 0.5, 0.5), "top right": (0.5, 0.0, 1.0, 0.5),
    "bottom left": (0.0, 0.5, 0.5, 1.0), "bottom right": (0.5, 0.5, 1.0, 1.0),
    "left": (0.0, 0.0, 0.5, 1.0), "right": (0.5, 0.0, 1.0, 1.0),
    "top": (0.0, 0.0, 1.0, 0.5), "bottom": (0.0, 0.5, 1.0, 1.0),
    "center": (0.2, 0.2, 0.8, 0.8), "whole": (0.0, 0.0, 1.0, 1.0),
}
POSITION_WORDS = r"(?:top|upper|bottom|lower)[\s-]*(?:left|right)|(?:left|right)[\s-]*(?:top|upper|bottom|lower)|" \
                 r"top|upper|bottom|lower|left|right|center|centre|middle|centered|centred"
RELATION_KIND = {
    "to the left of": "left of", "on the left of": "left of", "left of": "left of",
    "to the right of": "right of", "on the right of": "right of", "right of": "right of",
    "on top of": "above", "on the top of": "above", "sitting on top of": "above", "above": "above",
    "over": "above", "below": "below", "under": "below", "underneath": "below", "beneath": "below",
    "next to": "next to", "beside": "next to", "alongside": "next to", "near": "next to",
    "between": "between", "in front of": "in front of", "behind": "behind",
}

# Scene words: the time of day, the weather and the ground a picture is set in ("a fox in the snow
# at dusk"). Each word -> the name an engine paints (the built-in engine: sky and ground colours).
TIMES = {"dawn": "dawn", "sunrise": "dawn", "daybreak": "dawn", "morning": "morning", "noon": "day",
         "midday": "day", "afternoon": "day", "daytime": "day", "daylight": "day", "sunset": "dusk",
         "dusk": "dusk", "twilight": "dusk", "evening": "dusk", "golden hour": "dusk", "night": "night",
         "nighttime": "night", "midnight": "night", "moonlight": "night", "moonlit": "night", "starry": "night"}
WEATHER = {"rain": "rain", "rainy": "rain", "raining": "rain", "drizzle": "rain", "storm": "storm",
           "stormy": "storm", "thunderstorm": "storm", "snow": "snow", "snowy": "snow", "snowing": "snow",
           "winter": "snow", "blizzard": "snow", "fog": "fog", "foggy": "fog", "mist": "fog", "misty": "fog",
           "cloudy": "cloud", "overcast": "cloud", "sunny": "sun", "clear sky": "sun", "summer": "sun"}
GROUNDS = {"woods": "forest", "forest": "forest", "jungle": "forest", "grass": "grass", "meadow": "grass",
           "field": "grass", "park": "grass", "garden": "grass", "lawn": "grass", "farm": "grass",
           "farmyard": "grass", "countryside": "grass", "hill": "grass", "beach": "sand", "sand": "sand",
           "desert": "sand", "snow": "snow", "ice": "snow", "ocean": "water", "sea": "water", "lake": "water",
           "river": "water", "pond": "water", "swamp": "water", "city": "street", "street": "street",
           "road": "street", "highway": "street", "downtown": "street", "track": "street"}

# Words that end or disqualify an object phrase.
QUALITY_TAGS = re.compile(
    r"^(?:high quality|best quality|highly detailed|detailed|ultra detailed|masterpiece|4k|8k|hd|uhd|"
    r"sharp focus|sharp|beautiful|cinematic lighting|cinematic|award winning|trending on \w+|"
    r"professional|intricate|vivid colou?rs|soft lighting|studio lighting|golden hour|blue hour|sunset|"
    r"sunrise|night|at night|dusk|dawn|daylight|morning|evening|bokeh|wide angle|close-up)$", re.I)
# Nouns that describe the picture rather than an object in it ("Three objects in total.").
META_NOUNS = {"object", "item", "element", "scene", "composition", "lighting", "quality",
              "resolution", "aspect", "palette", "colour", "color", "style", "background", "backdrop"}
VERBS = {"is", "are", "was", "were", "be", "been", "has", "have", "had", "looks", "look",
         "seems", "feels", "should", "must", "can", "will", "make", "makes", "do", "does"}
STOP = {"in", "on", "at", "with", "for", "from", "that", "which", "who", "while", "near", "under",
        "into", "onto", "over", "through", "across", "against", "by", "to", "without", "holding",
        "inside", "outside", "around", "behind", "wearing", "eating", "made", "covered", "full"}
ING_NOUNS = {"king", "ring", "wing", "thing", "string", "spring", "swing", "building", "painting",
             "ceiling", "pudding", "dumpling", "earring", "sling", "sibling", "seedling", "duckling",
             "icing", "ping", "bling", "viking", "lightning", "stocking", "wedding", "clothing"}
STYLE_WORDS = (
    r"watercolou?r(?:\s+painting)?|oil painting|acrylic painting|pixel art|line art|pencil sketch|"
    r"charcoal sketch|sketch|cartoon|anime|manga|photorealistic|photograph|3d render|flat illustration|"
    r"vector art|low poly|isometric|ukiyo-e|art nouveau|art deco|comic book|claymation|origami|"
    r"stained glass|minimalist|impressionist|cubist|surrealist|children's book illustration"
)

IRREGULAR = {"mice": "mouse", "geese": "goose", "people": "person", "children": "child",
             "men": "man", "women": "woman", "teeth": "tooth", "feet": "foot", "leaves": "leaf",
             "knives": "knife", "wolves": "wolf", "shelves": "shelf", "loaves": "loaf",
             "potatoes": "potato", "tomatoes": "tomato", "mangoes": "mango", "heroes": "hero",
             "cookies": "cookie", "movies": "movie", "zombies": "zombie", "pies": "pie",
             "ties": "tie", "dice": "die", "buses": "bus", "lenses": "lens", "gases": "gas", "oxen": "ox",
             "cacti": "cactus", "fungi": "fungus"}
PLURAL = {v: k for k, v in IRREGULAR.items()}
# things of two parts named in the plural: "a pair of glasses" is one thing, not two glasses
PAIRED = {"glasses", "sunglasses", "spectacles", "goggles", "binoculars", "scissors", "shears", "pliers",
          "tongs", "tweezers", "trousers", "pants", "jeans", "shorts", "leggings", "pyjamas", "pajamas",
          "headphones", "earphones"}
INVARIANT = {"sheep", "fish", "deer", "moose", "glass", "grass", "bus", "dress", "cactus",
             "octopus", "canvas", "gas", "news", "series", "species", "chess", "moss", "cross",
             "compass", "class", "boss", "lens", "iris", "bass", "hummus", "asparagus", "lotus",
             "walrus", "virus", "platypus", "hippopotamus", "circus", "bonus", "atlas",
             *(PAIRED - {"glasses"})}  # "two glasses of milk" are glasses


def singular(word: str) -> str:
    w = word.lower()
    if w in IRREGULAR:
        return IRREGULAR[w]
    if w in INVARIANT or len(w) <= 3 or w.endswith(("ss", "us", "is")):
        return word
    if w.endswith("ies") and len(w) > 4:
        return word[:-3] + "y"
    if w.endswith(("sses", "ches", "shes", "xes", "zes")):
        return word[:-2]
    if w.endswith("ves") and w[:-3] + "f" in PLURAL.values():
        return word[:-3] + "f"
    if w.endswith("s"):
        return word[:-1]
    return word


def plural(word: str) -> str:
    w = word.lower()
    if w in PLURAL:
        return PLURAL[w]
    if w in INVARIANT and not w.endswith("ss"):
        return word
    if w.endswith("y") and len(w) > 1 and w[-2] not in "aeiou":
        return word[:-1] + "ies"
    if w.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"


def plural_phrase(noun: str) -> str:
    """'bowl of fruit' -> 'bowls of fruit'; 'fluffy cat' -> 'fluffy cats'."""
    head, sep, tail = noun.partition(" of ")
    words = head.split()
    words[-1] = plural(words[-1])
    return " ".join(words) + (sep + tail if sep else "")


def looks_plural(word: str) -> bool:
    w = word.lower()
    return w in IRREGULAR or (singular(w) != w and w not in INVARIANT)


def share_counts(counts: list[int], cap: int) -> list[int]:
    """Counts that fit `cap` in all, shared fairly: every object keeps at least one instance (while
    the cap allows) and the rest goes in proportion to what was asked, largest remainders first.
    [12, 8, 1, 1], 12 -> [6, 4, 1, 1]; counts that fit are returned as they are."""
    if sum(counts) <= cap:
        return list(counts)
    base = [1 if k < cap else 0 for k in range(len(counts))]
    spare = cap - sum(base)
    extra = [max(0, c - b) for c, b in zip(counts, base, strict=True)]
    total = sum(extra)
    if spare <= 0 or total == 0:
        return base
    quotas = [e * spare / total for e in extra]
    shares = [int(q) for q in quotas]
    order = sorted(range(len(counts)), key=lambda k: (-(quotas[k] - shares[k]), k))
    for k in order[: spare - sum(shares)]:
        shares[k] += 1
    return [b + s for b, s in zip(base, shares, strict=True)]


def count_word(n: int) -> str:
    return COUNT_WORDS.get(n, str(n))


def region_name(pos: str) -> str:
    """'upper-left' / 'left top' / 'centre' -> a REGIONS key."""
    p = pos.lower().replace("-", " ").replace("upper", "top").replace("lower", "bottom")
    p = " ".join(p.split())
    if p in ("centre", "middle", "centered", "centred"):
        return "center"
    parts = p.split()
    if len(parts) == 2 and parts[0] in ("left", "right"):  # "left top" -> "top left"
        p = f"{parts[1]} {parts[0]}"
    return p


def colour_words(text: str) -> list[str]:
    """The colour names a text says, in order: 'a grey and blue kite' -> ['gray', 'blue']; in
    Chinese text the words written as colours ('红色的苹果' -> ['red'])."""
    if has_han(text):
        found = [(m.start(), zh_words.COLOURS[m.group(1)]) for m in _ZH_COLOUR_RE.finditer(text)]
        found += [(m.start(), COLOURS[m.group().lower()]) for m in re.finditer(r"[A-Za-z]+", text)
                  if m.group().lower() in COLOURS]
        return [name for _, name in sorted(found)]
    return [COLOURS[w] for w in re.findall(r"[a-z]+", text.lower()) if w in COLOURS]


_ZH_COLOUR_RE = re.compile("(" + "|".join(sorted(zh_words.COLOURS, key=len, reverse=True)) + ")色")


def has_han(text: str) -> bool:
    """Whether a text has Chinese characters."""
    return zh_words.HAN_RE.search(text) is not None


def zh_label(noun: str, colour: str | None, measure: str) -> str:
    """One instance of a Chinese object as a short phrase: '一个红色的苹果', '一只cat'."""
    said = zh_colour(colour) if colour else ""
    return "一" + (measure or "个") + (said + "的" if said else "") + noun


def zh_colour(description: str) -> str:
    """English colour names in Chinese ('light blue' -> '浅蓝色', 'pink and yellow gradient' ->
    '粉色和黄色渐变'); any other description as it is."""
    words = description.split()
    if description in zh_words.COLOUR_NAMES_ZH:
        return zh_words.COLOUR_NAMES_ZH[description]
    if not words or not all(w in zh_words.COLOUR_NAMES_ZH for w in words):
        return description
    return "".join(zh_words.COLOUR_NAMES_ZH[w] for w in words)
