"""`wanimage verify FILE...`: which provenance marks each image carries (docs/provenance.md).

Prints, per file, the C2PA manifest (valid / untrusted signer / invalid / none), the XMP labels,
the generation parameters and the watermark. Exit status 0 only when every file carries a
wanimage mark; 1 when one does not; 2 when a file cannot be read. `--json` prints the same as
`POST /api/v1/verify`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config import Settings


def cmd_verify(args: argparse.Namespace) -> int:
    from ..core.provenance.verify import describe, verify_bytes

    settings = Settings()
    producer = args.producer or settings.provenance_producer
    anchors = settings.provenance_c2pa_trust_anchors
    trust = anchors.read_bytes() if anchors else None
    status, reports = 0, []
    for path in args.files:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            print(f"{path}\n  error: {exc.strerror or exc}", file=sys.stderr)
            status = 2
            continue
        report = verify_bytes(data, str(path), trust_anchors=trust)
        reports.append(report.to_dict(producer))
        if not args.json:
            print("\n".join(describe(report, producer)))
        if not report.marked(producer):
            status = max(status, 1)
    if args.json:
        print(json.dumps({"results": reports}, ensure_ascii=False, indent=2))
    return status


def register(sub: argparse._SubParsersAction) -> None:
    verify = sub.add_parser("verify", help="show the provenance marks of image files")
    verify.add_argument("files", nargs="+", metavar="FILE")
    verify.add_argument("--producer", help="the ContentProducer to expect (default: WANIMAGE_PROVENANCE_PRODUCER)")
    verify.add_argument("--json", action="store_true", help="print JSON, as POST /api/v1/verify answers")
    verify.set_defaults(func=cmd_verify)
