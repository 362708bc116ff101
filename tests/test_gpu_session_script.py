"""The GPU session script checks itself on any machine (--quick): a session lent a GPU runs it first."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_script_runs_and_its_checks_hold_on_a_cpu(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_session.py"), "--quick", "--out",
                           str(out), "--speed-seconds", "5"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    log = (out / "gpu_session.log").read_text()
    assert "correctness holds: True" in log and "fp32 max relative error" in log
    assert "speed tiny_mar_in16 batch 1" in log
