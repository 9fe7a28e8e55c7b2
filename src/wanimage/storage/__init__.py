"""Where result images and uploads live, and the signed URLs that reach them."""

from wanimage.storage.local import InvalidKey, LocalImageStore, load_or_create_secret, validate_key

__all__ = ["InvalidKey", "LocalImageStore", "load_or_create_secret", "validate_key"]
