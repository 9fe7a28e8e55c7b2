"""Read back every mark from an image file: C2PA, XMP labels, parameters, the watermark.

Shared by `wanimage verify` and `POST /api/v1/verify`. A file carries a wanimage mark when its
watermark is found, when it has a C2PA manifest claimed by wanimage that still validates (trusted
or not), or when its GB 45438 label names this deployment's producer. A manifest whose hashes no
longer match (a changed pixel) is reported as invalid and is not a mark by itself."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from . import parameters as params
from . import watermark, xmp
from .c2pa import ManifestReport, read_manifest

MAX_PIXELS = 8192 * 8192  # refuse to decode more: a small file can claim huge dimensions
_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif",
         "TIFF": "image/tiff", "BMP": "image/bmp", "HEIF": "image/heif", "AVIF": "image/avif"}


@dataclass(frozen=True)
class FileReport:
    name: str
    format: str | None = None  # Pillow's name for it: PNG, JPEG, WEBP, ...
    c2pa: ManifestReport = ManifestReport("none")
    labels: xmp.Labels | None = None  # None: no XMP
    xmp_error: str | None = None
    parameters: str | None = None
    watermark: watermark.Detection | None = None
    error: str | None = None  # the file is not an image we can read

    def marked(self, producer: str) -> bool:
        wm_found = self.watermark is not None and self.watermark.found
        c2pa_ok = self.c2pa.by_wanimage and self.c2pa.status in ("valid", "untrusted")
        label = (self.labels.aigc or {}) if self.labels else {}
        return wm_found or c2pa_ok or (label.get("Label") == "1" and label.get("ContentProducer") == producer)

    def to_dict(self, producer: str) -> dict:
        wm = self.watermark
        payload = watermark.payload_for(producer)
        return {
            "file": self.name,
            "format": self.format,
            "error": self.error,
            "wanimage_mark": self.marked(producer),
            "c2pa": {"status": self.c2pa.status, "generator": self.c2pa.generator, "signer": self.c2pa.signer,
                     "digital_source_type": self.c2pa.digital_source_type, "model": self.c2pa.model,
                     "engine": self.c2pa.engine, "ingredients": list(self.c2pa.ingredients),
                     "failures": list(self.c2pa.failures)},
            "xmp": None if self.labels is None and self.xmp_error is None else {
                "digital_source_type": self.labels.digital_source_type if self.labels else None,
                "aigc": self.labels.aigc if self.labels else None,
                "error": self.xmp_error},
            "parameters": self.parameters,
            "watermark": None if wm is None else {
                "found": wm.found, "confidence": round(wm.confidence, 2),
                "payload": f"{wm.payload:08x}" if wm.payload is not None else None,
                "payload_matches_producer": wm.payload == payload if wm.found else None,
                "bit_margin": round(wm.bit_margin, 2)},
        }


def verify_bytes(data: bytes, name: str, *, trust_anchors: bytes | None = None) -> FileReport:
    """Everything that can be read from one file; never raises for a bad file."""
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            return FileReport(name, image.format, error=f"{image.width}x{image.height} is over {MAX_PIXELS} pixels")
        image.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        return FileReport(name, error=f"not an image this can read: {exc}")
    mime = _MIME.get(image.format or "", f"image/{(image.format or 'png').lower()}")
    labels, xmp_error = _labels(image)
    text = image.info.get(params.KEYWORD)
    return FileReport(
        name,
        image.format,
        read_manifest(data, mime, trust_anchors),
        labels,
        xmp_error,
        text if isinstance(text, str) else None,
        watermark.detect(image),
    )


def _labels(image: Image.Image) -> tuple[xmp.Labels | None, str | None]:
    raw = image.info.get("xmp") or image.info.get(xmp.PNG_KEYWORD)
    if not raw:
        return None, None
    try:
        return xmp.read(raw), None
    except ValueError as exc:
        return None, str(exc)[:200]


def describe(report: FileReport, producer: str) -> list[str]:
    """The lines `wanimage verify` prints for one file."""
    lines = [report.name]
    if report.error:
        return lines + [f"  error:      {report.error}", "  => no wanimage mark"]
    m = report.c2pa
    c2pa_line = {"valid": "valid (trusted signer)", "untrusted": "valid, untrusted signer",
                 "invalid": "INVALID", "none": "none"}[m.status]
    if m.status != "none":
        details = [d for d in (m.generator, f"signed by {m.signer!r}" if m.signer else None,
                               _short(m.digital_source_type), m.model and f"model {m.model}",
                               m.engine and f"engine {m.engine}",
                               m.ingredients and f"{len(m.ingredients)} input image(s)") if d]
        details += [f"failed: {', '.join(m.failures)}"] if m.failures else []
        c2pa_line += " - " + "; ".join(details)
    lines.append(f"  C2PA:       {c2pa_line}")
    lines.append(f"  XMP:        {_xmp_line(report)}")
    lines.append("  parameters: " + (report.parameters.replace("\n", " | ") if report.parameters else "none"))
    lines.append(f"  watermark:  {_watermark_line(report.watermark, producer)}")
    lines.append("  => wanimage mark found" if report.marked(producer) else "  => no wanimage mark")
    return lines


def _short(uri: str | None) -> str | None:
    return uri.rsplit("/", 1)[-1] if uri else None


def _xmp_line(report: FileReport) -> str:
    if report.xmp_error:
        return f"unreadable ({report.xmp_error})"
    if report.labels is None:
        return "none"
    parts = [f"DigitalSourceType {_short(report.labels.digital_source_type) or 'absent'}"]
    parts.append(f"AIGC {json.dumps(report.labels.aigc, ensure_ascii=False)}" if report.labels.aigc else "AIGC absent")
    return "; ".join(parts)


def _watermark_line(found: watermark.Detection | None, producer: str) -> str:
    if found is None or not found.found:
        return f"not found (best score {found.confidence:.1f} < {watermark.THRESHOLD})" if found else "not checked"
    match = "matches" if found.payload == watermark.payload_for(producer) else "does not match"
    return (f"found, payload {found.payload:08x} ({match} producer {producer!r}), "
            f"confidence {found.confidence:.1f}")
