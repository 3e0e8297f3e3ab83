"""Data: ImageNet's on-disk layout, the deterministic stand-in, latents encoded once, batch order."""
