"""One sweep per experiment directory: a second sweep stops with an error naming the first, a killed one frees it."""

import subprocess
import sys
import textwrap

import pytest

from tune.lock import SweepLockedError, exclusive_sweep
from tune.sweep import main

HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from tune.lock import exclusive_sweep
    with exclusive_sweep(Path(sys.argv[1])):
        print("held", flush=True)
        time.sleep(60)
""")


def test_a_second_holder_is_refused_until_the_first_releases(tmp_path):
    with exclusive_sweep(tmp_path / "sweep"):
        with pytest.raises(SweepLockedError, match=r"another sweep is running on .*sweep \(pid \d+, started "):
            with exclusive_sweep(tmp_path / "sweep"):
                pass
    with exclusive_sweep(tmp_path / "sweep"):  # released: free again
        pass


def test_a_sweep_on_a_held_directory_exits_2_before_starting_anything(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "busy")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code = main(["--quiet", f"sweep.output_dir={tmp_path}", "sweep.name=busy"])
        assert code == 2
        assert f"pid {holder.pid}" in capsys.readouterr().err
        assert not (tmp_path / "busy" / "store").exists()  # nothing trained, nothing written
    finally:
        holder.kill()
        holder.wait()
    with exclusive_sweep(tmp_path / "busy"):  # the kernel dropped the killed holder's lock
        pass
