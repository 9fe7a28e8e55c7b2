"""The prompt parser's cost, English beside Chinese, measured in one run: the one-off load of
jieba's dictionary and OpenCC's tables (`wanimage.prompts.warm`, done by the server at start-up),
then the built-in planner (`plan_text`: parse, layout, revised prompt) per prompt.

    .venv/bin/python bench/parse_speed.py [--rounds 250]
"""

from __future__ import annotations

import argparse
import time

ZH = ["左边三个红苹果，一只猫在一只狗的上面，蓝色背景", "一只戴着红色围巾的小猫坐在窗台上", "两只狗在公园里玩球",
      "紅色的蘋果在左邊"]
EN = ["three red apples on the left and a cat above a dog, on a blue background",
      "a cat wearing a red scarf sitting on a windowsill", "two dogs playing ball in the park",
      "a red apple on the left"]


def per_prompt_ms(prompts: list[str], rounds: int) -> float:
    from wanimage.thinking.builtin import plan_text

    for p in prompts:
        plan_text(p, 768, 768)
    started = time.perf_counter()
    for _ in range(rounds):
        for p in prompts:
            plan_text(p, 768, 768)
    return (time.perf_counter() - started) / (rounds * len(prompts)) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=250)
    args = ap.parse_args()
    started = time.perf_counter()
    from wanimage.prompts import warm

    warm()
    print(f"load jieba + OpenCC (once): {time.perf_counter() - started:.2f} s")
    print(f"plan_text, English: {per_prompt_ms(EN, args.rounds):.2f} ms a prompt")
    print(f"plan_text, Chinese: {per_prompt_ms(ZH, args.rounds):.2f} ms a prompt")


if __name__ == "__main__":
    main()
