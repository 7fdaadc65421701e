"""PDF output (governance.document.pdf_layout): an inline SVG chart is printed as an image of the same
SVG, at its size; a word break opportunity still breaks and leaves nothing in the text; a page that
refers to anything outside itself is not printed; the cycle collector rests while a PDF is rendered
and is back as it was afterwards."""

from __future__ import annotations

import gc
import subprocess

import pytest
import weasyprint
from weasyprint.urls import FatalURLFetchingError

from collector_watch import collector_states
from safepool.governance.document import pdf_from_html, pdf_layout

CHART = ('<svg class="marks" width="240" height="120" viewBox="0 0 240 120">'
         '<rect x="10" y="10" width="200" height="80" fill="#1f4e79"/><text x="20" y="110">a label</text></svg>')
PAGE = "<!DOCTYPE html><html><head><style>@page {{ size: A4 }}</style></head><body><figure>{}</figure></body></html>"


def boxes(box):
    yield box
    for child in getattr(box, "children", []):
        yield from boxes(child)


def test_an_inline_chart_is_printed_as_an_image_of_its_svg_at_its_size():
    document = pdf_layout(PAGE.format(CHART))
    (page,) = document.pages
    images = [b for b in boxes(page._page_box) if type(b).__name__ == "InlineReplacedBox"]
    assert len(images) == 1
    assert (images[0].width, images[0].height) == (240, 120)
    assert not [b for b in boxes(page._page_box) if getattr(b, "element_tag", None) in ("svg", "rect", "text")]
    assert pdf_from_html(PAGE.format(CHART)).startswith(b"%PDF-")


@pytest.mark.parametrize("reference", ['<img src="https://example.org/x.png">',
                                       '<img src="file:///etc/hostname">',
                                       '<div style="background: url(http://example.org/x.png)">x</div>'])
def test_a_page_that_refers_to_anything_outside_itself_is_not_printed(reference):
    with pytest.raises(FatalURLFetchingError):
        pdf_from_html(PAGE.format(reference))


def test_a_word_break_opportunity_still_breaks_and_leaves_nothing_in_the_text(tmp_path):
    page = PAGE.format('<p style="width: 25mm">false_<wbr>positive_<wbr>rate</p>')
    (laid_out,) = pdf_layout(page).pages
    paragraph = next(b for b in boxes(laid_out._page_box) if getattr(b, "element_tag", None) == "p")
    assert len(paragraph.children) >= 2  # broken after an underscore
    pdf = tmp_path / "page.pdf"
    pdf.write_bytes(pdf_from_html(page))
    text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    assert "false_" in text and "\u200b" not in text and "".join(text.split()) == "false_positive_rate"


def test_the_cycle_collector_rests_while_rendering_and_is_back_as_it_was(monkeypatch):
    during = collector_states(monkeypatch, weasyprint.HTML, "render")
    assert gc.isenabled()
    assert pdf_from_html(PAGE.format("text")).startswith(b"%PDF-")
    assert during == [False] and gc.isenabled()
    with pytest.raises(FatalURLFetchingError):
        pdf_from_html(PAGE.format('<img src="https://example.org/x.png">'))
    assert gc.isenabled()  # also after a refused page
    gc.disable()
    try:
        pdf_from_html(PAGE.format("text"))
        assert not gc.isenabled()  # a collector switched off before stays off
    finally:
        gc.enable()
