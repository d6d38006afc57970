"""atheris fuzz targets, one small file each (fuzz_<area>.py), sharing one decoder
(``_ops``), one interleaving-feedback module (``_coverage``) and one harness (``_harness``)."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names __getattr__ gives, for the type checker only
    from ._encode import NotExpressible as NotExpressible
    from ._encode import encode_scenario as encode_scenario
    from ._targets import DECODERS as DECODERS


_LAZY = {"DECODERS": "_targets", "NotExpressible": "_encode", "encode_scenario": "_encode"}


def __getattr__(name: str) -> Any:
    """What migfuzz uses (each target's decoder, the scenario encoder), imported on first use
    only: running a target (``python -m fuzzers.fuzz_schedule``) imports this package first,
    and an eager import here would import the model before the target's
    ``atheris.instrument_imports``, leaving it without code coverage."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
