"""Files: one atomic writer (umask modes, stale temporaries, OSError -> one line), output-path errors of every
subcommand (one line, exit 2, nothing half-written), and safe loading of checkpoints (a pickle payload never runs).

The tests run as root, where permission bits stop nothing: unwritable paths are a path under a regular file
(NotADirectoryError), an existing folder where a file belongs, /proc (a real kernel refusal), and ENOSPC /
EROFS raised by monkeypatched os calls.
"""

import errno
import os
import pickle
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from metabnn import fileio
from metabnn.cli import main
from metabnn.errors import MetabnnError, OutputError
from metabnn.train import checkpoint
from metabnn.train.models import build
from metabnn.train.presets import DEFAULTS


# ----------------------------------------------------------------------------- helpers

def run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_exit_2(rc, err, needle=None):
    lines = err.strip().splitlines()
    assert rc == 2, err
    assert len(lines) == 1 and "Traceback" not in err and "internal error" not in err, err
    if needle is not None:
        assert needle in lines[0], lines[0]


def temporaries(folder):
    return sorted(p.name for p in folder.rglob("*.tmp"))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A real checkpoint dict as the trainer writes it (untrained 784-16-16-10 BNN): no data set needed."""
    torch.manual_seed(0)
    model = build("bnn", [16, 16], None, True, "uniform")
    cfg = dict(DEFAULTS, hidden=[16, 16], device="cpu")
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    checkpoint.save(path, {"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "config": cfg,
                           "model": model.state_dict(), "banks": [], "progress": {"task": 2, "epoch": 0}})
    return path


def bad_paths(t):
    """name -> a path no file can be written at (for options taking a file)."""
    (t / "plain.txt").write_text("a regular file")
    (t / "folder").mkdir(exist_ok=True)
    return {"under-a-file": t / "plain.txt" / "x", "deep-under-a-file": t / "plain.txt" / "a" / "x",
            "a-folder": t / "folder", "proc": "/proc/metabnn-test-out", "device": "/dev/null"}


def bad_dirs(t):
    """name -> a path no folder can be written into (for --hex-dir, train/demo --out)."""
    (t / "plain.txt").write_text("a regular file")
    return {"a-file": t / "plain.txt", "under-a-file": t / "plain.txt" / "d", "proc": "/proc/metabnn-test-dir"}


def fail_replace_into(monkeypatch, name: str, code: int):
    """os.replace onto a file called `name` fails with `code` (ENOSPC, EROFS); other renames work."""
    real = os.replace

    def replace(src, dst, *a, **kw):
        if os.path.basename(os.fspath(dst)) == name:
            raise OSError(code, os.strerror(code))
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", replace)


def fail_create_under(monkeypatch, folder, code: int):
    """Creating a file below `folder` fails with `code`, as on a read-only or full file system."""
    real = os.open
    prefix = os.fspath(folder)

    def fake_open(path, flags, *a, **kw):
        if os.fspath(path).startswith(prefix) and flags & os.O_CREAT:
            raise OSError(code, os.strerror(code), os.fspath(path))
        return real(path, flags, *a, **kw)

    monkeypatch.setattr(os, "open", fake_open)


# ----------------------------------------------------------------------------- the writer itself

@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_follow_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        fileio.atomic_write_bytes(tmp_path / "a.bin", b"x")
        fileio.atomic_write_text(tmp_path / "b.txt", "y")
        fileio.atomic_write_with(tmp_path / "c.pt", lambda f: torch.save({"w": torch.ones(2)}, f))
    finally:
        os.umask(old)
    for name in ("a.bin", "b.txt", "c.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name
    assert torch.load(tmp_path / "c.pt", weights_only=True)["w"].tolist() == [1.0, 1.0]
    assert temporaries(tmp_path) == []


def test_replaces_whole_files_and_makes_parents(tmp_path):
    target = tmp_path / "new" / "deeper" / "f.txt"
    fileio.atomic_write_text(target, "first version, longer")
    fileio.atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert temporaries(tmp_path) == []


def test_replacing_keeps_the_old_files_permissions(tmp_path):
    private = tmp_path / "private.mbnn"
    private.write_bytes(b"old")
    private.chmod(0o600)
    fileio.atomic_write_bytes(private, b"new")
    assert private.read_bytes() == b"new" and private.stat().st_mode & 0o777 == 0o600


def test_writes_through_a_symlink_and_keeps_it(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    (tmp_path / "link.txt").symlink_to(real)
    fileio.atomic_write_text(tmp_path / "link.txt", "new")
    assert (tmp_path / "link.txt").is_symlink() and real.read_text() == "new"


def test_refuses_to_replace_a_device_or_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="not a regular file"):
        fileio.atomic_write_bytes(fifo, b"x")
    with pytest.raises(OutputError, match="not a regular file"):
        fileio.atomic_write_bytes("/dev/null", b"x")
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EIO])
def test_an_oserror_at_the_rename_keeps_the_old_file(tmp_path, monkeypatch, code):
    target = tmp_path / "model.mbnn"
    target.write_bytes(b"the user's previous model")
    fail_replace_into(monkeypatch, "model.mbnn", code)
    with pytest.raises(OutputError) as e:
        fileio.atomic_write_bytes(target, b"new")
    assert str(e.value) == f"cannot write {target}: {os.strerror(code)}"
    assert target.read_bytes() == b"the user's previous model"
    assert temporaries(tmp_path) == []


def test_a_full_disk_during_fsync_is_one_error(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError, match="No space left on device"):
        fileio.atomic_write_text(tmp_path / "l0_w.hex", "deadbeef\n" * 100)
    assert not (tmp_path / "l0_w.hex").exists() and temporaries(tmp_path) == []


def test_a_write_error_inside_torch_save_names_the_real_reason(tmp_path):
    # A real kernel error in the middle of torch.save's C++ writer (which rewraps it as RuntimeError): a file
    # size limit gives EFBIG on the write that crosses it. In a child process: the limit is per process.
    code = textwrap.dedent(f"""
        import resource, signal, sys, torch
        from metabnn import fileio
        from metabnn.errors import OutputError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills us instead of failing write()
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
        try:
            fileio.atomic_write_with({str(tmp_path / 'big.pt')!r}, lambda f: torch.save(torch.zeros(100_000), f))
        except OutputError as e:
            print(e)
            sys.exit(2)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stdout.strip() == f"cannot write {tmp_path / 'big.pt'}: File too large"
    assert not (tmp_path / "big.pt").exists() and temporaries(tmp_path) == []


def test_other_errors_of_the_writer_propagate_and_leave_nothing(tmp_path):
    def broken(f):
        f.write(b"half")
        raise KeyError("a bug in the caller")

    with pytest.raises(KeyError):
        fileio.atomic_write_with(tmp_path / "x.bin", broken)
    assert list(tmp_path.iterdir()) == []


def test_a_killed_writer_leftover_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "checkpoint.pt"
    code = textwrap.dedent(f"""
        import os, signal
        from metabnn import fileio
        def die(f):
            f.write(b"half a checkpoint")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        fileio.atomic_write_with({str(target)!r}, die)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert r.returncode == -signal.SIGKILL
    leftover = temporaries(tmp_path)
    assert len(leftover) == 1 and leftover[0].startswith(".checkpoint.pt.") and not target.exists()
    dead_pid, _, host = leftover[0][len(".checkpoint.pt."):-len(".tmp")].split("-", 2)
    assert host == os.uname().nodename
    # survivors: a live writer's temporary (this test's parent process), another target's, another host's
    keep = [f".checkpoint.pt.{os.getppid()}-0000-{host}.tmp", f".other.pt.{dead_pid}-0000-{host}.tmp",
            f".checkpoint.pt.{dead_pid}-0000-not-{host}.tmp"]
    for name in keep:
        (tmp_path / name).write_bytes(b"someone else's")
    fileio.atomic_write_bytes(target, b"complete")
    assert target.read_bytes() == b"complete"
    assert temporaries(tmp_path) == sorted(keep)


@pytest.mark.parametrize("kind, needle", [
    ("under-a-file", "a file of that name exists"), ("deep-under-a-file", "Not a directory"),
    ("a-folder", "it is a folder"), ("proc", "No such file or directory"), ("device", "not a regular file"),
    ("empty", "empty name"),
])
def test_unwritable_paths_are_one_output_error(tmp_path, kind, needle):
    path = "" if kind == "empty" else bad_paths(tmp_path)[kind]
    for write in (lambda: fileio.atomic_write_bytes(path, b"x"), lambda: fileio.check_output(path)):
        with pytest.raises(OutputError) as e:
            write()
        assert needle in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)
    assert issubclass(OutputError, MetabnnError) and OutputError.exit_code == 2


def test_check_output_leaves_no_trace(tmp_path):
    fileio.check_output(tmp_path / "sub" / "m.mbnn")
    fileio.check_output_dir(tmp_path / "hex")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["hex", "sub"]


# ----------------------------------------------------------------------------- every subcommand's outputs

EXPORT_FILE_OPTIONS = ["--out", "--onnx", "--qonnx", "--c-header"]  # and --hex-dir, a folder


def export_argv(ckpt, t, **over):
    argv = ["export", str(ckpt), "--out", str(t / "ok.mbnn")]
    for opt, path in over.items():
        opt = "--" + opt.replace("_", "-")
        if opt == "--out":
            argv[3] = str(path)
        else:
            argv += [opt, str(path)]
    return argv


@pytest.mark.parametrize("option", EXPORT_FILE_OPTIONS)
@pytest.mark.parametrize("kind", ["under-a-file", "deep-under-a-file", "a-folder", "proc", "device"])
def test_export_file_options_bad_path(tiny_checkpoint, tmp_path, capsys, option, kind):
    path = bad_paths(tmp_path)[kind]
    argv = export_argv(tiny_checkpoint, tmp_path, **{option[2:]: path})
    rc, _, err = run(argv, capsys)
    one_line_exit_2(rc, err, str(path))
    assert not (tmp_path / "ok.mbnn").exists()  # checked before anything was written


@pytest.mark.parametrize("kind", ["a-file", "under-a-file", "proc"])
def test_export_hex_dir_bad_path(tiny_checkpoint, tmp_path, capsys, kind):
    path = bad_dirs(tmp_path)[kind]
    rc, _, err = run(export_argv(tiny_checkpoint, tmp_path, hex_dir=path), capsys)
    one_line_exit_2(rc, err)
    assert not (tmp_path / "ok.mbnn").exists()


def test_export_hex_dir_verilog_cannot_quote(tiny_checkpoint, tmp_path, capsys):
    rc, _, err = run(export_argv(tiny_checkpoint, tmp_path, hex_dir=tmp_path / 'a"b'), capsys)
    one_line_exit_2(rc, err, "Verilog string")
    assert not (tmp_path / 'a"b').exists() or not any((tmp_path / 'a"b').iterdir())


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
@pytest.mark.parametrize("option, name", [("out", "ok.mbnn"), ("onnx", "m.onnx"), ("qonnx", "m.qonnx.onnx"),
                                          ("c_header", "m.h"),
                                          ("hex_dir", "l1_w.hex"), ("hex_dir", "mbnn_model.svh")])
def test_export_disk_full_or_read_only_while_writing(tiny_checkpoint, tmp_path, capsys, monkeypatch, code,
                                                     option, name):
    pytest.importorskip("onnx")
    over = {} if option == "out" else {option: tmp_path / ("hex" if option == "hex_dir" else name)}
    argv = export_argv(tiny_checkpoint, tmp_path, **over)
    fail_replace_into(monkeypatch, name, code)
    rc, _, err = run(argv, capsys)
    one_line_exit_2(rc, err, os.strerror(code))
    assert name in err
    assert temporaries(tmp_path) == [] and not list(tmp_path.rglob(name))


def test_export_read_only_folder(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    fail_create_under(monkeypatch, ro, errno.EROFS)
    for option in ("out", "onnx", "c_header", "hex_dir"):
        rc, _, err = run(export_argv(tiny_checkpoint, tmp_path, **{option: ro if option == "hex_dir" else ro / "x"}),
                         capsys)
        one_line_exit_2(rc, err, "Read-only file system")
    assert list(ro.iterdir()) == [] and not (tmp_path / "ok.mbnn").exists()


def test_export_writes_every_output_with_the_umask(tiny_checkpoint, tmp_path, capsys):
    pytest.importorskip("onnx")
    old = os.umask(0o022)
    try:
        rc, out, err = run(export_argv(tiny_checkpoint, tmp_path, onnx=tmp_path / "m.onnx",
                                       c_header=tmp_path / "m.h", hex_dir=tmp_path / "hex"), capsys)
    finally:
        os.umask(old)
    assert rc == 0, err
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"ok.mbnn", "m.onnx", "m.h", "l0_w.hex", "mbnn_model.svh"}
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in files), [(p.name, oct(p.stat().st_mode)) for p in files]
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize("kind", ["a-file", "under-a-file", "proc"])
def test_train_out_bad_path(tmp_path, capsys, kind):
    path = bad_dirs(tmp_path)[kind]
    rc, _, err = run(["train", "--tasks", "mnist", "--hidden", "8", "--epochs", "1", "--out", str(path)], capsys)
    one_line_exit_2(rc, err, str(path))


def test_train_out_read_only(tmp_path, capsys, monkeypatch):
    fail_create_under(monkeypatch, tmp_path / "ro", errno.EROFS)
    rc, _, err = run(["train", "--tasks", "mnist", "--out", str(tmp_path / "ro")], capsys)
    one_line_exit_2(rc, err, "Read-only file system")


@pytest.mark.parametrize("kind", ["a-file", "under-a-file", "proc"])
def test_demo_out_bad_path(tmp_path, capsys, kind):
    path = bad_dirs(tmp_path)[kind]
    rc, _, err = run(["demo", "--out", str(path)], capsys)
    one_line_exit_2(rc, err)


def test_demo_out_read_only(tmp_path, capsys, monkeypatch):
    fail_create_under(monkeypatch, tmp_path / "ro", errno.EROFS)
    rc, _, err = run(["demo", "--out", str(tmp_path / "ro")], capsys)
    one_line_exit_2(rc, err, "Read-only file system")


def test_demo_disk_full_while_training_is_one_line(tmp_path, capsys, monkeypatch, mnist):
    fail_replace_into(monkeypatch, "checkpoint.pt", errno.ENOSPC)
    rc, _, err = run(["demo", "--out", str(tmp_path), "--hidden", "8", "--epochs", "1", "--train-subset", "100",
                      "--quiet"], capsys)
    one_line_exit_2(rc, err, f"cannot write {tmp_path / 'train_meta' / 'checkpoint.pt'}: No space left on device")
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize("argv", [["train", "--out", ""], ["demo", "--out", ""]] +
                         [["export", "CKPT", "--out", "OK", opt, ""] for opt in ("--onnx", "--qonnx", "--c-header",
                                                                                "--hex-dir")] +
                         [["export", "CKPT", "--out", ""]])
def test_an_empty_output_path_is_an_error_not_the_current_folder(tiny_checkpoint, tmp_path, capsys, argv):
    argv = [str(tiny_checkpoint) if a == "CKPT" else str(tmp_path / "ok.mbnn") if a == "OK" else a for a in argv]
    rc, _, err = run(argv, capsys)
    one_line_exit_2(rc, err, "empty")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- safe loading

class _Payload:
    """Unpickling this runs a shell command that creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def crafted_files(t):
    marker = t / "PAYLOAD_RAN"
    in_checkpoint = t / "evil.pt"  # a torch.save'd dict that looks like a checkpoint, payload inside
    torch.save({"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "config": _Payload(marker)},
               in_checkpoint)
    plain = t / "evil_plain.pt"  # a bare pickle, as `pickle.dump` writes it
    plain.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    return marker, [in_checkpoint, plain]


def test_export_never_runs_a_pickle_payload(tmp_path, capsys):
    marker, files = crafted_files(tmp_path)
    # the payload is live: an unsafe load runs it (so this test can fail)
    pickle.loads(pickle.dumps(_Payload(tmp_path / "control")))
    assert (tmp_path / "control").exists()
    for f in files:
        rc, _, err = run(["export", str(f), "--out", str(tmp_path / "m.mbnn")], capsys)
        one_line_exit_2(rc, err, str(f))
        assert not marker.exists(), f
        assert not (tmp_path / "m.mbnn").exists()
    assert "posix.system" in run(["export", str(files[0]), "--out", str(tmp_path / "m.mbnn")], capsys)[2]


def test_the_real_command_never_runs_a_pickle_payload(tmp_path):
    marker, files = crafted_files(tmp_path)
    r = subprocess.run([sys.executable, "-m", "metabnn", "export", str(files[0]), "--out", str(tmp_path / "m.mbnn")],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "refused" in r.stderr and "posix.system" in r.stderr
    assert not marker.exists() and not (tmp_path / "m.mbnn").exists()


def test_safe_loading_everywhere_a_checkpoint_is_read(tmp_path):
    marker, files = crafted_files(tmp_path)
    for f in files:
        for read in (checkpoint.read, checkpoint.load_floatnet, checkpoint.load_model):
            with pytest.raises(MetabnnError, match="refused"):
                read(f)
    assert not marker.exists()


def test_a_real_checkpoint_loads_weights_only(tiny_checkpoint):
    torch.load(tiny_checkpoint, weights_only=True)  # what read() does: no pickle classes inside
    net = checkpoint.load_floatnet(tiny_checkpoint)
    assert net.sizes == [784, 16, 16, 10]
