"""What each Model Studio image model id accepts on the messages endpoint: the hosted rules where
they are published (input images, n, sizes, which parameters apply), in one table.

Every id here is accepted by both dialects; which engine draws it is configuration
(engines/factories.py). Sources: the Model Studio API references as mirrored publicly (Qwen-Image
text-to-image: n fixed at 1 and five sizes; Qwen-Image-Edit-Plus/-Max: 1-3 images, n 1-6, sides
512-2048; Qwen-Image-2.0: 0-3 images, n 1-6, 512*512 to 2048*2048 pixels; wan2.6-t2i: n 1-4
default 4, 1280*1280 default, 768*768 to 1440*1440 pixels, ratio 1:4 to 4:1; wan2.6-image: 1-4
images, n 1-4 default 4, 1K = 1280*1280 and 2K tiers in the last image's ratio). A rule marked
`confirmed=False` was not found published: it is wanimage's choice, written in docs/api.md
("Model ids") and pinned by tests/unit/test_model_rules.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..types import MODELS


@dataclass(frozen=True)
class SizeRule:
    """Which `size` values an id takes and what it draws without one."""

    tiers: dict[str, int] = field(default_factory=dict)  # tier -> side of its square pixel budget
    fixed: tuple[tuple[int, int], ...] = ()  # only these W*H (Qwen-Image's five)
    min_pixels: int = 768 * 768
    max_pixels: int = 2048 * 2048
    side_range: tuple[int, int] | None = None  # each side within (low, high)
    max_ratio: float = 8.0
    default_t2i: str = "2K"  # a tier or "W*H"
    default_edit: str = "2K"  # a tier: its pixel budget in the last input image's ratio
    four_k: bool = False  # "4K" for pure text-to-image (wan2.7-image-pro)


@dataclass(frozen=True)
class ModelRules:
    id: str
    family: str  # wan2.7 | wan2.6 | qwen-image | qwen-image-edit | qwen-image-2.0
    min_images: int
    max_images: int
    n_default: int
    n_max: int
    sizes: SizeRule
    max_prompt_chars: int
    sets: bool = False  # enable_sequential
    boxes: bool = False  # bbox_list
    palette: bool = False  # color_palette
    thinking: bool = False  # thinking_mode (other ids rewrite with prompt_extend, default true)
    confirmed: bool = True  # every rule above found published
    note: str = ""  # what docs/api.md says of the choices made

    @property
    def text_to_image(self) -> bool:
        return self.min_images == 0

    @property
    def edits(self) -> bool:
        return self.max_images > 0


_WAN27_SIZES = SizeRule(tiers={"1K": 1024, "2K": 2048})
_QWEN_FIXED = ((1664, 928), (1472, 1104), (1328, 1328), (1104, 1472), (928, 1664))
_QWEN_EDIT_SIZES = SizeRule(min_pixels=512 * 512, side_range=(512, 2048), default_t2i="1K", default_edit="1K",
                            tiers={"1K": 1024})
_QWEN2_SIZES = SizeRule(min_pixels=512 * 512, default_t2i="2048*2048", default_edit="2K",
                        tiers={"1K": 1024, "2K": 2048})
_WAN26_T2I_SIZES = SizeRule(min_pixels=768 * 768, max_pixels=1440 * 1440, max_ratio=4.0, default_t2i="1280*1280")
_WAN26_IMAGE_SIZES = SizeRule(tiers={"1K": 1280, "2K": 2048}, min_pixels=768 * 768, max_ratio=4.0,
                              default_edit="1K")

RULES: dict[str, ModelRules] = {r.id: r for r in (
    ModelRules("wan2.7-image", "wan2.7", 0, 9, 1, 4, _WAN27_SIZES, 5000, sets=True, boxes=True, palette=True,
               thinking=True),
    ModelRules("wan2.7-image-pro", "wan2.7", 0, 9, 1, 4, SizeRule(tiers={"1K": 1024, "2K": 2048, "4K": 4096},
               four_k=True), 5000, sets=True, boxes=True, palette=True, thinking=True),
    ModelRules("wan2.6-t2i", "wan2.6", 0, 0, 4, 4, _WAN26_T2I_SIZES, 2100),
    ModelRules("wan2.6-image", "wan2.6", 1, 4, 4, 4, _WAN26_IMAGE_SIZES, 2000, confirmed=False,
               note="W*H sizes: 768*768 to 2048*2048 pixels, ratio up to 4:1; enable_interleave=true "
                    "(interleaved text and images) is refused"),
    *(ModelRules(i, "qwen-image", 0, 0, 1, 1, SizeRule(fixed=_QWEN_FIXED, default_t2i="1664*928"), 800,
                 confirmed=False, note="default size 1664*928 (published defaults differ: 1664*928 and 1328*1328)")
      for i in ("qwen-image", "qwen-image-plus", "qwen-image-max")),
    ModelRules("qwen-image-edit", "qwen-image-edit", 1, 1, 1, 1, _QWEN_EDIT_SIZES, 800, confirmed=False,
               note="one input image and one output; size as qwen-image-edit-plus"),
    *(ModelRules(i, "qwen-image-edit", 1, 3, 1, 6, _QWEN_EDIT_SIZES, 800)
      for i in ("qwen-image-edit-plus", "qwen-image-edit-max")),
    *(ModelRules(i, "qwen-image-2.0", 0, 3, 1, 6, _QWEN2_SIZES, 800, confirmed=False,
                 note="text-to-image draws 2048*2048 without a size; ratio up to 8:1")
      for i in ("qwen-image-2.0", "qwen-image-2.0-pro")),
)}

MODEL_IDS = MODELS
assert set(RULES) == set(MODELS), "every accepted id has its rules"


def rules_for(model: str) -> ModelRules:
    return RULES[model]


def ids_with(attribute: str) -> list[str]:
    """The ids on which a parameter applies, for the messages that refuse it elsewhere."""
    return [r.id for r in RULES.values() if getattr(r, attribute)]
