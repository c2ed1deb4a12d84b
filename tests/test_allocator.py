"""keep_freed_memory: a repeated forward pass stops faulting its buffers in again."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

FORWARDS = """
import resource, sys, torch
from synthgen.allocator import keep_freed_memory
torch.set_num_threads(1)
tuned = keep_freed_memory() if sys.argv[1] == "tuned" else None
up = torch.nn.ConvTranspose2d
net = torch.nn.Sequential(up(256, 128, 4, 2, 1), torch.nn.ReLU(), up(128, 64, 4, 2, 1), torch.nn.ReLU(),
                          torch.nn.Conv2d(64, 1, 3, padding=1))
x = torch.randn(64, 256, 7, 7)  # [N, C, H, W]: a 28 px generator's last blocks on a 64-image chunk
with torch.inference_mode():
    net(x)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        net(x)
    print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    proc = subprocess.run([sys.executable, "-c", FORWARDS, mode], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    tuned, faults = proc.stdout.split()
    return tuned, int(faults)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's; elsewhere the call is a no-op")
def test_repeated_forwards_reuse_their_buffers_once_tuned():
    untuned, default_faults = _faults("default")
    tuned, tuned_faults = _faults("tuned")
    assert (untuned, tuned) == ("None", "True")
    assert tuned_faults * 10 < default_faults, (tuned_faults, default_faults)
