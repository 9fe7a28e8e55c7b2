"""Tiny random-weight components, built in code, for every family: tests, the CPU engine-overhead
benchmark, and `checkpoint = "tiny:<family>"` in an engine config to check a deployment's wiring
offline (the images are noise). Nothing here downloads: tokenizers are built from an in-code
vocabulary, configs are written out, weights come from a fixed torch seed.

The recipe follows diffusers' own `get_dummy_components` tests, with the Hub-only parts
(tokenizers, the tiny T5 and Qwen2-VL processor) replaced by in-code equivalents."""

from __future__ import annotations

import contextlib
import string
import threading
from collections.abc import Callable
from functools import cache

import torch

QWEN_SPECIALS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% else %}<|vision_start|><|image_pad|><|vision_end|>{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


# ------------------------------------------------------------------------------- tokenizers


def _byte_chars() -> list[str]:
    """The 256 printable stand-ins of byte-level BPE (GPT-2's bytes_to_unicode)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs, strict=True))]


def qwen_tokenizer(chat_template: str | None = None):
    """Byte-level Qwen2 tokenizer: ids 0-255 are bytes, the Qwen special tokens follow (264 ids)."""
    from transformers import Qwen2Tokenizer

    vocab = {c: i for i, c in enumerate(_byte_chars())}
    vocab |= {tok: 256 + i for i, tok in enumerate(QWEN_SPECIALS)}
    tok = Qwen2Tokenizer(vocab=vocab, merges=[], chat_template=chat_template,
                         additional_special_tokens=list(QWEN_SPECIALS[1:]))
    tok.model_max_length = 4096
    return tok


QWEN_VOCAB = 256 + len(QWEN_SPECIALS)
QWEN_ID = {tok: 256 + i for i, tok in enumerate(QWEN_SPECIALS)}


def clip_tokenizer():
    """Character-level CLIP tokenizer over printable ASCII (CLIP's word-end markers included)."""
    from transformers import CLIPTokenizer

    chars = [c for c in string.printable if not c.isspace()]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in chars:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    tok = CLIPTokenizer(vocab=vocab, merges=[])
    tok.model_max_length = 77
    return tok


def t5_tokenizer():
    """Character-level T5 (Unigram) tokenizer: pad 0, eos 1, unk 2, then characters."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(c, -3.0) for c in string.printable if not c.isspace()]
    pieces += [(f"<extra_id_{i}>", 0.0) for i in range(7, -1, -1)]
    tok = T5Tokenizer(vocab=pieces, extra_ids=8)
    tok.model_max_length = 512
    return tok


T5_VOCAB = 4 + len([c for c in string.printable if not c.isspace()]) + 8


def qwen2vl_processor():
    """Qwen2VLProcessor without the torchvision video processor (transformers 5.x type-checks it)."""
    from transformers import Qwen2VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    class _NoVideoProcessor(Qwen2VLProcessor):
        def check_argument_for_proper_class(self, argument_name, argument):
            if argument is None:
                return None
            return super().check_argument_for_proper_class(argument_name, argument)

    images = Qwen2VLImageProcessorPil(min_pixels=16 * 16, max_pixels=64 * 64)
    return _NoVideoProcessor(image_processor=images, tokenizer=qwen_tokenizer(), video_processor=None)


# ------------------------------------------------------------------------------- families


def _seeded(build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    torch.manual_seed(0)
    return build().eval()


def qwen_image() -> dict:
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    transformer = _seeded(lambda: QwenImageTransformer2DModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16,
        num_attention_heads=3, joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(8, 4, 4)))
    z = 4
    vae = _seeded(lambda: AutoencoderKLQwenImage(
        base_dim=z * 6, z_dim=z, dim_mult=[1, 2, 4], num_res_blocks=1, temperal_downsample=[False, True],
        latents_mean=[0.0] * z, latents_std=[1.0] * z))
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 2, "vocab_size": QWEN_VOCAB, "rope_theta": 1000000.0,
            "bos_token_id": QWEN_ID["<|endoftext|>"], "eos_token_id": QWEN_ID["<|im_end|>"],
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
        },
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16},
        hidden_size=16, vocab_size=QWEN_VOCAB, bos_token_id=QWEN_ID["<|endoftext|>"],
        eos_token_id=QWEN_ID["<|im_end|>"], pad_token_id=QWEN_ID["<|endoftext|>"],
        vision_start_token_id=QWEN_ID["<|vision_start|>"], vision_end_token_id=QWEN_ID["<|vision_end|>"],
        vision_token_id=QWEN_ID["<|vision_pad|>"], image_token_id=QWEN_ID["<|image_pad|>"],
        video_token_id=QWEN_ID["<|video_pad|>"],
    )
    text_encoder = _seeded(lambda: Qwen2_5_VLForConditionalGeneration(config))
    return {
        "transformer": transformer, "vae": vae, "scheduler": FlowMatchEulerDiscreteScheduler(),
        "text_encoder": text_encoder, "tokenizer": qwen_tokenizer(), "processor": qwen2vl_processor(),
    }


def _clip_config(projection: bool = False):
    from transformers import CLIPTextConfig

    tok = clip_tokenizer()
    return CLIPTextConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        hidden_size=32, intermediate_size=37, layer_norm_eps=1e-05, num_attention_heads=4,
        num_hidden_layers=2, vocab_size=len(tok), hidden_act="gelu", projection_dim=32,
    )


def _t5_encoder(d_model: int = 32):
    from transformers import T5Config, T5EncoderModel

    config = T5Config(vocab_size=T5_VOCAB, d_model=d_model, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                      relative_attention_num_buckets=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return _seeded(lambda: T5EncoderModel(config))


def _flux_vae():
    from diffusers import AutoencoderKL

    return _seeded(lambda: AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(4, 4), layers_per_block=1, latent_channels=2,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609,
        scaling_factor=1.5035, sample_size=32, mid_block_add_attention=False))


def flux(fill: bool = False) -> dict:
    """FLUX.1 (dev, Kontext share a transformer shape); `fill` adds the masked-image channels."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import CLIPTextModel

    packed = 2 * 4  # latent channels x 2x2 patch
    transformer = _seeded(lambda: FluxTransformer2DModel(
        patch_size=1, in_channels=packed * 2 + 4 * 4 if fill else packed, out_channels=packed,
        num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8], guidance_embeds=True))
    return {
        "transformer": transformer, "vae": _flux_vae(), "scheduler": FlowMatchEulerDiscreteScheduler(),
        "text_encoder": _seeded(lambda: CLIPTextModel(_clip_config())), "tokenizer": clip_tokenizer(),
        "text_encoder_2": _t5_encoder(), "tokenizer_2": t5_tokenizer(),
    }


def sdxl() -> dict:
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    unet = _seeded(lambda: UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=80, cross_attention_dim=64))  # 80 = 6 * 8 + 32
    vae = _seeded(lambda: AutoencoderKL(
        block_out_channels=[8, 8], in_channels=3, out_channels=3, norm_num_groups=4,
        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4, sample_size=64, mid_block_add_attention=False))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                       beta_schedule="scaled_linear", timestep_spacing="leading")
    return {
        "unet": unet, "vae": vae, "scheduler": scheduler,
        "text_encoder": _seeded(lambda: CLIPTextModel(_clip_config())), "tokenizer": clip_tokenizer(),
        "text_encoder_2": _seeded(lambda: CLIPTextModelWithProjection(_clip_config())),
        "tokenizer_2": clip_tokenizer(),
    }


def sd() -> dict:
    """Stable Diffusion 1.x / 2.x (SD-Turbo's layout): one CLIP text encoder, a 4-channel UNet,
    Euler with trailing timesteps as SD-Turbo's scheduler config has; no safety checker."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel

    unet = _seeded(lambda: UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, cross_attention_dim=32, norm_num_groups=32))
    vae = _seeded(lambda: AutoencoderKL(
        block_out_channels=[8, 8], in_channels=3, out_channels=3, norm_num_groups=4,
        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4, sample_size=64, mid_block_add_attention=False))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       timestep_spacing="trailing", steps_offset=1)
    return {"unet": unet, "vae": vae, "scheduler": scheduler, "tokenizer": clip_tokenizer(),
            "text_encoder": _seeded(lambda: CLIPTextModel(_clip_config())),
            "safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}


def taesd() -> dict:
    """A tiny AutoencoderTiny (TAESD's layout, fewer channels): the `vae = "tiny:taesd"` of tests,
    in the 4-channel latent space of the tiny SD and SDXL pipelines above."""
    from diffusers import AutoencoderTiny

    return {"vae": _seeded(lambda: AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1), latent_channels=4))}


def zimage(omni: bool = False) -> dict:
    """Z-Image Turbo; `omni` adds the SigLIP image encoder of the Omni/Edit weights. Omni's
    pipeline encodes references with `image.bfloat16()`, so its VAE is built in bfloat16."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    def build():
        t = ZImageTransformer2DModel(
            all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=32, n_layers=2, n_refiner_layers=1,
            n_heads=2, n_kv_heads=2, norm_eps=1e-5, qk_norm=True, cap_feat_dim=16, rope_theta=256.0,
            t_scale=1000.0, axes_dims=[8, 4, 4], axes_lens=[1024, 256, 256], siglip_feat_dim=16 if omni else None)
        with torch.no_grad():  # allocated with torch.empty: fill for determinism
            for pad in (t.x_pad_token, t.cap_pad_token, t.siglip_pad_token):
                if pad is not None:
                    pad.fill_(1.0)
        return t

    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16 if omni else default_dtype)
    try:
        vae = _seeded(lambda: AutoencoderKL(
            in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2,
            up_block_types=["UpDecoderBlock2D"] * 2, block_out_channels=[16, 16], layers_per_block=1,
            latent_channels=16, norm_num_groups=8, sample_size=32, scaling_factor=0.3611, shift_factor=0.1159,
            mid_block_add_attention=False))
    finally:
        torch.set_default_dtype(default_dtype)
    config = Qwen3Config(hidden_size=16, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, vocab_size=QWEN_VOCAB, max_position_embeddings=4096,
                         bos_token_id=QWEN_ID["<|endoftext|>"], eos_token_id=QWEN_ID["<|im_end|>"])
    out = {"transformer": _seeded(build), "vae": vae, "scheduler": FlowMatchEulerDiscreteScheduler(),
           "text_encoder": _seeded(lambda: Qwen3Model(config)), "tokenizer": qwen_tokenizer(CHATML)}
    if omni:
        from transformers import Siglip2VisionConfig, Siglip2VisionModel
        from transformers.models.siglip2.image_processing_pil_siglip2 import (
            Siglip2ImageProcessorPil,
        )

        vision = Siglip2VisionConfig(hidden_size=16, intermediate_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, patch_size=16, num_patches=64)
        out["siglip"] = _seeded(lambda: Siglip2VisionModel(vision))
        out["siglip_processor"] = Siglip2ImageProcessorPil(patch_size=16, max_num_patches=64)
    return out


def flux2() -> dict:
    """FLUX.2 [klein]: Qwen3 text encoder (pass text_encoder_out_layers=[1] to the pipelines)."""
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    transformer = _seeded(lambda: Flux2Transformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=16, timestep_guidance_channels=256,
        axes_dims_rope=[4, 4, 4, 4], guidance_embeds=False))
    config = Qwen3Config(intermediate_size=16, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, vocab_size=QWEN_VOCAB, max_position_embeddings=4096,
                         bos_token_id=QWEN_ID["<|endoftext|>"], eos_token_id=QWEN_ID["<|im_end|>"])
    vae = _seeded(lambda: AutoencoderKLFlux2(
        sample_size=32, in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(4, 4), layers_per_block=1,
        latent_channels=1, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
        mid_block_add_attention=False))
    return {"transformer": transformer, "vae": vae, "scheduler": FlowMatchEulerDiscreteScheduler(),
            "text_encoder": _seeded(lambda: Qwen3ForCausalLM(config)), "tokenizer": qwen_tokenizer(CHATML),
            "is_distilled": False}


def wan() -> dict:
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanTransformer3DModel

    vae = _seeded(lambda: AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                           temperal_downsample=[False, True, True]))
    transformer = _seeded(lambda: WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32))
    return {"transformer": transformer, "vae": vae, "scheduler": FlowMatchEulerDiscreteScheduler(shift=7.0),
            "text_encoder": _t5_encoder(), "tokenizer": t5_tokenizer()}


TINY: dict[str, Callable[[], dict]] = {
    "zimage": zimage,
    "zimage:omni": lambda: zimage(omni=True),
    "flux2": flux2,
    "wan": wan,
    "qwen_image": qwen_image,
    "flux": flux,
    "flux:fill": lambda: flux(fill=True),
    "sdxl": sdxl,
    "sd": sd,
    "taesd": taesd,
}


_BUILD_LOCK = threading.Lock()  # seeded builds draw from torch's global RNG: one at a time


def _components(family: str, variant: str) -> dict:
    """Built once per process. Two devices' engines load at once (WANIMAGE_DEVICES=cpu,cpu):
    without the lock their seeded builds interleave and the cached weights depend on timing."""
    with _BUILD_LOCK:
        return _build_components(family, variant)


@cache
def _build_components(family: str, variant: str) -> dict:
    try:
        build = TINY[family if not variant else f"{family}:{variant}"]
    except KeyError:
        raise FileNotFoundError(
            f"no tiny components for {family!r}{' ' + variant if variant else ''}; "
            f"tiny checkpoints: {', '.join('tiny:' + k for k in TINY)}"
        ) from None
    return build()


def tiny_component(spec: str, name: str):
    """One shared tiny component, e.g. tiny_component("taesd", "vae")."""
    family, _, variant = spec.partition(":")
    return _components(family, variant)[name]


def tiny_pipeline(pipeline_cls, spec: str):
    """`spec` is what follows "tiny:" in a checkpoint: a family, optionally ":variant" (e.g. fill).
    Components are built once per process and shared by every pipeline class that uses them."""
    family, _, variant = spec.partition(":")
    components = _components(family, variant)
    import inspect

    wanted = set(inspect.signature(pipeline_cls.__init__).parameters) - {"self"}
    kwargs = {k: v for k, v in components.items() if k in wanted}
    for name, param in inspect.signature(pipeline_cls.__init__).parameters.items():
        if name not in kwargs and name != "self" and param.default is inspect.Parameter.empty:
            kwargs[name] = None
    pipe = pipeline_cls(**kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


SPEEDUPS: list[bool] = []  # non-empty while tiny_cpu_speedups is on


@contextlib.contextmanager
def tiny_cpu_speedups():
    """For tests and CPU benchmarks of tiny pipelines. The Qwen edit pipelines resize references
    to ~1 MP whatever the model size: their size constants are patched (7-37 s -> 0.1 s per call).
    One torch thread: on a shared 2-core machine tiny ops run ~30x faster without OpenMP threads
    spinning against each other (measured 3.5 s -> 0.1 s for a tiny SDXL call)."""
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_inpaint as inpaint
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_plus as plus

    saved = plus.CONDITION_IMAGE_SIZE, plus.VAE_IMAGE_SIZE, inpaint.calculate_dimensions, torch.get_num_threads()
    original = inpaint.calculate_dimensions
    plus.CONDITION_IMAGE_SIZE, plus.VAE_IMAGE_SIZE = 32 * 32, 48 * 48
    inpaint.calculate_dimensions = lambda area, ratio: original(64 * 48, ratio)
    torch.set_num_threads(1)
    SPEEDUPS.append(True)  # context-parallel followers apply them too (ranks.py): same sizes on every rank
    try:
        yield
    finally:
        SPEEDUPS.pop()
        plus.CONDITION_IMAGE_SIZE, plus.VAE_IMAGE_SIZE, inpaint.calculate_dimensions = saved[:3]
        torch.set_num_threads(saved[3])
