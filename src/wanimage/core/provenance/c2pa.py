"""C2PA Content Credentials, written and read with the official `c2pa-python` library.

Every result PNG gets a manifest with one `c2pa.created` action whose digitalSourceType is
IPTC's trainedAlgorithmicMedia, the claim generator (wanimage and its version), the model id and
engine as the action's parameters and software agent, and, for edits, the input images as
`inputTo` ingredients named by their SHA-256 (no pixels, no thumbnails).

Signing: the certificate chain and key given in settings, or else a certificate made on first
start in DATA_DIR/c2pa/: a self-signed ES256 leaf. c2pa-rs refuses a self-signed *CA* certificate
but accepts a self-signed end-entity one (CA:FALSE, digitalSignature, an emailProtection /
documentSigning EKU, subject and authority key ids), so no home-made CA is needed. Readers
report such a manifest as signed but untrusted, which is the truth: nobody vouches for the key.

Cost: `Builder.sign` streams the PNG through Python callbacks and hashes it: 3.2-3.5 ms
for a 1K PNG even with thumbnails and verify-after-sign off (the pixels were just made here;
reading them back proves nothing). So a PNG is signed through c2pa-rs's data-hash flow instead
(c2pa_datahash.py: one hashlib pass, the manifest placed by us), about half of that; `Builder.sign`
is the fallback when that flow is unavailable or fails. The signers are built once and reused."""

from __future__ import annotations

import datetime
import io
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .c2pa_datahash import DataHashSigner, DataHashUnavailable, PngData

log = logging.getLogger(__name__)

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
CERT_FILE, KEY_FILE = "signer.pem", "signer.key"
CERT_DAYS = 3 * 365
RENEW_BEFORE = datetime.timedelta(days=30)

# Reading and signing stay offline: no OCSP, no remote manifests, no thumbnails.
_SIGN_SETTINGS = {
    "builder": {"thumbnail": {"enabled": False}},
    "verify": {"verify_after_sign": False, "ocsp_fetch": False, "remote_manifest_fetch": False},
}
_ALGORITHMS = {"es256": c2pa.C2paSigningAlg.ES256, "es384": c2pa.C2paSigningAlg.ES384,
               "es512": c2pa.C2paSigningAlg.ES512, "ps256": c2pa.C2paSigningAlg.PS256,
               "ed25519": c2pa.C2paSigningAlg.ED25519}


@dataclass(frozen=True)
class Ingredient:
    """An input image of an edit, named by the SHA-256 of its bytes."""

    title: str
    mime: str
    sha256: str


def manifest_definition(*, title: str, version: str, model: str, engine: str,
                        ingredients: list[Ingredient]) -> dict:
    """The manifest JSON the Builder takes: what wanimage claims about one image."""
    action = {
        "action": "c2pa.created",
        "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
        "softwareAgent": {"name": f"wanimage {engine} engine", "version": version},
        "parameters": {"org.wanimage.model": model, "org.wanimage.engine": engine},
    }
    return {
        "claim_generator_info": [{"name": "wanimage", "version": version}],
        "title": title,
        "format": "image/png",
        "ingredients": [
            {"title": i.title, "format": i.mime, "relationship": "inputTo",
             "instance_id": f"sha256:{i.sha256}", "metadata": {"org.wanimage.sha256": i.sha256}}
            for i in ingredients
        ],
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [action]}}],
    }


class ContentCredentials:
    """A signer built once; `sign_png` adds a manifest to finished PNG bytes."""

    def __init__(self, chain_pem: bytes, key_pem: bytes, *, alg: str = "es256",
                 tsa_url: str | None = None, library_settings: dict | None = None,
                 data_hash: bool = True) -> None:
        if alg.lower() not in _ALGORITHMS:
            raise ValueError(f"C2PA signing algorithm {alg!r}: use one of {sorted(_ALGORITHMS)}")
        info = c2pa.C2paSignerInfo(_ALGORITHMS[alg.lower()], chain_pem, key_pem,
                                   tsa_url.encode() if tsa_url else None)
        signer = c2pa.Signer.from_info(info)
        library_settings = _SIGN_SETTINGS if library_settings is None else library_settings
        self._context = c2pa.Context(settings=c2pa.Settings.from_dict(library_settings), signer=signer)
        self._lock = threading.Lock()  # native contexts shared by the worker threads
        self._data_hash: DataHashSigner | None = None
        if data_hash:
            try:
                self._data_hash = DataHashSigner(info, library_settings)
            except DataHashUnavailable as exc:
                log.warning("C2PA: signing through Builder.sign, the data-hash flow is unavailable: %s", exc)

    @classmethod
    def from_files(cls, cert: Path | None, key: Path | None, data_dir: Path, *, alg: str = "es256",
                   tsa_url: str | None = None) -> ContentCredentials:
        """The configured chain and key, or the self-made certificate in data_dir/c2pa."""
        if (cert is None) != (key is None):
            raise ValueError("set both WANIMAGE_PROVENANCE_C2PA_CERT and WANIMAGE_PROVENANCE_C2PA_KEY, or neither")
        if cert is None or key is None:
            cert, key = ensure_self_signed(data_dir / "c2pa")
            alg = "es256"
        return cls(cert.read_bytes(), key.read_bytes(), alg=alg, tsa_url=tsa_url)

    @property
    def path(self) -> str:
        """How PNGs are signed: "data-hash" (c2pa_datahash.py) or "stream" (Builder.sign)."""
        return "stream" if self._data_hash is None else "data-hash"

    def sign_png(self, png: PngData, manifest: dict, *, sha256: bytes | None = None) -> bytes:
        """The signed PNG; `png` its bytes or its pieces in order (postprocess.png_parts);
        `sha256`, when given, their SHA-256, already computed (the data-hash flow's hard binding)."""
        fast = self._data_hash
        if fast is not None:
            try:
                return fast.sign_png(png, manifest, sha256=sha256)
            except DataHashUnavailable as exc:  # from now on Builder.sign, said once
                self._data_hash = None
                log.warning("C2PA: the data-hash flow failed, signing through Builder.sign from now on: %s", exc)
        out = io.BytesIO()
        with self._lock:
            builder = c2pa.Builder(json.dumps(manifest), self._context)
            source = png if isinstance(png, bytes | bytearray | memoryview) else b"".join(png)
            builder.sign("image/png", io.BytesIO(source), out)
        return out.getvalue()


def ensure_self_signed(directory: Path) -> tuple[Path, Path]:
    """DIR/signer.pem and DIR/signer.key, made now when absent or expiring within 30 days."""
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if cert.not_valid_after_utc - RENEW_BEFORE > datetime.datetime.now(datetime.UTC):
            return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(self_signed_certificate(key).public_bytes(serialization.Encoding.PEM))
    log.info("C2PA: made a self-signed signing certificate in %s (readers will call it untrusted)", directory)
    return cert_path, key_path


def self_signed_certificate(key: ec.EllipticCurvePrivateKey, common_name: str = "wanimage") -> x509.Certificate:
    """An end-entity certificate that passes c2pa-rs's certificate profile (C2PA 2.x 14.5.1)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} content credentials"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    usage = x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=False,
                          crl_sign=False, encipher_only=False, decipher_only=False)
    return (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class ManifestReport:
    status: str  # "valid" (trusted signer) | "untrusted" (intact, unknown signer) | "invalid" | "none"
    generator: str | None = None  # "wanimage 0.1.0"
    signer: str | None = None  # the certificate's common name
    digital_source_type: str | None = None
    model: str | None = None
    engine: str | None = None
    ingredients: tuple[str, ...] = ()  # SHA-256 of each input image
    failures: tuple[str, ...] = ()  # validation codes that failed (other than trust)

    @property
    def by_wanimage(self) -> bool:
        return bool(self.generator and self.generator.startswith("wanimage"))


def read_manifest(data: bytes, mime: str, trust_anchors: bytes | None = None) -> ManifestReport:
    """The active manifest of an image and whether it holds: signature, hashes, trust."""
    settings = {"verify": {"ocsp_fetch": False, "remote_manifest_fetch": False}}
    if trust_anchors:
        settings["trust"] = {"trust_anchors": trust_anchors.decode()}
    context = c2pa.Context(settings=c2pa.Settings.from_dict(settings))
    try:
        reader = c2pa.Reader(mime, io.BytesIO(data), context=context)
    except c2pa.C2paError as exc:
        if "ManifestNotFound" in type(exc).__name__ or "not found" in str(exc).lower():
            return ManifestReport("none")
        return ManifestReport("invalid", failures=(str(exc)[:200],))
    with reader:
        state = reader.get_validation_state() or "Invalid"
        results = reader.get_validation_results() or {}
        manifest = reader.get_active_manifest() or {}
    failures = tuple(f.get("code", "") for f in (results.get("activeManifest") or {}).get("failure", []))
    status = {"Trusted": "valid", "Valid": "untrusted"}.get(state, "invalid")
    return _summarise(manifest, status, tuple(f for f in failures if f != "signingCredential.untrusted"))


def _summarise(manifest: dict, status: str, failures: tuple[str, ...]) -> ManifestReport:
    info = (manifest.get("claim_generator_info") or [{}])[0]
    generator = " ".join(str(v) for v in (info.get("name"), info.get("version")) if v) or None
    created = {}
    for assertion in manifest.get("assertions", []):
        if assertion.get("label", "").startswith("c2pa.actions"):
            created = next((a for a in assertion["data"].get("actions", [])
                            if a.get("action") == "c2pa.created"), created)
    params = created.get("parameters") or {}
    ingredients = tuple((i.get("metadata") or {}).get("org.wanimage.sha256", i.get("instance_id", ""))
                        for i in manifest.get("ingredients", []))
    return ManifestReport(status, generator, (manifest.get("signature_info") or {}).get("common_name"),
                          created.get("digitalSourceType"), params.get("org.wanimage.model"),
                          params.get("org.wanimage.engine"), ingredients, failures)
