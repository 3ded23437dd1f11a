"""The networks: time embeddings, the U-Net, the text encoder, the VAE and its decoder, the latent adapter, the 2-D MLP.

    embeddings.py        sinusoidal timestep embeddings
    unet.py              the U-Net every image model uses, with hooks for labels and text
    text.py              tokenizer, text encoder, and the conditioner that feeds the U-Net's cross-attention
    clip_text.py         optional: CLIP's text encoder behind the same interface (local files only)
    vae.py               the latent autoencoder (built like diffusers' AutoencoderKL)
    vae_decoder.py       the VAE's decoding half as a network of its own (swap, widen)
    latent.py            images ⇄ scaled latents around unchanged samplers
    diffusers_export.py  moving the VAE to and from diffusers
    toy_mlp.py           the 2-D noise predictor of lesson 02

Networks are built from configs and know nothing of training or of the shipped checkpoints.
"""
