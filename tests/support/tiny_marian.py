"""A tiny random-weight MarianMT zh->en folder, as `Helsinki-NLP/opus-mt-zh-en` lays it out
(config.json, source.spm, target.spm, vocab.json, weights), built in code: sentencepiece trains
character vocabularies on a few lines, so nothing downloads."""

from __future__ import annotations

import io
import json
from pathlib import Path

ZH = ["一只猫坐在窗台上", "两只狗在公园里玩球", "一个红苹果", "夜空中的满月"]
EN = ["a cat sits on the windowsill", "two dogs play ball in the park", "a red apple", "a full moon at night"]


def _spm(lines: list[str], path: Path) -> list[str]:
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines * 3), model_writer=buf, vocab_size=40,
                                   model_type="char", character_coverage=1.0, bos_id=-1, eos_id=-1, unk_id=0,
                                   pad_id=-1, hard_vocab_limit=False, minloglevel=2)
    path.write_bytes(buf.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


# Helsinki-NLP/opus-mt-zh-en's shape (77.9M parameters), for measuring memory and time at full size
OPUS_MT_ZH_EN = {"vocab_size": 65001, "d_model": 512, "encoder_layers": 6, "decoder_layers": 6,
                 "encoder_attention_heads": 8, "decoder_attention_heads": 8, "encoder_ffn_dim": 2048,
                 "decoder_ffn_dim": 2048, "max_position_embeddings": 512}
TINY = {"d_model": 16, "encoder_layers": 1, "decoder_layers": 1, "encoder_attention_heads": 2,
        "decoder_attention_heads": 2, "encoder_ffn_dim": 32, "decoder_ffn_dim": 32, "max_position_embeddings": 64}


def tiny_marian(folder: Path, seed: int = 0, full_size: bool = False) -> Path:
    """The folder, tiny; `full_size`: opus-mt-zh-en's shape, its vocabulary padded with made-up
    pieces up to 65001 so that every id a random model emits decodes."""
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    raw = folder.parent / (folder.name + ".raw")
    raw.mkdir(parents=True, exist_ok=True)
    vocab = {"</s>": 0, "<unk>": 1, "<pad>": 2}
    for piece in _spm(ZH, raw / "source.spm") + _spm(EN, raw / "target.spm"):
        vocab.setdefault(piece, len(vocab))
    shape = OPUS_MT_ZH_EN if full_size else {**TINY, "vocab_size": len(vocab)}
    vocab.update((f"\u2581w{i}", i) for i in range(len(vocab), shape["vocab_size"]))
    (raw / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    tokenizer = MarianTokenizer(str(raw / "source.spm"), str(raw / "target.spm"), str(raw / "vocab.json"),
                                source_lang="zh", target_lang="en")
    tokenizer.save_pretrained(folder)
    torch.manual_seed(seed)
    config = MarianConfig(**shape, pad_token_id=2, eos_token_id=0, decoder_start_token_id=2, forced_eos_token_id=0)
    MarianMTModel(config).eval().save_pretrained(folder)
    return folder
