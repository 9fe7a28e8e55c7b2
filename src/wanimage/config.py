"""Settings, read once from the environment (WANIMAGE_*) and passed explicitly."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WANIMAGE_", extra="ignore")

    # Network
    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str | None = None  # e.g. https://images.example.com behind a proxy
    allow_insecure_bind: bool = False  # bind beyond loopback without API keys

    # Auth: comma-separated keys, or a file with one key per line
    api_keys: SecretStr = SecretStr("")  # secrets stay out of reprs and logs
    api_keys_file: Path | None = None

    # Storage
    data_dir: Path = Path("data")
    database_url: str | None = None  # default: sqlite in data_dir
    result_ttl_seconds: int = 24 * 3600
    upload_ttl_seconds: int = 48 * 3600  # SDK uploads (oss://): the official temporary-file lifetime
    retention_interval_seconds: float = 600

    # Images in an S3-compatible store (docs/storage.md) when an endpoint or a bucket is set; else
    # in data_dir/files. No endpoint with a bucket: AWS S3. Keys left unset: boto3's own chain.
    s3_endpoint: str | None = None  # e.g. http://127.0.0.1:8333, as wanimage reaches it
    s3_public_endpoint: str | None = None  # as clients reach it; presigned URLs are signed for it
    s3_bucket: str | None = None  # default "wanimage"; created when absent
    s3_access_key: str | None = None
    s3_secret_key: SecretStr | None = None
    s3_region: str = "us-east-1"

    # Work
    workers: int = 1
    max_queue: int = 64  # PENDING tasks accepted before 429 Throttling
    sync_timeout_seconds: float = 290.0  # below the dashscope SDK's 300 s client timeout
    heartbeat_seconds: float = 5.0
    stale_after_seconds: float = 60.0  # RUNNING without a heartbeat this long is recovered
    max_attempts: int = 2  # a task whose worker died is re-queued once, then FAILED

    # Inputs
    max_body_bytes: int = 64 * 1024 * 1024
    max_image_bytes: int = 20 * 1024 * 1024
    fetch_timeout_seconds: float = 15.0
    allow_private_urls: bool = False  # let image URLs reach loopback / private networks

    # Output
    png_compress_level: int = 1

    # Provenance (docs/provenance.md): what every result PNG says about itself.
    provenance_c2pa: bool = True  # a signed C2PA manifest
    provenance_c2pa_cert: Path | None = None  # PEM chain, leaf first; unset: self-made in data_dir/c2pa
    provenance_c2pa_key: Path | None = None  # PEM private key of that leaf
    provenance_c2pa_alg: str = "es256"  # es256 | es384 | es512 | ps256 | ed25519
    provenance_c2pa_tsa_url: str | None = None  # RFC 3161 time stamps; unset: none (stays offline)
    provenance_c2pa_trust_anchors: Path | None = None  # PEM roots `verify` trusts
    provenance_xmp: bool = True  # IPTC DigitalSourceType + GB 45438 TC260:AIGC label
    provenance_producer: str = "wanimage"  # the label's ContentProducer; also keys the watermark
    provenance_propagator: str = ""  # the label's ContentPropagator, when this service is one
    provenance_parameters: bool = True  # the A1111 `parameters` chunk: prompt, seed, size, model
    provenance_watermark: bool = True  # the invisible watermark

    # Engines
    engine: str = "builtin"  # builtin | diffusers
    engine_config: Path | None = None
    device: str = "cpu"
    # Several devices (docs/diffusers.md "Acceleration"): e.g. "cuda:0,cuda:1" gives one
    # worker and one set of pipelines per device; unset: `device` alone.
    devices: str = ""

    def device_list(self) -> list[str]:
        return [d.strip() for d in self.devices.split(",") if d.strip()] or [self.device]

    # Presets and pulled weights (docs/diffusers.md): a preset serves both model ids with
    # the diffusers engine from the folders `wanimage pull` wrote; a config file overrides its keys.
    preset: str | None = None  # e.g. sd-turbo (`wanimage presets` lists them)
    models_dir: Path | None = None  # where `wanimage pull` installs weights; default data_dir/models

    def resolved_models_dir(self) -> Path:
        return (self.models_dir or self.data_dir / "models").expanduser()

    # Remote engine (docs/remote.md): an OpenAI-compatible images server (base URL ending
    # in /v1) serves both model ids when a URL is set; per model, `engine = "remote"` tables in the
    # engine config file do the same with every option.
    remote_url: str | None = None
    remote_model: str = ""  # the backend's model name; "" sends none
    remote_api_key: SecretStr | None = None
    remote_timeout_seconds: float = 300.0
    remote_max_concurrency: int = 1
    remote_health_interval_seconds: float = 15.0

    # Thinking mode (docs/thinking.md): an OpenAI-compatible chat endpoint plans prompts
    # when a URL is set (e.g. http://127.0.0.1:11434/v1); else, or when it fails, the built-in planner.
    thinking_llm_url: str | None = None
    thinking_llm_model: str = ""
    thinking_llm_key: SecretStr | None = None
    thinking_llm_timeout_seconds: float = 20.0

    # Ray Serve runner (wanimage serve --ray ADDRESS)
    ray_num_gpus: float = 1.0  # per engine replica
    ray_num_cpus: float = 1.0
    ray_min_replicas: int = 1
    ray_max_replicas: int = 1
    ray_target_ongoing_requests: float = 1.0
    ray_api_replicas: int = 1

    # Hostile load (docs/deploy.md "Tenants, limits and a full disk")
    admin_api_keys: SecretStr = SecretStr("")  # comma-separated keys that see every key's tasks
    metrics_allow: str = ""  # comma-separated addresses / networks that may read /metrics without a key
    metrics_token: SecretStr = SecretStr("")  # a bearer token good for /metrics only (a scraper's)

    @field_validator("metrics_allow")
    @classmethod
    def _networks(cls, value: str) -> str:
        for item in filter(None, (a.strip() for a in value.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an address or network (e.g. 10.0.0.5 or 10.0.0.0/24)") from None
        return value
    min_free_disk_bytes: int = 256 * 1024 * 1024  # below this /health says "low disk", submits answer 507
    input_max_pixels: int = 2048 * 2048  # inputs are downscaled on decode to this (the 2K tier's area)
    max_request_pixels: int = 9 * 8000 * 8000  # sum of a request's input pixels as sent (400 past it)
    decode_budget_bytes: int = 1024 * 1024 * 1024  # memory decoding inputs may hold, whole process (429)
    header_timeout_seconds: float = 10.0  # a client must finish its request headers within this

    def admin_keys(self) -> set[str]:
        return {k.strip() for k in self.admin_api_keys.get_secret_value().split(",") if k.strip()}

    def keys(self) -> set[str]:
        """Every accepted API key, admin keys included."""
        keys = {k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip()} | self.admin_keys()
        if self.api_keys_file and self.api_keys_file.exists():
            keys |= {
                line.strip()
                for line in self.api_keys_file.read_text().splitlines()
                if line.strip() and not line.startswith("#")
            }
        return keys

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tasks.db').resolve()}"
