"""What the benchmark scripts say about the machine they ran on."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU's name from /proc/cpuinfo with family, model and widest vector ISA, or what `platform` knows.

    Cloud guests often report only "AMD EPYC"; family and model tell the generation apart (Zen 3 is
    family 25, Zen 5 family 26), and AVX-512 against AVX2 alone changes CPU timings several-fold.
    """
    try:
        fields: dict[str, str] = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if not key.strip():
                break  # the first processor's block is enough
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        fields = {}
    if "model name" not in fields:
        return platform.processor() or platform.machine()
    flags = fields.get("flags", "").split()
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{fields['model name']} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')}, {vector})"
