"""The built-in planner on a table of prompts -> plans (objects, counts, colours, sizes,
positions, relations, background, style, kept text), checked against the layout it emits;
the LLM rewriter's answer parsing and box rules."""

from __future__ import annotations

import json
import random
import time

import pytest

from wanimage.prompts import REGIONS, is_chinese, plural, singular
from wanimage.thinking import Brief, BuiltinPlanner, Plan, build_planner
from wanimage.thinking.builtin import MAX_INSTANCES, plan_set, plan_text
from wanimage.thinking.llm import (
    CHINESE_HINT,
    QUALITY_PATIENCE,
    SYSTEM_PROMPT,
    LlmFailure,
    LlmLayoutItem,
    LlmPlanner,
    chat_url,
    parse_answer,
    pixel_layout,
)
from wanimage.types import LayoutItem

W, H = 1024, 768  # not square: boxes must be in output pixels, not fractions of a square


def summary(plan: Plan) -> str:
    return " | ".join(
        f"{o.count} " + (f"{o.size} " if o.size else "") + (f"{o.colour} " if o.colour else "") + o.noun
        + (f" @{o.where}" if o.where else "")
        for o in plan.objects
    )


# prompt, objects as "count [size] [colour] noun [@where]", extra checks:
#   bg / style: exact; kept: substrings of kept text; rel: (a, relation, b[, c]) checked on the
#   layout; says: substrings of the revised prompt
TABLE: list[tuple[str, str, dict]] = [
    # counts as words and digits, plurals
    ("three red apples on the left and a cat above a dog", "3 red apple @left | 1 cat | 1 dog",
     {"rel": [("cat", "above", "dog")], "says": ["Three red apples on the left", "above the dog"]}),
    ("seven green frogs", "7 green frog", {"says": ["Seven green frogs"]}),
    ("12 cupcakes", "12 cupcake", {"says": ["Twelve cupcakes"]}),
    ("a dozen eggs in the center", "12 egg @center", {}),
    ("5 stars in the top-left corner", "5 star @top left", {"says": ["top-left corner"]}),
    ("ten candles, oil painting", "10 candle", {"style": "oil painting"}),
    ("a pair of shoes in the bottom right corner", "2 shoe @bottom right", {}),
    ("several butterflies at the top", "3 butterfly @top", {"says": ["Three butterflies"]}),
    ("a couple of bananas, an apple and a pear", "2 banana | 1 apple | 1 pear", {}),
    ("two knives and three forks", "2 knife | 3 fork", {"says": ["Two knives", "three forks"]}),
    ("mice and cheese", "3 mouse | 1 cheese", {"says": ["Three mice"]}),
    ("a wolf and three sheep, in the style of Van Gogh", "1 wolf | 3 sheep",
     {"style": "Van Gogh", "says": ["three sheep"]}),
    ("Six little chicks in a row", "6 small chick", {"says": ["Six small chicks in a row"]}),
    ("12 cupcakes and 3 candles", "9 cupcake | 3 candle", {"says": ["Nine cupcakes (of twelve asked)"]}),  # 12 boxes in all
    ("two puppies", "2 puppy", {"says": ["Two puppies"]}),
    ("four boxes and two glasses", "4 box | 2 glass", {"says": ["Four boxes", "two glasses"]}),
    ("a pair of glasses and two pairs of scissors", "1 glasses | 2 scissors",
     {"says": ["One pair of glasses", "two pairs of scissors"]}),
    ("three glasses of milk and a bowl of cherries", "3 glass of milk | 1 bowl of cherries",
     {"says": ["Three glasses of milk", "one bowl of cherries"]}),  # was "Three glasseses of milk"
    # colours and sizes
    ("a big red balloon next to a small house", "1 big red balloon | 1 small house",
     {"rel": [("balloon", "next to", "house")], "bigger": ("balloon", "house")}),
    ("a tiny mouse beside a huge elephant", "1 small mouse | 1 big elephant", {"bigger": ("elephant", "mouse")}),
    ("a black and white cat and a brown dog", "1 black and white cat | 1 brown dog", {}),
    ("a grey wolf howling at the moon at night", "1 gray wolf", {"says": ["howling at the moon at night"]}),
    ("three golden keys on a black background", "3 golden key", {"bg": "black"}),
    ("a yellow taxi, an orange bus and a red truck", "1 yellow taxi | 1 orange bus | 1 red truck", {}),
    ("one orange pumpkin on the left and two purple grapes on the right",
     "1 orange pumpkin @left | 2 purple grape @right", {}),
    ("a red heart", "1 red heart", {}),
    ("a pink flamingo standing in a lake", "1 pink flamingo", {"says": ["standing in a lake"]}),
    # absolute positions and corners
    ("two cats on the right, on a blue background", "2 cat @right", {"bg": "blue"}),
    ("Draw three yellow ducks at the bottom", "3 yellow duck @bottom", {}),
    ("Please generate an image of 4 blue fish on the right side", "4 blue fish @right", {}),
    ("a house in the middle, a tree on the left and a car on the right",
     "1 house @center | 1 tree @left | 1 car @right", {}),
    ("two puppies in the lower-left corner and a kitten in the upper-right",
     "2 puppy @bottom left | 1 kitten @top right", {}),
    ("a tree on the left and the sun in the upper right corner, against a pink backdrop",
     "1 tree @left | 1 sun @top right", {"bg": "pink"}),
    ("a snowman at the center on a gray background", "1 snowman @center", {"bg": "gray"}),
    ("a crown at the top, a ring at the bottom", "1 crown @top | 1 ring @bottom", {}),
    ("a moon in the top right-hand corner", "1 moon @top right", {}),
    ("a boat centered", "1 boat @center", {}),
    ("an apple on the left-hand side of the picture", "1 apple @left", {}),
    # relations
    ("a cat between a dog and a bird", "1 cat | 1 dog | 1 bird", {"rel": [("cat", "between", "dog", "bird")]}),
    ("two teddy bears between a lamp and a clock", "2 teddy bear | 1 lamp | 1 clock",
     {"rel": [("teddy bear", "between", "lamp", "clock")]}),
    ("a blue car to the left of a yellow bus, pixel art style", "1 blue car | 1 yellow bus",
     {"style": "pixel art", "rel": [("car", "left of", "bus")]}),
    ("a bicycle to the right of a tree", "1 bicycle | 1 tree", {"rel": [("bicycle", "right of", "tree")]}),
    ("a green turtle below a white cloud", "1 green turtle | 1 white cloud", {"rel": [("turtle", "below", "cloud")]}),
    ("an umbrella over a small dog", "1 umbrella | 1 small dog", {"rel": [("umbrella", "above", "dog")]}),
    ("a lamp underneath a table", "1 lamp | 1 table", {"rel": [("lamp", "below", "table")]}),
    ("a ladybug on top of a leaf", "1 ladybug | 1 leaf", {"rel": [("ladybug", "above", "leaf")]}),
    ("a star above a house above a car", "1 star | 1 house | 1 car",
     {"rel": [("star", "above", "house"), ("house", "above", "car")]}),
    ("a rocket above the moon. two stars below the moon", "1 rocket | 1 moon | 2 star",
     {"rel": [("rocket", "above", "moon"), ("star", "below", "moon")]}),
    ("a cat on the left and a dog to the right of the cat", "1 cat @left | 1 dog",
     {"rel": [("dog", "right of", "cat")]}),
    ("a bowl of fruit next to a cup of coffee", "1 bowl of fruit | 1 cup of coffee",
     {"rel": [("bowl of fruit", "next to", "cup of coffee")]}),
    ("a dragon flying over a castle, fantasy art", "1 dragon | 1 castle",
     {"rel": [("dragon", "above", "castle")], "kept": ["fantasy art"]}),
    ("an elephant in front of a tree", "1 elephant | 1 tree", {"says": ["in front of the tree"]}),
    ("a sun above two trees on the left", "1 sun | 2 tree @left", {"rel": [("sun", "above", "tree")]}),
    # background, style, text it does not understand
    ("eight balloons on a light blue background", "8 balloon", {"bg": "light blue"}),
    ("the background is green. a frog in the middle", "1 frog @center", {"bg": "green"}),
    ("a watercolor painting of a lighthouse at sunset", "1 lighthouse", {"style": "watercolor painting"}),
    ("a cinematic shot of a castle, golden hour", "1 castle", {"kept": ["cinematic shot", "golden hour"]}),
    ("a close-up photo of a red rose", "1 red rose", {"kept": ["close-up photo"]}),
    ("a sleeping cat on a mat, highly detailed, 4k", "1 sleeping cat", {"kept": ["highly detailed", "4k"]}),
    ("a red fox in the snow", "1 red fox", {"says": ["red fox in the snow"]}),
    ("an astronaut riding a horse", "1 astronaut", {"says": ["riding a horse"]}),
    ('logo with the text "HELLO, world" in the center', "1 logo @center", {"says": ['"HELLO, world"']}),
    ("a robot, anime style, on a purple background", "1 robot", {"style": "anime", "bg": "purple"}),
    ("cat", "1 cat", {}),
    ("the sun is setting over the ocean", "", {}),
    ("masterpiece, best quality", "", {}),
]


def _boxes(plan: Plan, noun: str) -> list:
    label_end = noun if is_chinese(noun) else " " + noun  # Chinese labels: "一只猫"
    return [it.box for it in plan.layout or [] if it.label.endswith(label_end)]


def _centre(boxes: list) -> tuple[float, float]:
    return (sum((b.x1 + b.x2) / 2 for b in boxes) / len(boxes), sum((b.y1 + b.y2) / 2 for b in boxes) / len(boxes))


def test_the_table_is_large_enough():
    assert len(TABLE) >= 50


@pytest.mark.parametrize(("prompt", "expected", "extra"), TABLE, ids=[t[0][:40] for t in TABLE])
def test_plan(prompt: str, expected: str, extra: dict):
    plan = plan_text(prompt, W, H)
    assert summary(plan) == expected
    assert plan.planner == "builtin"
    assert plan.background == extra.get("bg")
    assert plan.style == extra.get("style")
    for words in extra.get("kept", []):
        assert any(words in k for k in plan.kept) and words in plan.revised_prompt
    for words in extra.get("says", []):
        assert words in plan.revised_prompt, plan.revised_prompt
    if not plan.objects:  # nothing understood: the prompt goes on exactly as given, no layout
        assert plan.revised_prompt == prompt and plan.layout is None
        return
    check_layout(plan)
    if not any(w in prompt for w in ("in front of", "behind")):  # those overlap on purpose
        check_no_overlap(plan)
    for rel in extra.get("rel", []):
        check_relation(plan, *rel)
    if "bigger" in extra:
        big, small = (_boxes(plan, n)[0] for n in extra["bigger"])
        assert (big.x2 - big.x1) * (big.y2 - big.y1) > 2 * (small.x2 - small.x1) * (small.y2 - small.y1)


def check_layout(plan: Plan) -> None:
    """Boxes inside the image, one per instance, each object where the prompt put it."""
    assert plan.layout is not None
    for item in plan.layout:
        b = item.box
        assert 0 <= b.x1 < b.x2 <= W and 0 <= b.y1 < b.y2 <= H, item
    assert len(plan.layout) == min(sum(o.count for o in plan.objects), MAX_INSTANCES)
    for o in plan.objects:
        boxes = [it.box for it in plan.layout if it.label == o.label]
        assert len(boxes) >= min(o.count, MAX_INSTANCES - 1) or len(plan.layout) == MAX_INSTANCES
        if o.where:
            x1, y1, x2, y2 = REGIONS[o.where]
            for b in boxes:
                cx, cy = (b.x1 + b.x2) / 2 / W, (b.y1 + b.y2) / 2 / H
                assert x1 <= cx <= x2 and y1 <= cy <= y2, (o, b)
        # colour words reach the engine's label; the revised prompt spells the count out
        if o.colour:
            assert o.colour in o.label
        assert (o.noun if o.count == 1 else plural(o.noun.split(" of ")[0].split()[-1])) in plan.revised_prompt


def check_no_overlap(plan: Plan) -> None:
    boxes = [it.box for it in plan.layout]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            inter = max(0, min(a.x2, b.x2) - max(a.x1, b.x1)) * max(0, min(a.y2, b.y2) - max(a.y1, b.y1))
            smaller = min((a.x2 - a.x1) * (a.y2 - a.y1), (b.x2 - b.x1) * (b.y2 - b.y1))
            assert inter <= 0.05 * smaller, (a, b)


def check_relation(plan: Plan, a: str, kind: str, b: str, c: str | None = None) -> None:
    (ax, ay), (bx, by) = _centre(_boxes(plan, a)), _centre(_boxes(plan, b))
    if kind == "above":
        assert ay < by
    elif kind == "below":
        assert ay > by
    elif kind in ("left of", "next to"):
        assert ax < bx
    elif kind == "right of":
        assert ax > bx
    elif kind == "between":
        cx, _ = _centre(_boxes(plan, c or ""))
        assert min(bx, cx) < ax < max(bx, cx)


# A Chinese prompt's plan is said in Chinese, count, layout and style written out as the English
# wording does ("a red apple" -> "One red apple."); English parts of a mixed prompt stay English.
# prompt, revised prompt, relations checked on the layout (a, kind, b[, c]) by noun
ZH_TABLE: list[tuple[str, str, list[tuple]]] = [
    ("一个红苹果", "一个红色的苹果。", []),
    ("左边三个红苹果，一只猫在一只狗的上面",
     "三个红色的苹果，位于画面左侧；一只猫，在狗的上方；一只狗，位于画面右下角。共五个物体。", [("猫", "above", "狗")]),
    ("两只狗在公园里玩球", "两只狗在公园里玩球。", []),
    ("一个巨大的红色气球和一只小老鼠", "一个红色的大气球，位于画面左侧；一只小老鼠，位于画面右侧。共两个物体。", []),
    ("十二个纸杯蛋糕和三根蜡烛", "九个纸杯蛋糕（要求十二个），位于画面左侧；三根蜡烛，位于画面右侧。共十二个物体。"
     "一张图最多画十二个物体。", []),
    ("一只猫，水彩风格，粉色和黄色渐变背景", "一只猫，背景为粉色和黄色渐变，水彩风格。", []),
    ("一只猫在狗和鸟之间", "一只猫，在狗和鸟之间；一只狗；一只鸟。共三个物体。", [("猫", "between", "狗", "鸟")]),
    ("四十只猫", "十二只猫（要求四十只）。一张图最多画十二个物体。", []),
    ("一只戴着红色围巾的小猫坐在窗台上", "一只戴着红色围巾的小猫坐在窗台上。", []),
    ("一辆蓝色的汽车在一辆黄色公交车的左边，像素风",
     "一辆蓝色的汽车，在公交车的左边；一辆黄色的公交车，位于画面右侧，像素风格。共两个物体。", [("汽车", "left of", "公交车")]),
    ("右上角有一个太阳，左边一棵树", "一个太阳，位于画面右上角；一棵树，位于画面左侧。共两个物体。", []),
    ("一只狗，不要文字", "一只狗，不要文字。", []),
    ("紅色的蘋果在左邊", "一個紅色的蘋果，位於畫面左側。", []),  # Traditional in, Traditional out
    ("两只cat在左边", "两只cat，位于画面左侧。", []),  # mixed: the English noun stays
    ("a red apple，背景是浅蓝色", "One red apple，背景为浅蓝色。", []),
    ("高清，细节丰富", "高清，细节丰富", []),  # nothing to lay out: the prompt as given
]


@pytest.mark.parametrize(("prompt", "revised", "rels"), ZH_TABLE, ids=[t[0][:20] for t in ZH_TABLE])
def test_plan_chinese(prompt: str, revised: str, rels: list[tuple]):
    plan = plan_text(prompt, W, H)
    assert plan.revised_prompt == revised
    if not plan.objects:
        assert plan.layout is None
        return
    assert plan.layout is not None and len(plan.layout) == min(sum(o.count for o in plan.objects), MAX_INSTANCES)
    for item in plan.layout:
        assert 0 <= item.box.x1 < item.box.x2 <= W and 0 <= item.box.y1 < item.box.y2 <= H
    check_no_overlap(plan)
    for rel in rels:
        check_relation(plan, *rel)


def test_chinese_layout_labels_are_read_back_by_the_built_in_engine():
    """Labels in the prompt's language: the engine finds the noun and the colour in them, and the
    background in the Chinese revised prompt."""
    from wanimage.engines.builtin.engine import layout_subject, paint_colour
    from wanimage.engines.builtin.engine import scene_plan as parse_prompt

    plan = plan_text("左边三个红苹果，一只猫在一只狗的上面，蓝色背景", W, H)
    assert [it.label for it in plan.layout] == ["一个红色的苹果"] * 3 + ["一只猫", "一只狗"]
    assert (layout_subject("一个红色的苹果"), paint_colour("一个红色的苹果")) == ("苹果", "red")
    assert parse_prompt(plan.revised_prompt).background == parse_prompt("on a blue background").background
    gradient = plan_text("一只猫，粉色和黄色渐变背景", W, H)
    assert parse_prompt(gradient.revised_prompt).gradient


def test_chinese_image_sets_are_planned_per_image_in_chinese():
    plan = plan_set("水彩风格。第一张：一只猫；第二张：两只狗", 2, W, H)
    assert plan.revised_prompt == "图1：一只猫，水彩风格。图2：两只狗，水彩风格。"
    assert [len(p.layout) for p in plan.images] == [1, 2]


# ------------------------------------------------------------------ more than the table


@pytest.mark.parametrize(("word", "one"), [
    ("apples", "apple"), ("cherries", "cherry"), ("boxes", "box"), ("glasses", "glass"), ("mice", "mouse"),
    ("leaves", "leaf"), ("knives", "knife"), ("sheep", "sheep"), ("buses", "bus"), ("houses", "house"),
    ("cookies", "cookie"), ("potatoes", "potato"), ("shoes", "shoe"), ("dishes", "dish"), ("cactus", "cactus"),
])
def test_singular_and_plural_round_trip(word: str, one: str):
    assert singular(word) == one
    assert plural(one) == word or one == word


def test_plans_are_deterministic_and_scale_with_the_output():
    a, b = plan_text("two cats on the left and a dog", W, H), plan_text("two cats on the left and a dog", W, H)
    assert a == b
    small = plan_text("two cats on the left and a dog", W // 2, H // 2)
    assert [it.label for it in small.layout] == [it.label for it in a.layout]
    assert all(s.box.x2 <= W // 2 and s.box.y2 <= H // 2 for s in small.layout)


def test_words_keep_their_case_except_sentence_case():
    assert plan_text("Cat", W, H).revised_prompt == "One cat."
    assert plan_text("Red Apples on the left", W, H).revised_prompt.startswith("Three red apples on the left")
    assert plan_text("please EXPLODE now", W, H).revised_prompt == "One EXPLODE now."
    assert plan_text("two iPhones and the Eiffel Tower", W, H).objects[1].noun == "Eiffel Tower"


def test_counts_beyond_the_layout_cap_say_what_is_drawn():
    plan = plan_text("twenty stars", W, H)
    assert plan.objects[0].count == MAX_INSTANCES == len(plan.layout)
    assert plan.revised_prompt.startswith("Twelve stars (of twenty asked)")
    assert "At most twelve objects are drawn in one picture." in plan.revised_prompt


def test_a_capped_plan_shares_the_boxes_and_never_promises_more_than_it_lays_out():
    """'twelve cats and eight dogs and ...' must not promise 22 and draw 8 cats."""
    plan = plan_text("twelve cats and eight dogs and a red car on the left and a house on the right", W, H)
    assert [(o.noun, o.count) for o in plan.objects] == [("cat", 6), ("dog", 4), ("car", 1), ("house", 1)]
    assert plan.revised_prompt == ("Six cats (of twelve asked), four dogs (of eight asked), one red car on the left "
                                   "and one house on the right. Twelve objects in total. At most twelve objects "
                                   "are drawn in one picture.")
    labels = [it.label for it in plan.layout]
    assert len(labels) == sum(o.count for o in plan.objects) == MAX_INSTANCES
    assert {lb: labels.count(lb) for lb in labels} == {"a cat": 6, "a dog": 4, "a red car": 1, "a house": 1}
    many = plan_text("40 cats on the left and a dog", W, H)
    assert many.revised_prompt.startswith("Eleven cats (of 40 asked) on the left and one dog")
    crowd = plan_text(", ".join(f"a {w}" for w in "cat dog fox owl bee car bus van hat cup pen key bag box".split()), W, H)
    assert len(crowd.layout) == 12 and crowd.revised_prompt.endswith("; not drawn: a bag, a box.")


def test_the_built_in_model_draws_every_box_of_a_full_plan():
    from wanimage.engines.builtin.engine import text_scene
    from wanimage.model.scenes import layout_boxes

    plan = plan_text("twelve cats and eight dogs and a red car on the left and a house on the right", W, H)
    scene = text_scene(plan.revised_prompt, plan.layout, W, H)
    assert len(layout_boxes(scene, W / H, random.Random(0))) == len(plan.layout) == MAX_INSTANCES


def test_the_built_in_engine_reads_the_background_from_the_revised_prompt():
    """The built-in model replaces its own objects by the layout but parses the background
    from the prompt it gets: the revised prompt must keep a form it understands."""
    from wanimage.engines.builtin.engine import scene_plan as parse_prompt

    plan = plan_text("a frog in the middle. the background is green", W, H)
    assert parse_prompt(plan.revised_prompt).background == [(60, 170, 60)]


def test_image_sets_split_into_per_image_plans_with_shared_context():
    prompt = "On a yellow background, watercolor style. Image 1: a cat on the left. Image 2: two cats and a dog"
    plan = plan_set(prompt, 4, W, H)
    assert [summary(p) for p in plan.images] == ["1 cat @left", "2 cat | 1 dog"]
    assert all(p.background == "yellow" and p.style == "watercolor" for p in plan.images)
    assert plan.image_prompts[0].startswith("One cat on the left") and plan.revised_prompt.startswith("Image 1: ")
    assert plan.layout is None and len(plan_set("image 1: a cat. image 2: a dog. image 3: a bird", 2, W, H).images) == 2


def test_planner_protocol_on_a_request():
    planner = BuiltinPlanner()
    plan = planner.plan(Brief("three red apples on the left", W, H))
    assert plan.planner == "builtin" and len(plan.layout) == 3
    assert all(isinstance(it, LayoutItem) for it in plan.layout)
    sets = planner.plan(Brief("image 1: a cat. image 2: a dog", W, H, n=2, sequential=True))
    assert len(sets.images) == 2


def test_long_and_odd_prompts_are_fast_and_never_raise():
    prompts = ["a red apple, " * 400, "and " * 1000, "(((", "\u00e9\u00e8 \u732b \U0001f431", "on the left of the",
               "between and", "image 1:", '"' * 99, "x" * 5000,
               "一个红苹果，" * 400, "和" * 2000, "在的上面" * 300, "的" * 5000, "第一张" * 100, "「」" * 100]
    from wanimage.prompts import warm

    warm()  # the one-off load of jieba is not the parser's cost per prompt
    started = time.perf_counter()
    for p in prompts:
        plan = plan_text(p, W, H)
        assert plan.revised_prompt
        assert plan.layout is None or len(plan.layout) <= MAX_INSTANCES
    assert time.perf_counter() - started < 2.0


def test_build_planner_follows_the_settings(tmp_path):
    from wanimage.config import Settings

    assert isinstance(build_planner(Settings(data_dir=tmp_path)), BuiltinPlanner)
    llm = build_planner(Settings(data_dir=tmp_path, thinking_llm_url="http://127.0.0.1:9/v1", thinking_llm_model="m"))
    assert isinstance(llm, LlmPlanner) and llm.url == "http://127.0.0.1:9/v1/chat/completions"
    llm.close()


# ------------------------------------------------------------------ the LLM rewriter's rules


def test_chat_url():
    assert chat_url("http://h:1/v1/") == "http://h:1/v1/chat/completions"
    assert chat_url("http://h:1/v1/chat/completions") == "http://h:1/v1/chat/completions"


def test_answers_with_fences_and_think_blocks_parse():
    content = '<think>plan it</think>```json\n{"revised_prompt": "Two cats.", "layout": []}\n```'
    assert parse_answer(content).revised_prompt == "Two cats."
    assert parse_answer('Sure! {"revised_prompt": "x"} Hope this helps').layout is None


@pytest.mark.parametrize("content", ["not json", '{"layout": []}', '{"revised_prompt": ""}',
                                     '{"revised_prompt": "x", "layout": [{"label": "a", "box": [1, 2]}]}', "[1, 2]"])
def test_bad_answers_are_refused(content: str):
    with pytest.raises(LlmFailure):
        parse_answer(content)


def test_boxes_are_clamped_a_little_and_refused_when_mostly_outside():
    items = [LlmLayoutItem(label="a cat", box=(-10, 0, 200, 800))]  # a few pixels outside
    (item,) = pixel_layout(items, W, H)
    assert (item.box.x1, item.box.y1, item.box.x2, item.box.y2) == (0, 0, 200, H)
    fractions = pixel_layout([LlmLayoutItem(label="a dog", box=(0.5, 0.5, 1.0, 1.0))], W, H)
    assert fractions[0].box.x1 == W // 2 and fractions[0].box.y2 == H
    for box in [(2000, 0, 2300, 100), (100, 100, 50, 200), (-500, -500, 10, 10)]:
        with pytest.raises(LlmFailure, match="bad layout"):
            pixel_layout([LlmLayoutItem(label="x", box=box)], W, H)


# thinking_mode's levels: "fast" never calls the LLM; "quality" waits QUALITY_PATIENCE times longer.
@pytest.mark.parametrize(("effort", "calls", "timeout"), [
    ("fast", 0, None), ("balanced", 1, 2.0), ("quality", 1, 2.0 * QUALITY_PATIENCE),
])
def test_thinking_effort_chooses_the_planner_and_the_llms_time(effort, calls, timeout):
    import httpx

    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"]["read"])
        return httpx.Response(200, json={"choices": [{"message": {"content": '{"revised_prompt": "Two cats."}'}}]})

    planner = LlmPlanner("http://127.0.0.1:9/v1", "m", None, 2.0, fallback=BuiltinPlanner())
    planner.client = httpx.Client(transport=httpx.MockTransport(answer))
    plan = planner.plan(Brief("two cats", W, H, effort=effort))
    assert len(seen) == calls and plan.planner == ("builtin" if effort == "fast" else "llm")
    assert seen == ([timeout] if calls else [])


@pytest.mark.parametrize(("prompt", "hint"), [("两只猫在左边", True), ("紅色的蘋果", True), ("two cats", False),
                                             ('a sign saying "你好"', False)])
def test_the_llm_is_told_to_answer_in_the_prompts_language(prompt: str, hint: bool):
    import httpx

    sent = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"choices": [{"message": {"content": '{"revised_prompt": "两只猫。"}'}}]})

    planner = LlmPlanner("http://127.0.0.1:9/v1", "m", None, 2.0, fallback=BuiltinPlanner())
    planner.client = httpx.Client(transport=httpx.MockTransport(answer))
    assert planner.plan(Brief(prompt, W, H)).revised_prompt == "两只猫。"
    system, user = sent[0]["messages"]
    said = " ".join(SYSTEM_PROMPT.split())
    assert system["content"] == SYSTEM_PROMPT and "in the language of the user's prompt" in said
    assert "a Chinese prompt gets a Chinese revised prompt" in said and "keeps its mix" in said
    assert user["content"].endswith(f"Prompt: {prompt}") and (CHINESE_HINT in user["content"]) == hint
