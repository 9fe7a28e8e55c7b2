"""wanimage: a self-hosted server for the Wan 2.7 Image API."""

__version__ = "0.1.0"
