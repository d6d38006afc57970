"""atheris fuzz targets, one small file each (fuzz_<area>.py), sharing one decoder
(``_ops``), one interleaving-feedback module (``_coverage``) and one harness (``_harness``)."""
