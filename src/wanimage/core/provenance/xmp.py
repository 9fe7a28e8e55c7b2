"""XMP labels: IPTC's digital source type and the GB 45438-2025 implicit label.

GB 45438-2025 (effective 2025-09-01) and its practice guide TC260-PG-20258A put the implicit
label of a generated file in its metadata: the XMP property `TC260:AIGC` (namespace
http://www.tc260.org.cn/ns/AIGC/1.0/) whose value is a JSON object with Label "1" (generated),
ContentProducer, ProduceID, ReservedCode1, ContentPropagator, PropagateID, ReservedCode2.
IPTC's `Iptc4xmpExt:DigitalSourceType` carries the same trainedAlgorithmicMedia URI as the C2PA
action, for readers that know XMP but not C2PA.

Written as text (a fixed template, every value XML-escaped); read with defusedxml's ElementTree,
a real XML parser that refuses entity expansion and external references, so a hostile upload to
`wanimage verify` cannot blow it up. python-xmp-toolkit was not chosen: it needs the native
exempi library from the OS, which neither pip nor CI installs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from xml.sax.saxutils import escape

from defusedxml import ElementTree

from .c2pa import TRAINED_ALGORITHMIC_MEDIA

NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS_IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
NS_TC260 = "http://www.tc260.org.cn/ns/AIGC/1.0/"
AIGC_KEYS = ("Label", "ContentProducer", "ProduceID", "ReservedCode1", "ContentPropagator",
             "PropagateID", "ReservedCode2")
PNG_KEYWORD = "XML:com.adobe.xmp"  # the iTXt keyword of XMP in PNG (XMP spec part 3)


@dataclass(frozen=True)
class Labels:
    digital_source_type: str | None
    aigc: dict[str, str] | None  # the GB 45438 label's JSON, keys as written

    @property
    def says_generated(self) -> bool:
        return (self.aigc or {}).get("Label") == "1" or self.digital_source_type == TRAINED_ALGORITHMIC_MEDIA


def aigc_label(*, producer: str, produce_id: str, propagator: str = "", propagate_id: str = "") -> dict[str, str]:
    """The TC260-PG-20258A label: Label "1" (AI-generated); reserved codes left empty."""
    return {"Label": "1", "ContentProducer": producer, "ProduceID": produce_id, "ReservedCode1": "",
            "ContentPropagator": propagator, "PropagateID": propagate_id, "ReservedCode2": ""}


def packet(aigc: dict[str, str]) -> str:
    """An XMP packet with both labels."""
    label = json.dumps(aigc, ensure_ascii=False, separators=(",", ":"))
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        f'<rdf:RDF xmlns:rdf="{NS_RDF}">'
        f'<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="{NS_IPTC_EXT}" xmlns:TC260="{NS_TC260}">'
        f"<Iptc4xmpExt:DigitalSourceType>{escape(TRAINED_ALGORITHMIC_MEDIA)}</Iptc4xmpExt:DigitalSourceType>"
        f"<TC260:AIGC>{escape(label)}</TC260:AIGC>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="r"?>'
    )


def read(xmp: str | bytes) -> Labels:
    """Both labels from an XMP packet (as element or attribute, per RDF's abbreviated forms);
    missing ones are None. Raises ValueError for XML that does not parse."""
    text = xmp.decode("utf-8", "replace") if isinstance(xmp, bytes) else xmp
    start, end = text.find("<x:xmpmeta"), text.rfind("</x:xmpmeta>")
    body = text[start : end + len("</x:xmpmeta>")] if start >= 0 and end > start else text
    try:
        root = ElementTree.fromstring(body)
    except Exception as exc:  # ParseError, and defusedxml's refusals of entities and DTDs
        raise ValueError(f"XMP does not parse: {exc}") from exc
    source = _property(root, NS_IPTC_EXT, "DigitalSourceType")
    raw = _property(root, NS_TC260, "AIGC")
    aigc = None
    if raw is not None:
        try:
            parsed = json.loads(raw)
            aigc = {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else None
        except ValueError:
            aigc = {"unparsed": raw}
    return Labels(source, aigc)


def _property(root, namespace: str, name: str) -> str | None:
    tag = f"{{{namespace}}}{name}"
    for description in root.iter(f"{{{NS_RDF}}}Description"):
        if tag in description.attrib:
            return description.attrib[tag]
        element = description.find(tag)
        if element is not None:
            return (element.text or "").strip()
    return None
