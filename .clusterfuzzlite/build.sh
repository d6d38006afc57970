#!/bin/bash -eu
# Build every fuzzers/fuzz_*.py with OSS-Fuzz's compile_python_fuzzer (PyInstaller + atheris),
# and ship each target's seed corpus from corpus/<target>/ as <target>_seed_corpus.zip.
pip3 install .
for fuzzer in fuzzers/fuzz_*.py; do
  name=$(basename "$fuzzer" .py)
  compile_python_fuzzer "$fuzzer" --add-data "target:target" --add-data "stress:stress"
  if [ -d "corpus/$name" ]; then
    (cd "corpus/$name" && zip -q -r "$OUT/${name}_seed_corpus.zip" .)
  fi
done
