"""Perceptual image quality beside PSNR/SSIM: NIQE (no reference), VIFp and LPIPS (full reference).

Each metric lives in its own module and is imported from there (`srgan.quality.niqe`, ...); this
package imports nothing at import time. `srgan.quality.registry` names every metric srgan can report,
with its direction (higher or lower is better) and whether it needs the ground-truth image.
"""
