"""Screenshots of the real ClipProbe tab, and the checks its layout promises.

Drives a running WebUI (AUTOMATIC1111 1.10 or Forge, with ClipProbe installed and a
checkpoint selected) in headless Chromium at 1400×1000, the way a user would: a batch
of 4 pictures is generated through the WebUI's API (or ``--grid`` is used), its grid is
uploaded into the ClipProbe tab, a CLIP is chosen, "Heatmaps" ticked and Analyze clicked.
Then it checks, and exits 1 when one fails:

- the answer and the suggested prompt are on screen without scrolling;
- the page never scrolls sideways (long prompts wrap);
- the results, sections closed, are no longer than two screens;
- a click on a phrase of the coloured prompt shows that phrase's heatmap, on screen.

and writes cropped, palette-optimised PNGs (1400 px wide at most) for the README and the
docs: ``tab-answer.png``, ``tab-heatmap.png``, ``tab-details.png`` (the verdicts opened),
``tab-negative.png`` (a long negative prompt, wrapped), ``tab-regenerate.png``
(with ``--regenerate``) and ``txt2img-batch.png`` (with ``--probe-after-generation``: a
batch generated in txt2img with "probe after generation" on, its grid's info shown).

Needs selenium, Pillow, chromium and chromedriver, e.g. the WebUI harness's venv::

    run_webui.sh start /path/to/clipprobe && run_webui.sh checkpoint
    /tmp/a1111-harness/seltools/bin/python docs/screenshots.py --model /path/to/clip-folder

No real CLIP can be downloaded where these were made: ``--model`` is a small CLIP folder
(``tests/trained_clip.py``'s ``save_trained_clip``, saved as safetensors) and the
checkpoint has random weights, so the pictures are noise and the verdicts mean nothing;
the layout is what any model gives.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

WIDTH, HEIGHT = 1400, 1000
HERE = Path(__file__).resolve().parent

PROMPT = (
    "masterpiece, best quality, a red circle, (a blue square:1.2), green stripes, "
    "a yellow triangle, two cats on the left of a dog, <lora:flat:0.6>"
)
NEGATIVE = (
    "lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, fewer digits, "
    "cropped, worst quality, low quality, jpeg artifacts, signature, watermark, blurry, "
    "(worst_quality:1.4),(low_quality:1.4),(monochrome:1.1),(greyscale),"
    "(deformed_anatomy_with_extra_limbs_and_missing_fingers_and_a_very_long_tag:1.3)"
)


# -- the WebUI's API -----------------------------------------------------------------------


def api(url: str, path: str, payload: dict | None = None, timeout: float = 900) -> dict:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        url.rstrip("/") + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.load(answer)


def generate_grid(url: str, folder: Path) -> Path:
    """A batch of 4 (the WebUI's grid first, its infotext in the PNG), 256×256, 2 steps."""
    payload = {
        "prompt": PROMPT,
        "negative_prompt": NEGATIVE,
        "steps": 2,
        "width": 256,
        "height": 256,
        "batch_size": 4,
        "seed": 1234,
        "sampler_name": "Euler a",
        "save_images": True,  # the WebUI makes its grid only when it may save it
    }
    answer = api(url, "/sdapi/v1/txt2img", payload)
    path = folder / "grid.png"
    path.write_bytes(base64.b64decode(answer["images"][0]))
    return path


# -- the browser ---------------------------------------------------------------------------


class Page:
    def __init__(self, url: str) -> None:
        options = webdriver.ChromeOptions()
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
            options.add_argument(arg)
        options.binary_location = "/usr/bin/chromium"
        self.driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
        self.viewport(WIDTH, HEIGHT)
        self.driver.get(url)

    def viewport(self, width: int, height: int) -> None:
        """Exactly ``width``×``height`` of page, whatever the window's own frame takes."""
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def tall(self) -> None:
        """A viewport as tall as the page (so one screenshot holds all of it), at its top."""
        self.viewport(WIDTH, HEIGHT)
        height = self.js("return document.documentElement.scrollHeight")
        self.viewport(WIDTH, min(int(height) + 50, 12000))
        time.sleep(1.5)
        self.js("window.scrollTo(0, 0)")
        time.sleep(0.3)

    def js(self, code: str, *args):
        return self.driver.execute_script(code, *args)

    def find(self, selector: str, wait: float = 0):
        deadline = time.monotonic() + wait
        while True:
            found = self.driver.find_elements(By.CSS_SELECTOR, selector)
            if found or time.monotonic() > deadline:
                return found[0] if found else None
            time.sleep(0.3)

    def rect(self, selector: str) -> dict | None:
        """The element's box in the viewport (``top``/``bottom``), None when absent."""
        return self.js(
            "var e = document.querySelector(arguments[0]); if (!e) return null;"
            "var r = e.getBoundingClientRect();"
            "return {left: r.left, top: r.top, right: r.right, bottom: r.bottom,"
            " width: r.width, height: r.height};",
            selector,
        )

    def open_tab(self, label: str) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            # gradio 3: "#tabs > .tab-nav > button"; gradio 4 (Forge): "#tabs button[role=tab]"
            for button in self.driver.find_elements(
                By.CSS_SELECTOR, "#tabs > .tab-nav > button, #tabs button[role=tab]"
            ):
                if button.text.strip().lower() == label.lower():  # Forge: "Txt2img"
                    button.click()
                    time.sleep(1.5)
                    return
            time.sleep(0.5)
        raise SystemExit(f"no '{label}' tab in the page")

    def open_accordion(self, elem_id: str) -> None:
        wrap = self.find(f"#{elem_id} .label-wrap")
        if wrap is not None and "open" not in (wrap.get_attribute("class") or ""):
            self.js("arguments[0].scrollIntoView({block: 'center'})", wrap)
            wrap.click()
            time.sleep(1)

    def shot(self) -> Image.Image:
        return Image.open(io.BytesIO(self.driver.get_screenshot_as_png())).convert("RGB")

    def quit(self) -> None:
        self.driver.quit()


def save(
    image: Image.Image, path: Path, box: tuple[float, float, float, float], width: int = WIDTH
) -> None:
    """``box`` of the screenshot (page pixels), at most ``width`` px wide, as a palette PNG
    (big pictures of noise compress badly: the regeneration's shot is made smaller)."""
    left, top, right, bottom = (round(v) for v in box)
    crop = image.crop(
        (max(0, left), max(0, top), min(image.width, right), min(image.height, bottom))
    )
    if crop.width > width:
        crop = crop.resize((width, round(crop.height * width / crop.width)), Image.LANCZOS)
    crop.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True
    )
    print(f"wrote {path} ({crop.width}×{crop.height}, {path.stat().st_size // 1024} KiB)")


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []

    def __call__(self, ok: bool, what: str) -> None:
        print(("ok      " if ok else "FAILED  ") + what)
        if not ok:
            self.failed.append(what)


def visible(rect: dict | None) -> bool:
    return bool(rect) and rect["height"] > 0 and rect["top"] >= 0 and rect["bottom"] <= HEIGHT


# -- the walk-through ----------------------------------------------------------------------


def analyze(page: Page, grid: Path, model: str) -> None:
    page.open_tab("ClipProbe")
    page.find("#clipprobe_image input[type=file]", wait=30).send_keys(str(grid))
    deadline = time.monotonic() + 30
    while not page.find("#clipprobe_prompt textarea").get_attribute("value"):
        if time.monotonic() > deadline:
            raise SystemExit("the prompt was not filled from the picture's parameters")
        time.sleep(0.5)
    box = page.find("#clipprobe_model input")
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(model, Keys.ENTER)
    time.sleep(0.5)
    heatmaps = page.find("#clipprobe_heatmaps input")
    if not heatmaps.is_selected():
        heatmaps.click()
    page.find("#clipprobe_analyze").click()
    answer = page.find("#clipprobe_result .cp-answer, #clipprobe_result .clipprobe-error", wait=900)
    if answer is None or "clipprobe-error" in (answer.get_attribute("class") or ""):
        raise SystemExit(f"the analysis failed: {answer.text if answer else 'no answer'}")
    page.find("#clipprobe_heatmap_view img", wait=60)
    time.sleep(2)
    page.js("window.scrollTo(0, 0)")
    time.sleep(0.5)


def tab_top(page: Page) -> float:
    """Where the tab's content starts: the top-level tab buttons' top."""
    nav = page.rect("#tabs > .tab-nav") or page.rect("#tabs [role=tablist]") or {"top": 0}
    return max(0.0, nav["top"] - 8)


def check_answer(page: Page, check: Checks, out: Path) -> None:
    answer, suggested = page.rect("#clipprobe_result .cp-answer"), page.rect(".cp-suggested")
    check(visible(answer), f"the answer is on screen without scrolling ({answer})")
    check(visible(suggested), f"the suggested prompt is on screen without scrolling ({suggested})")
    sideways = page.js(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    check(sideways[0] <= sideways[1], f"no sideways scrolling (page {sideways[0]} px wide)")
    top = page.rect("#clipprobe_main")["top"]
    bottom = page.rect("#clipprobe_details")["bottom"]
    check(
        bottom - top <= 2 * HEIGHT,
        f"the results with the sections closed are {bottom - top:.0f} px high (two screens: "
        f"{2 * HEIGHT})",
    )
    save(page.shot(), out / "tab-answer.png", (0, tab_top(page), WIDTH, HEIGHT))


def check_heatmap(page: Page, check: Checks, out: Path) -> None:
    phrases = page.driver.find_elements(
        By.CSS_SELECTOR, "#clipprobe_prompt_view .cp-phrase[data-index]"
    )
    image = page.find("#clipprobe_heatmap_view img")
    before = image.get_attribute("src") if image else None
    target = phrases[2] if len(phrases) > 2 else phrases[-1]
    text = target.text.strip()
    target.click()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        image = page.find("#clipprobe_heatmap_view img")
        if image is not None and image.get_attribute("src") != before:
            break
        time.sleep(0.3)
    time.sleep(1.5)
    note = page.find("#clipprobe_heatmap_note").text
    check(
        image is not None and image.get_attribute("src") != before, "the click drew a new heatmap"
    )
    check(
        visible(page.rect("#clipprobe_heatmap_view img")),
        "the clicked phrase's heatmap is on screen",
    )
    wanted = text.strip("()").split(":")[0]
    check(wanted in note and "cosine similarity" in note, f"its note names it: {note[:90]}…")
    row = page.rect("#clipprobe_result_row")
    bottom = page.rect("#clipprobe_prompt_row")["bottom"]
    shot = page.shot()
    save(
        shot,
        out / "tab-heatmap.png",
        (row["left"] - 8, row["top"] - 8, WIDTH, min(HEIGHT, bottom + 8)),
    )


def check_details(page: Page, check: Checks, out: Path) -> None:
    for section in ("clipprobe_verdicts_view_section", "clipprobe_negative_view_section"):
        page.open_accordion(section)
    page.tall()
    sideways = page.js(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    check(
        sideways[0] <= sideways[1],
        f"no sideways scrolling with the sections open ({sideways[0]} px)",
    )
    negative = page.rect("#clipprobe_negative_view .cp-negative-prompt")
    column = page.rect("#clipprobe_details")
    check(
        negative is not None and negative["right"] <= column["right"] + 1,
        f"the long negative prompt wraps inside its section ({negative and negative['width']:.0f} px)",
    )
    shot = page.shot()
    verdicts = page.rect("#clipprobe_verdicts_view_section")
    save(shot, out / "tab-details.png", (0, verdicts["top"] - 8, WIDTH, verdicts["bottom"] + 8))
    section = page.rect("#clipprobe_negative_view_section")
    bottom = min(section["bottom"], section["top"] + 420)
    save(shot, out / "tab-negative.png", (0, section["top"] - 8, WIDTH, bottom))
    page.viewport(WIDTH, HEIGHT)


def regenerate(page: Page, check: Checks, out: Path) -> None:
    page.js("window.scrollTo(0, 0)")
    page.find("#clipprobe_regenerate_button").click()
    found = page.find(
        "#clipprobe_regenerate_result .clipprobe-compare, #clipprobe_regenerate_result .clipprobe-error",
        wait=900,
    )
    check(found is not None and "error" not in (found.get_attribute("class") or ""), "regenerated")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # both pictures loaded and laid out
        sizes = page.js(
            "return Array.from(document.querySelectorAll('#clipprobe_comparison_gallery img'))"
            ".map(function(i) { return i.complete ? i.naturalWidth : 0; })"
        )
        if len(sizes) >= 2 and all(sizes):
            break
        time.sleep(0.5)
    page.tall()
    section = page.rect("#clipprobe_regenerate_section")
    gallery = page.rect("#clipprobe_comparison_gallery")
    check(
        gallery is not None and gallery["width"] >= 0.9 * section["width"],
        "the pictures span the section",
    )
    save(
        page.shot(),
        out / "tab-regenerate.png",
        (0, section["top"] - 8, WIDTH, section["bottom"] + 8),
        width=1000,
    )
    page.viewport(WIDTH, HEIGHT)


def probe_after_generation(page: Page, url: str, model: str, check: Checks, out: Path) -> None:
    """A batch of 4 in txt2img with "ClipProbe: probe after generation" on: the line shows
    under the grid, where the WebUI shows a batch's info first."""
    before = api(url, "/sdapi/v1/options").get("clipprobe_default_model")
    api(url, "/sdapi/v1/options", {"clipprobe_default_model": model})
    try:
        _generate_with_probe(page, url, check, out)
    finally:  # the WebUI's settings as they were
        if before is not None:
            api(url, "/sdapi/v1/options", {"clipprobe_default_model": before})


def _generate_with_probe(page: Page, url: str, check: Checks, out: Path) -> None:
    page.driver.get(url)
    page.open_tab("txt2img")
    prompt = page.find("#txt2img_prompt textarea", wait=30)
    prompt.clear()
    prompt.send_keys(PROMPT)
    for name, value in (("steps", 2), ("width", 256), ("height", 256), ("batch_size", 4)):
        box = page.find(f"#txt2img_{name} input[type=number]")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(str(value), Keys.TAB)
    accordion = page.find(
        "#script_txt2img_clipprobe_enabled .input-accordion-checkbox, "
        "#script_txt2img_clipprobe_enabled input[type=checkbox]"
    )
    page.js("arguments[0].scrollIntoView({block: 'center'})", accordion)
    accordion.click()
    page.js("window.scrollTo(0, 0)")
    page.find("#txt2img_generate").click()
    info = None
    deadline = time.monotonic() + 1200
    while time.monotonic() < deadline:
        info = page.find("#html_info_txt2img")
        if info is not None and "ClipProbe" in info.text:
            break
        time.sleep(2)
    text = info.text if info is not None else ""
    check("ClipProbe: " in text and "4 images" in text, "the batch's grid shows its ClipProbe line")
    page.tall()
    gallery = page.rect("#txt2img_gallery")
    bottom = page.rect("#html_info_txt2img")["bottom"]
    box = (gallery["left"] - 8, gallery["top"] - 8, gallery["right"] + 8, bottom + 8)
    save(page.shot(), out / "txt2img-batch.png", box)
    page.viewport(WIDTH, HEIGHT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860")
    parser.add_argument("--model", required=True, help="the CLIP the tab uses (a folder)")
    parser.add_argument("--grid", type=Path, help="a WebUI grid PNG (default: generate one)")
    parser.add_argument("--out", type=Path, default=HERE / "screenshots")
    parser.add_argument("--regenerate", action="store_true", help="also regenerate")
    parser.add_argument("--probe-after-generation", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    grid = args.grid or generate_grid(args.url, Path(tempfile.mkdtemp(prefix="clipprobe-shots-")))
    check = Checks()
    page = Page(args.url)
    try:
        analyze(page, grid, args.model)
        check_answer(page, check, args.out)
        check_heatmap(page, check, args.out)
        check_details(page, check, args.out)
        if args.regenerate:
            regenerate(page, check, args.out)
        if args.probe_after_generation:
            probe_after_generation(page, args.url, args.model, check, args.out)
    finally:
        page.quit()
    if check.failed:
        print(f"{len(check.failed)} check(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
