"""Data: image sources, archives, downloads, decoding, the cache and the input pipeline."""
