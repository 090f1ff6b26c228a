"""Reading scanned pages: image-only PDF pages and image files (PNG, JPEG, TIFF with all its pages) by OCR.

The engine is Tesseract (Debian's `tesseract-ocr` with the English, German and French data), reached
through pytesseract; it was chosen by measurement against RapidOCR (ONNX) on the same pages
(`bench/ocr.py`, README "OCR"). It runs in the parser process under the same memory and time limits as
every parser (Tesseract is that process's child: it inherits the limits and the low priority). An OCR'd
page is cited like any page, its heading saying it is OCR text and with what confidence.

Limits: an image larger than MAX_PIXELS is refused before it is decoded (a 30,000 x 30,000 PNG is a
bomb); a large one is scaled down to MAX_SIDE; a file has at most MAX_PAGES pages read; each page at
most PAGE_TIMEOUT_S seconds.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sealroom.core.ingest.parsers import Unindexable

if TYPE_CHECKING:
    from PIL.Image import Image

LANGUAGES = "eng+deu+fra"
DPI = 300  # PDF pages are rendered at this resolution for OCR
MAX_PIXELS = 120_000_000  # an image declaring more is not decoded
MAX_SIDE = 7000  # pixels; larger images are scaled down first (about A4 at 600 dpi)
MAX_PAGES = 300  # pages of one file read by OCR at most (the rest: the file says it was cut)
PAGE_TIMEOUT_S = 60
#: A page with fewer characters of text than this (after OCR is considered) counts as image-only
MIN_PAGE_CHARS = 20


class OcrUnavailable(Unindexable):
    """Tesseract (or a library OCR needs) is not installed: the file is skipped, saying so."""


@dataclass
class OcrPage:
    text: str
    confidence: float  # the engine's mean word confidence, 0-100


def available() -> str:
    """'' when OCR can run here, else why not (shown in the file's reason)."""
    if not shutil.which("tesseract"):
        return "OCR is not available: install tesseract-ocr"
    return ""


def heading(confidence: float, original: str | None = None) -> str:
    """An OCR'd page's heading: what the citation, preview and export show about the text's origin."""
    mark = f"OCR text, confidence {confidence:.0f} %"
    return f"{original} · {mark}" if original else mark


def read(image: Image) -> OcrPage:
    """The text of one page image, its lines and paragraphs kept, with the engine's confidence."""
    import pytesseract

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # one thread per parser process: they run side by side
    if blank(image):
        return OcrPage("", 0.0)

    image = _fit(image)
    try:
        data = pytesseract.image_to_data(
            image,
            lang=LANGUAGES,
            config="--psm 3",
            output_type=pytesseract.Output.DICT,
            timeout=PAGE_TIMEOUT_S,
        )
    except pytesseract.TesseractNotFoundError:
        raise OcrUnavailable(available() or "OCR is not available") from None
    except RuntimeError as exc:  # pytesseract's timeout
        raise TimeoutError(f"OCR of one page took longer than {PAGE_TIMEOUT_S} s") from exc
    lines: dict[tuple[int, int, int], list[str]] = {}
    confidences: list[float] = []
    for i, word in enumerate(data["text"]):
        word = str(word).strip()
        if not word:
            continue
        key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
        lines.setdefault(key, []).append(word)
        conf = float(data["conf"][i])
        if conf >= 0:
            confidences.append(conf)
    out: list[str] = []
    previous: tuple[int, int] | None = None
    for (block, par, _), words in lines.items():
        if previous is not None and previous != (block, par):
            out.append("")  # a blank line between paragraphs, as in a text file
        out.append(" ".join(words))
        previous = (block, par)
    confidence = sum(confidences) / len(confidences) if confidences else 0.0
    return OcrPage("\n".join(out).strip(), confidence)


#: Mean change a 3x3 median filter makes to a page above which the page counts as speckled (a fax, a
#: poor scan) and is filtered: clean renders measure 0.5-1.7, the noisy scan set 6.7-9.6 (dev pages)
SPECKLE = 4.0
#: A page image whose longer side is below this many pixels (an A4 page under about 250 dpi) is scaled up
#: by half before OCR: Tesseract reads best near 300 dpi (dev pages: noisy CER 7.4 % -> 6.5 %)
SMALL_SIDE = 3000


def blank(image: Image) -> bool:
    """A page with nothing on it (a scanner's empty back side): nothing for OCR to read."""
    from PIL import ImageStat

    small = image.convert("L")
    small.thumbnail((256, 256))
    return bool(ImageStat.Stat(small).stddev[0] < 2.0)


def _fit(image: Image) -> Image:
    """Greyscale, no side longer than MAX_SIDE; speckles removed from a noisy page, a small page scaled up."""
    from PIL import Image as PILImage
    from PIL import ImageChops, ImageFilter, ImageStat

    if max(image.size) > MAX_SIDE:
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    image = image.convert("L") if image.mode != "L" else image
    smoothed = image.filter(ImageFilter.MedianFilter(3))
    if ImageStat.Stat(ImageChops.difference(image, smoothed)).mean[0] > SPECKLE:
        image = smoothed
    if max(image.size) < SMALL_SIDE:
        image = image.resize((image.size[0] * 3 // 2, image.size[1] * 3 // 2), PILImage.Resampling.LANCZOS)
    return image


def image_pages(path: Path) -> Iterator[Image]:
    """The pages of an image file (a TIFF may hold many), each decoded only when read."""
    from PIL import Image as PILImage
    from PIL import ImageSequence

    PILImage.MAX_IMAGE_PIXELS = MAX_PIXELS  # larger: DecompressionBombError before any decoding
    with PILImage.open(path) as image:
        for n, frame in enumerate(ImageSequence.Iterator(image)):
            if n >= MAX_PAGES:
                return
            if frame.size[0] * frame.size[1] > MAX_PIXELS:
                raise ValueError("image too large")
            if frame.format == "JPEG" or image.format == "JPEG":
                frame.draft("L", (MAX_SIDE, MAX_SIDE))  # decode a large JPEG at a reduced size
            yield frame


def pdf_page_image(document: Any, index: int) -> Image:
    """Page `index` of a pypdfium2 document rendered for OCR."""
    page = document[index]
    try:
        width, height = page.get_size()
        scale = min(DPI / 72, MAX_SIDE / max(width, height, 1))
        bitmap = page.render(scale=scale, grayscale=True)
        return bitmap.to_pil()
    finally:
        page.close()
