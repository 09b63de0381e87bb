"""srgan: GAN-based single-image super-resolution (SRGAN, EDSR, ESRGAN/RRDB, WDRN).

`import srgan` stays light: the public functions below are resolved on first use, so importing the
package loads neither torch models nor matplotlib nor a web server.
"""

from importlib import import_module

__version__ = "0.1.0"

# public name -> module that defines it
_PUBLIC = {
    "create_model": "srgan.archs.registry",
    "list_models": "srgan.models",
    "load_model": "srgan.models",
    "save_model": "srgan.modelfiles",
    "upscale": "srgan.inference",
    "matlab_bicubic_resize": "srgan.resize",
    "psnr": "srgan.metrics",
    "ssim": "srgan.metrics",
    "read_image": "srgan.imageio",
    "write_image": "srgan.imageio",
    "SrganError": "srgan.errors",
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'srgan' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
