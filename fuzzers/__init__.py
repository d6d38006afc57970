"""atheris fuzz targets, one small file each (fuzz_<area>.py), sharing one decoder
(``_ops``), one interleaving-feedback module (``_coverage``) and one harness (``_harness``)."""

from typing import Any


def __getattr__(name: str) -> Any:
    """``DECODERS`` (each target's decoder, for migfuzz), imported on first use only: running a
    target (``python -m fuzzers.fuzz_schedule``) imports this package first, and an eager
    import here would import the model before the target's ``atheris.instrument_imports``,
    leaving it without code coverage."""
    if name == "DECODERS":
        from ._targets import DECODERS

        return DECODERS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
