"""`python -m diffusion_course.train vae ...` at a size a test can afford: 256 training images, a small VAE. Used by
tests/test_resume.py as a real subprocess that is killed and resumed."""
import sys
from dataclasses import replace

from diffusion_course import train
from diffusion_course.recipes import latent

latent.TRAIN_IMAGES = 256  # the recipe's training images (and the 5,000 its scale factor is measured on)
latent.VAE_CONFIG = replace(latent.VAE_CONFIG, block_out_channels=(8, 16), norm_num_groups=4, mid_attention=False)
latent.train_vae_recipe.__defaults__ = (latent.RunOptions(), 0, latent.VAE_CONFIG)
_report = latent.reconstruction_report
latent.reconstruction_report = lambda vae, n=1000, device=None: _report(vae, 64, device)

if __name__ == "__main__":
    train.main(sys.argv[1:])
