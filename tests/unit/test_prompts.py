"""The one prompt parser (wanimage.prompts) on a table of prompts -> parsed results: objects
(count, size, colour, noun, position), relations, background, style, kept text; image sets;
edit intents; and how the built-in engine hands a parse to its model (capped at 8 sprites)."""

from __future__ import annotations

import random
import threading
import time

import pytest

from wanimage.engines.builtin.engine import edit_scene, scene_plan
from wanimage.model.scenes import MAX_OBJECTS, layout_boxes
from wanimage.prompts import (
    REGIONS,
    EditIntent,
    ParsedPrompt,
    colour_words,
    is_chinese,
    parse,
    parse_edit,
    set_prompts,
    share_counts,
    source_images,
    split_set,
)


def summary(parsed: ParsedPrompt) -> str:
    """'3 big red apple @left | 1 cat' : one entry per object, in prompt order."""
    return " | ".join(
        " ".join(str(w) for w in (o.count, o.size, o.colour, o.noun) if w) + (f" @{o.where}" if o.where else "")
        for o in parsed.objects
    )


# prompt -> objects summary, extras: rel [(kind, a, [b, c])], bg, style, kept (exact lists)
TABLE: list[tuple[str, str, dict]] = [
    # number words, digits, articles and plurals (one vocabulary: "nine" is 9, "ten" is 10)
    ("a cat", "1 cat", {}),
    ("an owl", "1 owl", {}),
    ("one dog", "1 dog", {}),
    ("nine cats", "9 cat", {}),
    ("ten dogs on the left", "10 dog @left", {}),
    ("twenty stars", "20 star", {}),
    ("30 balloons", "20 balloon", {}),  # MAX_COUNT; the model then draws at most 8
    ("12 cupcakes", "12 cupcake", {}),
    ("a dozen eggs", "12 egg", {}),
    ("a pair of shoes", "2 shoe", {}),
    ("a pair of glasses", "1 glasses", {}),  # one thing named in the plural
    ("a pair of scissors on the left", "1 scissors @left", {}),
    ("scissors and jeans", "1 scissors | 1 jeans", {}),
    ("three bowls of cherries", "3 bowl of cherries", {}),  # the bowls are counted, the cherries stay
    ("a bowl of cherries", "1 bowl of cherries", {}),
    ("a couple of birds", "2 bird", {}),
    ("a few pears", "3 pear", {}),
    ("several ducks", "3 duck", {}),
    ("lots of fish", "5 fish", {}),
    ("cherries", "3 cherry", {}),
    ("mice and cheese", "3 mouse | 1 cheese", {}),
    ("two knives and three wolves", "2 knife | 3 wolf", {}),
    ("four boxes and two glasses", "4 box | 2 glass", {}),
    ("three cacti", "3 cactus", {}),
    ("an orange", "1 orange", {}),
    # colour and size words
    ("two red apples", "2 red apple", {}),
    ("a grey wolf", "1 gray wolf", {}),
    ("a black and white cat", "1 black and white cat", {}),
    ("three golden keys", "3 golden key", {}),
    ("a big red balloon and a tiny mouse", "1 big red balloon | 1 small mouse", {}),
    # regions and positions
    ("two red apples on the left and a cat on the right on a blue background",
     "2 red apple @left | 1 cat @right", {"bg": "blue"}),
    ("Draw a picture of three cherries at the top", "3 cherry @top", {}),
    ("5 stars in the top-left corner", "5 star @top left", {}),
    ("two puppies in the lower-left corner and a kitten in the upper-right",
     "2 puppy @bottom left | 1 kitten @top right", {}),
    ("a moon in the top right-hand corner", "1 moon @top right", {}),
    ("a house in the middle", "1 house @center", {}),
    # what not to draw: kept text, as "没有人" is below
    ("no people, a quiet street", "1 quiet street", {"kept": ["no people"]}),
    ("a room, without text", "1 room", {"kept": ["without text"]}),
    ("a notebook and a nothing-box", "1 notebook | 1 nothing-box", {}),  # words that start with "no"/"nothing"
    ("a boat centered", "1 boat @center", {}),
    ("an apple on the left-hand side of the picture", "1 apple @left", {}),
    # relations
    ("a cat above a dog", "1 cat | 1 dog", {"rel": [("above", 0, [1])]}),
    ("a cat between a dog and a bird", "1 cat | 1 dog | 1 bird", {"rel": [("between", 0, [1, 2])]}),
    ("a star above a house above a car", "1 star | 1 house | 1 car",
     {"rel": [("above", 0, [1]), ("above", 1, [2])]}),
    ("a cat on the left and a dog to the right of the cat", "1 cat @left | 1 dog", {"rel": [("right of", 1, [0])]}),
    # background, style, kept text
    ("a dog, a cat and a rocket on a pink and yellow gradient background", "1 dog | 1 cat | 1 rocket",
     {"bg": "pink and yellow gradient"}),
    ("a house on the left on a blue background", "1 house @left", {"bg": "blue"}),
    ("the background is green. a frog in the middle", "1 frog @center", {"bg": "green"}),
    ("a robot, anime style, on a purple background", "1 robot", {"style": "anime", "bg": "purple"}),
    ("a cat in flat style", "1 cat", {"style": "flat"}),
    ("a close-up photo of a red rose", "1 red rose", {"kept": ["close-up photo"]}),
    ("a sleeping cat on a mat, highly detailed, 4k", "1 sleeping cat", {"kept": ["highly detailed", "4k"]}),
    ("Three objects in total.", "", {"kept": ["Three objects in total"]}),
    ("the sun is setting over the ocean", "", {"kept": ["the sun is setting over the ocean"]}),
    # edit verbs and fillers are not part of the object
    ("add a yellow star at the top right", "1 yellow star @top right", {}),
    ("please generate an image of two dogs", "2 dog", {}),
    ('logo with the text "HELLO, world" in the center', "1 logo @center", {}),
    ('a sign saying "你好"', "1 sign", {}),  # Chinese only inside quotes: an English prompt
    # Chinese: numerals with measure words (the noun as written, the colour as the English name)
    ("一个红苹果", "1 red 苹果", {"lang": "zh"}),
    ("一只猫", "1 猫", {}),
    ("两只狗在公园里玩球", "2 狗", {"detail": ["在公园里玩球"]}),
    ("三个苹果", "3 苹果", {}),
    ("十二张卡片", "12 卡片", {}),
    ("3只小猫", "3 小猫", {}),
    ("一对耳环", "2 耳环", {}),  # a pair: two
    ("一双鞋", "2 鞋", {}),
    ("几只鸟", "3 鸟", {}),  # a few
    ("三十只鸟", "20 鸟", {}),  # MAX_COUNT
    ("苹果、香蕉和梨", "1 苹果 | 1 香蕉 | 1 梨", {}),
    ("孩子们在海滩上", "3 孩子", {"detail": ["在海滩上"]}),  # 们: a plural, no number
    # Chinese colour and size words; a colour on a noun ("白猫"), but not in a noun of its own ("白菜")
    ("一辆黄色出租车", "1 yellow 出租车", {}),
    ("红色的气球", "1 red 气球", {}),
    ("一只白猫和一只黑狗", "1 white 猫 | 1 black 狗", {}),
    ("白菜和黄瓜", "1 白菜 | 1 黄瓜", {}),
    ("一杯咖啡", "1 咖啡", {}),  # coffee, not brown
    ("一杯绿茶", "1 绿茶", {}),  # green tea is a drink of its own
    ("一个甜甜圈", "1 甜甜圈", {}),  # jieba: 甜甜 + 圈 (a measure word), one noun
    ("一枚火箭飞向太空", "1 火箭", {"detail": ["飞向太空"]}),  # jieba tags 飞 a noun
    ("咖啡色的狗", "1 brown 狗", {}),
    ("一只黑白的猫和一只浅蓝色的鸟", "1 black and white 猫 | 1 light blue 鸟", {}),
    ("一个巨大的红色气球", "1 big red 气球", {}),
    ("一只小小的老鼠", "1 small 老鼠", {}),
    # Chinese regions
    ("三个苹果在左边，一只猫在右上角", "3 苹果 @left | 1 猫 @top right", {}),
    ("左下角有一朵花", "1 花 @bottom left", {}),
    ("在画面左边画三个苹果", "3 苹果 @left", {}),
    ("左边是一只猫，右边是一只狗", "1 猫 @left | 1 狗 @right", {}),
    ("一个苹果在画面中间", "1 苹果 @center", {}),
    ("一只狗在右下方", "1 狗 @bottom right", {}),
    # Chinese relations
    ("猫在狗的上面", "1 猫 | 1 狗", {"rel": [("above", 0, [1])]}),
    ("一只鸟在树的上方", "1 鸟 | 1 树", {"rel": [("above", 0, [1])]}),
    ("狗的上面有一只猫", "1 猫 | 1 狗", {"rel": [("above", 0, [1])]}),
    ("一只猫在狗的左边", "1 猫 | 1 狗", {"rel": [("left of", 0, [1])]}),
    ("一只猫坐在狗的旁边", "1 猫 | 1 狗", {"rel": [("next to", 0, [1])]}),
    ("一只狗在猫和鸟之间", "1 狗 | 1 猫 | 1 鸟", {"rel": [("between", 0, [1, 2])]}),
    # Chinese background, style, modifiers, negation and kept text
    ("背景是蓝色。一只狗", "1 狗", {"bg": "blue"}),
    ("蓝色背景上的一朵花", "1 花", {"bg": "blue"}),
    ("一只狗，粉色和黄色渐变背景", "1 狗", {"bg": "pink and yellow gradient"}),
    ("以星空为背景的城堡", "1 城堡", {"bg": "星空"}),
    ("水彩风格的房子", "1 房子", {"style": "水彩"}),
    ("一只猫，水彩", "1 猫", {"style": "水彩"}),
    ("梵高风格的星空", "1 星空", {"style": "梵高"}),
    ("一只戴着红色围巾的小猫坐在窗台上", "1 小猫", {"modifier": ["戴着红色围巾"], "detail": ["坐在窗台上"]}),
    ("夜空中的满月", "1 满月", {"modifier": ["夜空中"]}),
    ("一个房间，没有人", "1 房间", {"kept": ["没有人"]}),
    ("不要出现文字", "", {"kept": ["不要出现文字"]}),
    ("一个房间，无文字", "1 房间", {"kept": ["无文字"]}),
    ("一架无人机和一座别墅", "1 无人机 | 1 别墅", {}),  # 无 and 别 start these nouns, no negation
    ("无数星星", "5 星星", {}),
    ("一本数学书", "1 数学书", {}),  # 数 is a few only before a measure word
    ("高清，细节丰富", "", {"kept": ["高清", "细节丰富"]}),
    ("请画三只猫", "3 猫", {}),
    ("一张猫的照片", "1 猫", {}),
    ("公园里有两只狗", "2 狗", {"detail": ["在公园里"]}),
    # Traditional characters (read as Simplified) and Chinese mixed with English
    ("紅色的蘋果在左邊", "1 red 苹果 @left", {"lang": "zh-Hant"}),
    ("两只cat在左边", "2 cat @left", {}),
    ("一个red apple", "1 red apple", {}),
    ("a cat on the left，一只狗在右边", "1 cat @left | 1 狗 @right", {"lang": "zh"}),
    ("a red apple and a cat，蓝色背景", "1 red apple | 1 cat", {"bg": "blue"}),
]


@pytest.mark.parametrize(("prompt", "objects", "extra"), TABLE, ids=[t[0][:40] for t in TABLE])
def test_parse(prompt: str, objects: str, extra: dict):
    parsed = parse(prompt)
    assert summary(parsed) == objects
    assert parsed.relations == extra.get("rel", [])
    assert parsed.background == extra.get("bg")
    assert parsed.style == extra.get("style")
    if "kept" in extra:
        assert parsed.kept == extra["kept"]
    for key in ("detail", "modifier"):  # Chinese: the words around the noun, as written
        if key in extra:
            assert [getattr(o, key) for o in parsed.objects] == extra[key]
    assert parsed.lang == extra.get("lang", "zh" if is_chinese(prompt) else "en")
    assert all(o.where is None or o.where in REGIONS for o in parsed.objects)


SETS: list[tuple[str, int, str, list[str], list[str]]] = [
    # prompt, n -> shared context, parts, per-image prompts
    ("image 1: a cat. image 2: a dog", 4, "", ["a cat", "a dog"], ["a cat", "a dog"]),
    ("flat style. Image 1: a cat image 2: a dog", 1, "flat style", ["a cat"], ["a cat, flat style"]),
    ("image 1: a cat. image 2: a dog. image 3: a bird", 2, "", ["a cat", "a dog"], ["a cat", "a dog"]),
    ("image 1: a cat image 3: a dog", 4, "", ["a cat", "", "a dog"], ["a cat", "image 1: a cat image 3: a dog", "a dog"]),
    ("Image 2：a fox; image 1: a hen", 4, "", ["a hen", "a fox"], ["a hen", "a fox"]),
    ("Panel 1: a cat. Panel 2: a dog", 2, "", ["a cat", "a dog"], ["a cat", "a dog"]),
    ("a cat", 3, "a cat", [], ["a cat"] * 3),
    ("the dog of image 2. on a beach", 2, "the dog of image 2. on a beach", [],  # a reference, not a part
     ["the dog of image 2. on a beach"] * 2),
    ("1. a cat 2. a dog", 2, "1. a cat 2. a dog", [], ["1. a cat 2. a dog"] * 2),  # English: unchanged
    # Chinese: 图1：, 第一张：, 第一张是, "1. 2." lists, 分别; shared context joined with "，"
    ("第一张：一只猫；第二张：一只狗", 4, "", ["一只猫", "一只狗"], ["一只猫", "一只狗"]),
    ("水彩风格。图1：一只猫 图2：一只狗", 2, "水彩风格", ["一只猫", "一只狗"], ["一只猫，水彩风格", "一只狗，水彩风格"]),
    ("第一张是一只猫，第二张是一只狗", 2, "", ["一只猫", "一只狗"], ["一只猫", "一只狗"]),
    ("1. 一只猫 2. 一只狗 3. 一只鸟", 2, "", ["一只猫", "一只狗"], ["一只猫", "一只狗"]),
    ("1、红苹果；2、绿苹果", 2, "", ["红苹果", "绿苹果"], ["红苹果", "绿苹果"]),
    ("生成三张图，分别是猫、狗和鸟，水彩风格", 3, "水彩风格", ["猫", "狗", "鸟"],
     ["猫，水彩风格", "狗，水彩风格", "鸟，水彩风格"]),
    ("image 1: 一只猫 image 2: 一只狗", 2, "", ["一只猫", "一只狗"], ["一只猫", "一只狗"]),
    ("第二张图里的猫", 2, "第二张图里的猫", [], ["第二张图里的猫"] * 2),  # a reference, not a part
    ("价格1.5元的苹果", 2, "价格1.5元的苹果", [], ["价格1.5元的苹果"] * 2),
]


@pytest.mark.parametrize(("prompt", "n", "shared", "parts", "per_image"), SETS, ids=[s[0][:40] for s in SETS])
def test_image_sets(prompt: str, n: int, shared: str, parts: list[str], per_image: list[str]):
    assert split_set(prompt, n) == (shared, parts)
    assert set_prompts(prompt, n) == per_image


EDITS: list[tuple[str, EditIntent]] = [
    ("remove the cat", EditIntent(remove=True)),
    ("get rid of the tree", EditIntent(remove=True)),
    ("replace the cat with a red dog", EditIntent(target="a red dog")),
    ("change the cat into a tiger", EditIntent(target="a tiger")),
    ("change the background to blue", EditIntent(target="blue", background="blue")),
    ("move the cat to the upper left", EditIntent(move=True, move_to="top left")),
    ("shift the ball to the centre", EditIntent(move=True, move_to="center")),
    ("move the cat from the first box to the second", EditIntent(move=True)),
    ("put the object of image 1 into the box of image 2", EditIntent(image_refs=(1, 2), sources=(1,))),
    ("place the dog from picture 2 into photo 3", EditIntent(image_refs=(2, 3), sources=(2,))),
    # "of image k" names where a thing goes, not what to take: no source, so no pixels move
    ("put a red balloon in the box of image 1 and a dog in the box of image 2",
     EditIntent(image_refs=(1, 2))),
    # Chinese edits
    ("删除左边的树", EditIntent(remove=True)),
    ("把猫换成一只狗", EditIntent(target="一只狗")),
    ("用一只狗替换猫", EditIntent(target="一只狗")),
    ("把背景换成蓝色", EditIntent(target="蓝色", background="blue")),
    ("把猫移到左上角", EditIntent(move=True, move_to="top left")),
    ("把图1的猫放到图2的框里", EditIntent(image_refs=(1, 2), sources=(1,))),
    ("把第二张图的狗移到第一张图片里", EditIntent(move=True, image_refs=(2, 1), sources=(2,))),
    ("图片3里的猫", EditIntent(image_refs=(3,))),
]

# prompt -> the images whose content it puts or moves (prompts.source_images)
SOURCES: list[tuple[str, list[int]]] = [
    ("put the cat of image 1 into the box of image 2", [1]),
    ("put the object of image 1 into the box", [1]),
    ("put the cat in the box of image 1 into the box of image 2", [1]),
    ("move the dog from image 2 into image 1", [2]),
    ("add the hat from picture 1 to the man in image 2", [1]),
    ("take the dog from image 1 and put it in the box", [1]),
    ("place image 1's dog into the box of image 2", [1]),
    ("Put the dog of image 1 and the cat of image 2 into the boxes of image 3", [1, 2]),
    ("put a red balloon in the box of image 1 and a dog in the box of image 2", []),
    ("put a hat on the dog in image 1", []),
    ("make image 1 look like image 2", []),
    ("the cat of image 1 on a blue background", []),  # no put / move verb
    ("a dog like the one in image 1", []),
    ("把图1的猫放到图2的框里", [1]),
    ("在图1的框里放一个红气球", []),  # 在 图1: where it goes
    ("给图2中的人加上图1的帽子", [1]),
    ("让图1看起来像图2", []),
    ("图1的猫，蓝色背景", []),
]


@pytest.mark.parametrize(("prompt", "sources"), SOURCES, ids=[s[0][:50] for s in SOURCES])
def test_source_images_are_what_a_put_or_move_takes(prompt: str, sources: list[int]):
    assert source_images(prompt) == sources


# prompt -> (time of day, weather, ground)
SCENES: list[tuple[str, tuple]] = [
    ("a grizzly in the woods", (None, None, "forest")),
    ("downtown at dusk", ("dusk", None, "street")),
    ("a fox in the snow at night", ("night", "snow", "snow")),
    ("a rainy afternoon on the beach", ("day", "rain", "sand")),
    ("a snowman and a sunflower", (None, None, None)),  # whole words only
    ('a sign saying "night and snow"', (None, None, None)),  # quoted text is not scenery
]


@pytest.mark.parametrize(("prompt", "scene"), SCENES, ids=[s[0] for s in SCENES])
def test_scene_words(prompt: str, scene: tuple):
    s = parse(prompt).scene
    assert (s.time, s.weather, s.ground) == scene


@pytest.mark.parametrize(("counts", "cap", "shared"), [
    ([12, 8, 1, 1], 12, [6, 4, 1, 1]), ([12, 8, 1, 1], 8, [3, 3, 1, 1]), ([3, 2], 12, [3, 2]),
    ([20], 8, [8]), ([1] * 10, 8, [1] * 8 + [0, 0]), ([5, 5, 5], 8, [3, 3, 2]),
])
def test_share_counts_keeps_every_object_while_it_can(counts, cap, shared):
    assert share_counts(counts, cap) == shared and sum(share_counts(counts, cap)) <= cap


@pytest.mark.parametrize(("prompt", "intent"), EDITS, ids=[e[0] for e in EDITS])
def test_edit_intent(prompt: str, intent: EditIntent):
    assert parse_edit(prompt) == intent


def test_the_built_in_engine_hands_the_model_a_scene_and_caps_the_sprites():
    scene = scene_plan("nine blue cats on the left and a pistol on a grey and white gradient background")
    [cats] = scene.objects  # blocked objects never reach the model
    assert (cats.phrase, cats.count, cats.where, cats.region, cats.colour, cats.subject) == \
        ("a blue cat", 8, "left", REGIONS["left"], "blue", "cat")
    assert scene.background == [(128, 128, 128), (240, 240, 240)] and scene.gradient
    boxes = layout_boxes(scene, 1.0, random.Random(0))
    assert len(boxes) == MAX_OBJECTS and all(b[2] <= 0.5 + 0.05 for _, b in boxes)
    # more than the model draws: every object keeps a share (not 8 cats and nothing else)
    scene = scene_plan("twelve cats and eight dogs and a red car on the left and a house on the right")
    assert [(o.subject, o.count) for o in scene.objects] == [("cat", 3), ("dog", 3), ("car", 1), ("house", 1)]
    assert sorted({o.subject for o, _ in layout_boxes(scene, 1.0, random.Random(0))}) == ["car", "cat", "dog", "house"]
    # scene words paint a sky and a ground when no background colour is asked
    scene = scene_plan("a grizzly in the woods at dusk")
    assert scene.ground is not None and len(scene.background) == 2 and scene.gradient
    assert scene_plan("a grizzly in the woods on a blue background").ground is None
    scene, edit = edit_scene("change the background to pink", parse_edit("change the background to pink"))
    assert edit.background_only and edit.background == (240, 120, 180) and not edit.remove
    scene, edit = edit_scene("replace the cat with two red apples", parse_edit("replace the cat with two red apples"))
    assert [(o.phrase, o.count, o.colour) for o in scene.objects] == [("a red apple", 2, "red")]


def test_chinese_objects_keep_the_noun_and_speak_chinese_labels():
    [apple] = parse("一个红苹果").objects
    assert (apple.noun, apple.colour, apple.measure, apple.lang, apple.label) == ("苹果", "red", "个", "zh", "一个红色的苹果")
    [cat] = parse("两只cat在左边").objects
    assert cat.label == "一只cat"
    [dog] = parse("狗").objects  # no measure word written: the usual one
    assert dog.label == "一只狗"
    assert colour_words("一个红色的苹果和蓝色的天空") == ["red", "blue"] and colour_words("白菜") == []
    assert colour_words("a grey and blue kite") == ["gray", "blue"]  # English as before


def test_the_chinese_tools_load_once_and_from_any_thread():
    from wanimage.prompts import chinese

    threads = [threading.Thread(target=chinese.warm) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    started = time.perf_counter()
    for _ in range(50):
        parse("左边三个红苹果，一只猫在一只狗的上面，蓝色背景")
    assert time.perf_counter() - started < 1.0  # the dictionary is not loaded per call
