"""The wheel is the product a user installs: built from this tree, installed into a fresh virtual environment,
it must carry the C and RTL sources and LICENSE, and from a folder outside the tree it must train, export and
verify on every integer backend with no file of the source tree in reach.

Cheap by construction: the wheel is built without build isolation, the fresh venv has no pip of its own (this
interpreter's pip installs into it with `--python`), and it reaches the third-party packages that are already
installed through a .pth line added *after* metabnn itself is installed, so metabnn is always the wheel's copy
(asserted) and nothing is downloaded. The requirements the wheel declares for [onnx,hw] are checked against the
versions it finds, which is what `pip install metabnn-0.1.0-py3-none-any.whl[onnx,hw]` would have checked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# checkout folder -> where the wheel installs it (pyproject.toml [tool.setuptools.package-dir])
INSTALLED_AS = {"metabnn": "metabnn", "train": "metabnn/train", "export": "metabnn/export", "sim": "metabnn/sim",
                "firmware": "metabnn/firmware", "hw": "metabnn/hw"}
# what a wheel must never hold: build outputs, objects, bytecode, waveforms, hidden (editor, git) files
JUNK = re.compile(r"(^|/)(build|sim_build[^/]*|__pycache__|\.[^/]+)(/|$)|\.(o|so|a|pyc|vcd|fst)$")


def run(cmd, cwd, env=None, timeout=900) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def source_files() -> list[str]:
    """The tree as its author sees it: tracked and new files, without what .gitignore names (builds, venvs)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("the wheel test builds from the files git lists: needs a git checkout")
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return sorted(f for f in set(out.split("\0")) if f and (ROOT / f).is_file())  # a deleted file is still listed


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """metabnn-*.whl built from a copy of the tree (as an sdist would be): an old build/ folder or egg-info
    in the checkout cannot leak into it, and the other users of the checkout are not disturbed."""
    pytest.importorskip("setuptools", minversion="77")
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    for f in source_files():
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", base / "dist", src], cwd=base)
    (whl,) = (base / "dist").glob("metabnn-*.whl")
    return whl


def test_wheel_carries_the_c_and_rtl_sources_and_license(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    junk = [n for n in names if JUNK.search(n)]
    assert not junk, f"build outputs or hidden files in the wheel: {junk[:10]}"
    # every module of the Python packages and every file of firmware/ and hw/ (the C and RTL sources)
    expected = set()
    for f in source_files():
        top, _, rest = f.partition("/")
        if top in INSTALLED_AS and rest and not JUNK.search(f) and (top in ("firmware", "hw") or f.endswith(".py")):
            expected.add(f"{INSTALLED_AS[top]}/{rest}")
    missing = sorted(expected - set(names))
    assert not missing, f"not in the wheel (pyproject.toml: packages / package-data): {missing}"
    for marker in ("metabnn/firmware/include/metabnn.h", "metabnn/firmware/Makefile", "metabnn/hw/rtl/mbnn_top.sv",
                   "metabnn/backends/sources.py", "metabnn/train/cli.py"):
        assert marker in names
    lic = [n for n in names if re.fullmatch(r"metabnn-[^/]+\.dist-info/(licenses/)?LICENSE", n)]
    assert len(lic) == 1, f"LICENSE not in the wheel's dist-info: {names[-10:]}"
    assert zipfile.ZipFile(wheel).read(lic[0]) == (ROOT / "LICENSE").read_bytes()


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment of the base interpreter holding the wheel, and the installed third-party
    packages of this one (only those: added after the install, they come after the venv's own site-packages)."""
    env = tmp_path_factory.mktemp("venv") / "venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    run([base_python, "-m", "venv", "--without-pip", env], cwd=env.parent)
    vpy = env / "bin" / "python"
    # pip >= 22.3 installs into another interpreter's environment with --python
    run([sys.executable, "-m", "pip", "--python", vpy, "install", "--no-deps", "--no-index", "-q", wheel],
        cwd=env.parent)
    site = run([vpy, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=env.parent)
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    # a path line in a .pth is only appended to sys.path; the .pth files *there* (this checkout's editable
    # install of metabnn) are not run, so the source tree stays out of reach
    Path(site.stdout.strip(), "zz_third_party.pth").write_text("\n".join(sorted(ours)) + "\n")
    return env


def clean_env(tmp: Path) -> dict:
    """The user's environment, minus anything pointing into this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "METABNN_CACHE"))}
    env["XDG_CACHE_HOME"] = str(tmp / "cache")  # C and RTL builds must land here, per user, not in site-packages
    return env


def test_installed_wheel_imports_itself_and_its_requirements_are_met(venv, tmp_path):
    probe = r"""
import json, metabnn
from importlib.metadata import requires, version
from packaging.requirements import Requirement
from metabnn.backends.sources import source_root
unmet = []
for text in requires("metabnn"):
    req = Requirement(text)
    if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("onnx", "hw")):
        try:
            have = version(req.name)
        except Exception:
            have = None
        if have is None or not req.specifier.contains(have, prereleases=True):
            unmet.append(f"{req} (found {have})")
print(json.dumps({"file": metabnn.__file__, "firmware": str(source_root("firmware")),
                  "hw": str(source_root("hw")), "unmet": unmet}))
"""
    r = run([venv / "bin" / "python", "-c", probe], cwd=tmp_path, env=clean_env(tmp_path))
    got = json.loads(r.stdout.strip().splitlines()[-1])
    site = str(venv.resolve())
    assert got["file"].startswith(site), f"metabnn imported from {got['file']}, not from the wheel in {site}"
    assert got["firmware"].startswith(site) and got["hw"].startswith(site), got
    assert got["unmet"] == [], f"the wheel's [onnx,hw] requirements are not met by: {got['unmet']}"


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if "__pycache__" not in p.parts}


def test_installed_wheel_trains_exports_and_verifies_every_backend(venv, tmp_path):
    """From a folder outside the tree: train a tiny model, export it, and golden, ONNX, C and RTL agree."""
    env = clean_env(tmp_path)
    cli = venv / "bin" / "metabnn"
    installed = next(venv.glob("lib/python*/site-packages/metabnn"))
    before = tree(installed)
    run([cli, "train", "--tasks", "pmnist:1", "--hidden", "32", "--epochs", "1", "--train-subset", "2000",
         "--test-subset", "500", "--compare-shifts", "8", "--seed", "0", "--quiet", "--out", "run"],
        cwd=tmp_path, env=env)
    run([cli, "export", "run/model.pt", "--out", "m.mbnn"], cwd=tmp_path, env=env)
    backends = ["golden", "onnx", "c", "rtl"]
    r = run([cli, "verify", "m.mbnn", "--backends", ",".join(backends), "--limit", "40", "--learn", "2"],
            cwd=tmp_path, env=env)
    for b in backends:
        row = [l for l in r.stdout.splitlines() if l.split()[:1] == [b]]
        assert row, f"no row for {b} in:\n{r.stdout}"
        eq = re.search(r"(\d+)/(\d+) \(", row[0])
        assert eq and eq[1] == eq[2] and int(eq[2]) > 0, f"{b} does not agree with golden:\n{r.stdout}"
    # the C and RTL builds went to the per-user cache; nothing was built into the installed package
    assert tree(installed) == before, f"written into site-packages: {sorted(tree(installed) - before)[:10]}"
    from metabnn.backends.cache import DONE

    finished = list((tmp_path / "cache" / "metabnn").rglob(DONE))
    assert len(finished) >= 2, f"the C and RTL builds are not in $XDG_CACHE_HOME/metabnn: {finished}"
