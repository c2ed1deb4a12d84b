"""report.html opened in a real browser (Debian's headless Chromium): every image decodes, the
browser sees the same pixels as the embedded PNGs, and the SVG loss curves have extent."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from test_evaluate_e2e import eval_config, make_run, warm_judge_cache

from synthgen.evaluate.run import evaluate
from synthgen.judge.cache import default_cache_dir

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=10000",
]

# Runs after load: per <img>, whether it decoded, its natural size and its mean pixel value read back
# through a canvas; per SVG polyline, the width of its bounding box. Written into <pre id="probe">.
PROBE = """<script>
window.addEventListener('load', () => {
  const out = {images: [], curves: []};
  for (const img of document.images) {
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    let mean = null;
    if (img.naturalWidth > 0) {
      const g = c.getContext('2d'); g.drawImage(img, 0, 0);
      const px = g.getImageData(0, 0, c.width, c.height).data;
      let s = 0; for (let i = 0; i < px.length; i += 4) s += px[i];
      mean = s / (px.length / 4);
    }
    out.images.push({complete: img.complete, w: img.naturalWidth, h: img.naturalHeight, mean: mean,
                     src: img.src.slice(0, 40)});
  }
  for (const p of document.querySelectorAll('svg polyline')) out.curves.push(p.getBBox().width);
  const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def decoded_means(page: str) -> list[tuple[int, int, float]]:
    """(width, height, mean red value) of every embedded PNG, decoded with PIL, in page order."""
    out = []
    for b64 in re.findall(r'<img[^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page):
        img = Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")
        out.append((img.width, img.height, float(np.asarray(img)[:, :, 0].mean())))
    return out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, fashion_mnist_root):
    """(report page, probe results from Chromium) for a tiny run's report."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: apt-get install chromium (Debian) to run the browser test")
    base = tmp_path_factory.mktemp("browser")
    run = make_run(str(base / "run"))
    cache = warm_judge_cache(default_cache_dir())  # the session's judge (tests/conftest.py sets SYNTHGEN_CACHE)
    evaluate(eval_config(cache, checkpoint=run, metrics=["fd", "pr", "label_acc"]), progress=False)
    page = open(os.path.join(run, "eval", "report.html"), encoding="utf-8").read()
    probe_page = base / "probe.html"
    probe_page.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    proc = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={base / 'profile'}", "--dump-dom", probe_page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    match = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert match, f"no probe output from chromium (rc {proc.returncode}): {proc.stderr[-2000:]}"
    return page, json.loads(match.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))


def test_every_report_image_decodes_in_chromium(rendered):
    page, probe = rendered
    expected = decoded_means(page)
    assert len(probe["images"]) == len(expected) == page.count("<img ") >= 20
    for img, (w, h, _) in zip(probe["images"], expected):
        assert img["src"].startswith("data:image/png;base64,")  # inlined: nothing fetched
        assert img["complete"] and (img["w"], img["h"]) == (w, h)


def test_chromium_sees_the_same_pixels_as_the_embedded_pngs(rendered):
    page, probe = rendered
    browser = [img["mean"] for img in probe["images"]]
    pil = [m for _, _, m in decoded_means(page)]
    np.testing.assert_allclose(browser, pil, atol=0.5)
    assert np.std(pil) > 1  # the images differ from each other (not one blank placeholder)


def test_loss_curves_render_with_extent(rendered):
    _, probe = rendered
    assert len(probe["curves"]) == 2  # d_loss and g_loss from the run's metrics.jsonl
    assert all(width > 100 for width in probe["curves"])
