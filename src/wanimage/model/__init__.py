"""The built-in model: a small text-to-sprite generator plus a learned upsampler, trained by this
project on Fluent Emoji Flat renders. Imports nothing from the rest of wanimage.

Modules, one job each:
  text.py      frozen MiniLM token encoder (B, T, 384), and its sentence vectors
  concepts.py  open vocabulary: an object phrase -> the nearest known concept (label and tags)
  net.py       config dataclass, SpriteUNet (flow matching, cross-attention), Upsampler
  sampling.py  k-diffusion-style schedules and samplers
  data.py      fetch-free dataset build: rasterise SVGs, join captions, encode captions
  captions.py  caption templates and colour names
  scenes.py    scene plan (objects, regions, background; parsed by the caller) -> sprite boxes
  pipeline.py  the whole generator: prompts -> sprites -> upsampled -> composited images
  train.py     resumable training loop
  commands.py  argparse subcommands `data` and `train`
"""
