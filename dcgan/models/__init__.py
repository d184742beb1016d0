"""Models: the architectures, their layers, DiffAugment and mixed precision."""
