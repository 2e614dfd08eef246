"""``auto`` precision follows the CPU's flags, never the machine the code was written on."""

from __future__ import annotations

import pytest

from cxrkit.errors import CxrkitError
from cxrkit.models import precision


@pytest.mark.parametrize("flags, chosen", [
    ({"avx2", "avx512f"}, "fp32"),                 # an EPYC-like CPU: bf16 would be emulated
    ({"avx2", "avx512f", "avx512_bf16"}, "fp32"),  # AVX512-BF16 without AMX: bf16 measured 0.68x fp32
    ({"avx2", "amx_bf16", "amx_tile"}, "bf16"),
    (set(), "fp32"),                                # flags unknown (not Linux): the safe choice
])
def test_auto_on_cpu_follows_the_flags(monkeypatch, flags, chosen):
    monkeypatch.setattr(precision, "cpu_info", lambda: ("a CPU", frozenset(flags)))
    assert precision.resolve_precision("auto", "cpu") == chosen
    assert precision.lightning_precision("auto", "cpu") == {"fp32": "32-true", "bf16": "bf16-mixed"}[chosen]
    assert precision.precision_reason("auto", "cpu").startswith(f"{chosen} (auto: this CPU")


def test_names_aliases_and_refusals():
    assert precision.resolve_precision("bf16-mixed", "cpu") == "bf16"  # Lightning's spelling is read too
    assert precision.resolve_precision("32-true", "cpu") == "fp32"
    with pytest.raises(CxrkitError, match="only supported on CUDA"):
        precision.resolve_precision("fp16", "cpu")
    with pytest.raises(CxrkitError, match="precision must be one of"):
        precision.resolve_precision("half", "cpu")


def test_cpu_info_reads_this_machine():
    model, flags = precision.cpu_info()
    assert isinstance(model, str) and isinstance(flags, frozenset)
    assert precision.cpu_has_native_bf16() == ("amx_bf16" in flags)
