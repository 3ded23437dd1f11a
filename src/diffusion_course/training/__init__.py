"""Training: the image loop (AdamW, warm-up and cosine, EMA, resumable state), the 2-D loop, the VAE's and the text
encoder's training, and checkpoints.

    loop.py          `train_diffusion` and its config
    toy.py           `train_toy`, the 2-D loop of lesson 02
    vae.py           the VAE's loss and loop, and fine-tuning its decoder
    text_encoder.py  pretraining the text encoder on captions
    checkpoints.py   safetensors + JSON + manifest with sha256; loading checks all three
"""
from ..core.loss import diffusion_loss  # noqa: F401  (the loss every loop here minimises)
from .toy import train_toy  # noqa: F401


def __getattr__(name: str):  # names the old `training` module had that now live elsewhere: deprecated
    from .._moved import resolve

    return resolve("training", name)
