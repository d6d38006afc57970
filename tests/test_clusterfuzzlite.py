"""The ClusterFuzzLite build: .clusterfuzzlite/build.sh run as the builder image runs it (no
Docker), against a temporary ``$OUT``, and the layout it leaves checked file by file.

Two commands of the image are stood in for by scripts on ``PATH``: ``pip3`` (installing the
package is the image's business; the venv's python already has it) and
``compile_python_fuzzer`` (it needs PyInstaller; the stand-in records its arguments and leaves
the executable wrapper the real one leaves at ``$OUT/TARGET``). Everything else, the seed
corpora zipped by ``zip`` and the options and dictionaries written by ``python3 -m
migfuzz.oss_fuzz``, runs for real.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from fuzzers import DECODERS
from migfuzz import fuzz
from migfuzz.oss_fuzz import main as oss_fuzz_main

ROOT = Path(__file__).resolve().parent.parent
TARGETS = sorted(DECODERS)

STUB_COMPILE = """#!/bin/sh
# compile_python_fuzzer FUZZER.py [pyinstaller args]: record, then leave $OUT/NAME as the
# real one does (a wrapper that runs the PyInstaller bundle).
echo "$@" >> "$LOG/compile.log"
name=$(basename "$1" .py)
printf '#!/bin/sh\\n# LLVMFuzzerTestOneInput\\nexec "$(dirname "$0")/%s.pkg/%s" "$@"\\n' \
    "$name" "$name" > "$OUT/$name"
chmod +x "$OUT/$name"
"""


def _stub_bin(tmp: Path) -> Path:
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "pip3").write_text('#!/bin/sh\necho "$@" >> "$LOG/pip.log"\n')
    (bin_dir / "compile_python_fuzzer").write_text(STUB_COMPILE)
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    (bin_dir / "python3").symlink_to(sys.executable)  # the image's python, migfuzz installed
    return bin_dir


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """($OUT, the log directory) after build.sh ran from the repository, as in the image
    (WORKDIR $SRC/migfuzz)."""
    tmp = tmp_path_factory.mktemp("cflite")
    out, log = tmp / "out", tmp / "log"
    out.mkdir()
    log.mkdir()
    env = dict(os.environ, OUT=str(out), SRC=str(ROOT.parent), LOG=str(log),
               PATH=f"{_stub_bin(tmp)}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["bash", str(ROOT / ".clusterfuzzlite" / "build.sh")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, log


@pytest.mark.slow
def test_build_installs_the_package_and_compiles_every_target(built: tuple[Path, Path]) -> None:
    out, log = built
    assert (log / "pip.log").read_text().split() == ["install", "."]
    calls = sorted((log / "compile.log").read_text().splitlines())
    assert calls == [f"fuzzers/{t}.py --add-data target:target --add-data stress:stress"
                     for t in TARGETS]
    for t in TARGETS:
        assert os.access(out / t, os.X_OK), t


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_each_target_ships_its_options_and_dictionary(built: tuple[Path, Path],
                                                      target: str) -> None:
    """``max_len`` and ``dict`` as ``migfuzz fuzz`` passes them (fuzz.libfuzzer_options), the
    dictionary beside the fuzzer; fuzz_preempt, whose bytes are preemptions, has none."""
    out, _ = built
    cfg = configparser.ConfigParser()
    cfg.read_string((out / f"{target}.options").read_text())
    assert cfg.sections() == ["libfuzzer"]
    opts = dict(cfg["libfuzzer"])
    assert opts["max_len"] == str(fuzz.MAX_LEN) == "512"
    if target in fuzz.NO_DICT:
        assert set(opts) == {"max_len"}
        assert not (out / f"{target}.dict").exists()
    else:
        assert set(opts) == {"max_len", "dict"}
        assert opts["dict"] == f"{target}.dict"
        assert (out / opts["dict"]).read_bytes() == (ROOT / "fuzzers" / "schedule.dict"
                                                      ).read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_each_target_ships_its_committed_seeds(built: tuple[Path, Path], target: str) -> None:
    out, _ = built
    seeds = {p.name: p.read_bytes() for p in (ROOT / "corpus" / target).iterdir()
             if p.is_file()}
    assert seeds, target
    with zipfile.ZipFile(out / f"{target}_seed_corpus.zip") as z:
        shipped = {n.removeprefix("./"): z.read(n) for n in z.namelist() if not n.endswith("/")}
    assert shipped == seeds


def test_options_are_the_flags_migfuzz_fuzz_passes(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The one source of truth: the command line run_fuzz builds and the .options file carry
    the same max_len and dictionary."""
    seen: list[list[str]] = []

    class FakeLibFuzzer:
        def __init__(self, cmd: list[str], **kwargs: Any) -> None:
            seen.append(cmd)
            self.stderr: list[str] = []

        def wait(self) -> int:
            return 0

    monkeypatch.setattr(fuzz.subprocess, "Popen", FakeLibFuzzer)
    opts_dir = tmp_path / "opts"
    opts_dir.mkdir()
    assert oss_fuzz_main([str(opts_dir)]) == 0
    for t in TARGETS:
        fuzz.run_fuzz(t, 1, 1, [], tmp_path / "none", tmp_path / "out", progress=False)
        flags = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in seen[-1]
                 if a.startswith(("-max_len=", "-dict="))}
        cfg = configparser.ConfigParser()
        cfg.read_string((opts_dir / f"{t}.options").read_text())
        assert flags["-max_len"] == cfg["libfuzzer"]["max_len"]
        assert ("-dict" in flags) == cfg.has_option("libfuzzer", "dict")
        if "-dict" in flags:
            assert Path(flags["-dict"]).read_bytes() == (
                opts_dir / cfg["libfuzzer"]["dict"]).read_bytes()


def test_options_writer_rejects_bad_usage(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert oss_fuzz_main([]) == 2
    assert oss_fuzz_main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["migfuzz.oss_fuzz: error: usage: python3 -m migfuzz.oss_fuzz OUT",
                   f"migfuzz.oss_fuzz: error: {tmp_path / 'missing'}: not a directory"]
