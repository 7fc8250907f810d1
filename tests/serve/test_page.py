"""The web page in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright)."""

import os
import re

import pytest

CHROMIUM = os.environ.get("VIDLAKE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage"]

pytestmark = [
    pytest.mark.ray,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: apt-get install -y chromium"),
]


@pytest.fixture
def page(tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # a persistent context is how Playwright takes a fresh --user-data-dir of our own
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=ARGS)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors
        yield page
        context.close()


def _search(page, serve_url: str, query: str):
    """Open the page, search for ``query`` once the index is ready, and return the first hit."""
    page.goto(f"{serve_url}/")
    page.wait_for_selector("#status:has-text('index ready')")
    page.fill("#q", query)
    page.press("#q", "Enter")
    page.wait_for_selector(".hit")
    return page.locator(".hit").first


def test_search_and_open_a_timeline(page, serve_url, search_lake):
    _, ids = search_lake
    first = _search(page, serve_url, "a forklift drops a box")
    assert first.get_attribute("data-video") == ids["warehouse"]
    assert first.locator(".range").inner_text() == "0:10.0–0:14.0"
    assert first.locator("mark").all_inner_texts()[:3] == ["forklift", "drops", "box"]
    assert "forklift" in first.locator(".ev").inner_text()
    page.wait_for_function("document.querySelector('.hit img').complete && document.querySelector('.hit img').naturalWidth > 0")
    assert re.search(r"\?mode=hybrid|q=a\+forklift", page.url)

    first.click()
    page.wait_for_selector("#timeline:not([hidden])")
    page.wait_for_function("document.querySelector('#frame').dataset.t === '12.000'")
    assert page.locator("#frame").get_attribute("data-marks") == "2"  # the box point and the forklift box
    events = page.locator("#events li.in-hit")
    texts = events.all_inner_texts()
    assert any("The forklift drops a box" in t for t in texts) and any("forklift #3" in t for t in texts)
    assert page.locator("#events li").count() == 14  # 3 captions + 10 track samples + 1 point
    page.locator("#events li[data-kind='captions']").first.click()  # the frame follows the timeline
    page.wait_for_function("document.querySelector('#frame').dataset.t === '2.500'")

    # filters and errors reach the page: a video filter, then an invalid range
    page.click(".filters summary")
    page.select_option("#video_id", ids["microscope"])
    page.fill("#q", "cells dividing")
    page.press("#q", "Enter")
    page.wait_for_function("document.querySelector('.hit') && document.querySelector('.hit').dataset.video === "
                           f"'{ids['microscope']}'")
    page.fill("#t_from", "5")
    page.fill("#t_to", "1")
    page.press("#q", "Enter")
    page.wait_for_selector("#error:not([hidden])")
    assert "after t_to" in page.locator("#error").inner_text()
    assert page.errors == []


def test_highlights_stay_on_their_words_after_an_emoji(page, serve_url, search_lake):
    from vidlake.serve.ranking import highlight

    text = "🐕🐕 a dog 🚲 drops a box"
    _, spans = highlight(text, ["dog", "box"])  # the server's offsets: code points
    page.goto(f"{serve_url}/")
    page.wait_for_selector("#status:has-text('index ready')")
    marks = page.evaluate("""([text, spans]) => {
        const p = document.createElement("p");
        p.append(highlighted(text, spans));
        return [...p.querySelectorAll("mark")].map((m) => m.textContent).concat([p.textContent]);
    }""", [text, [list(s) for s in spans]])
    assert marks == ["dog", "box", text]


def test_a_set_hit_shows_its_images_with_their_capture_times(page, serve_url, search_sets):
    card = _search(page, serve_url, "a deer grazing in a forest clearing")
    assert (card.get_attribute("data-media"), card.get_attribute("data-video")) == ("set", search_sets["deer"])
    assert card.locator(".media").inner_text().lower() == "image set · burst · 4 of 4 images"
    assert card.locator(".range").inner_text() == "2026-06-01 09:00:00"
    assert card.locator(".strip figcaption").all_inner_texts() == ["09:00:00", "09:00:02", "09:00:04", "09:00:06"]
    page.wait_for_function("[...document.querySelectorAll('.hit')[0].querySelectorAll('.strip img')]"
                           ".every((i) => i.complete && i.naturalWidth === 160)")
    # the deer points span three of the four photos: the fourth is shown dimmed
    page.fill("#q", "deer")
    page.select_option("#mode", "bm25")
    page.press("#q", "Enter")
    page.wait_for_selector(".hit[data-media='set'] .strip figure.out")
    points = page.locator(".hit[data-media='set']", has=page.locator(".strip figure.out")).first
    assert points.locator(".strip figure.in-hit").count() == 3 and "3 points on 2 images" in points.inner_text()

    # its timeline: a point's event shows its own photo with the points on it
    points.click()
    page.wait_for_selector("#timeline:not([hidden])")
    assert page.locator("#tl-title").inner_text().startswith("image set · burst · 4 images · 2026-06-01 09:00:00")
    page.locator("#events li[data-kind='points']").first.click()
    page.wait_for_function("document.querySelector('#frame').dataset.marks === '2'")
    first = page.evaluate("document.querySelector('.hit[data-media=set] figure').dataset.image")
    assert page.locator("#frame").get_attribute("data-image") == first
    assert "image 1 of 4 · 2026-06-01 09:00:00" in page.locator("#frame-caption").inner_text()

    # the photo EXIF turns upright is shown upright: taller than wide; sets are in the filter
    page.fill("#q", "a badger sniffs at the camera trap")
    page.press("#q", "Enter")
    page.wait_for_function(f"document.querySelector('.hit') && document.querySelector('.hit').dataset.video === "
                           f"'{search_sets['badger']}'")
    size = page.evaluate("""new Promise((done) => {
        const img = document.querySelector('.hit .strip img');
        const check = () => img.complete && img.naturalWidth ? done([img.naturalWidth, img.naturalHeight]) : setTimeout(check, 50);
        check();
    })""")
    assert size == [160, 320]
    assert page.locator(f"#video_id option[value='{search_sets['deer']}']").count() == 1
    assert page.errors == []
