#!/bin/bash -eu
# Build every fuzzers/fuzz_*.py with OSS-Fuzz's compile_python_fuzzer (PyInstaller + atheris),
# ship each target's seed corpus from corpus/<target>/ as <target>_seed_corpus.zip, and its
# libFuzzer options (<target>.options: max_len, dict) and dictionary (<target>.dict), written
# by migfuzz itself from the values `migfuzz fuzz` passes (migfuzz/oss_fuzz.py), so that the
# targets fuzz on ClusterFuzzLite as they do locally.
pip3 install .
for fuzzer in fuzzers/fuzz_*.py; do
  name=$(basename "$fuzzer" .py)
  compile_python_fuzzer "$fuzzer" --add-data "target:target" --add-data "stress:stress"
  if [ -d "corpus/$name" ]; then
    (cd "corpus/$name" && zip -q -r "$OUT/${name}_seed_corpus.zip" .)
  fi
done
python3 -m migfuzz.oss_fuzz "$OUT"
