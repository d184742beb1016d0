"""Evaluation: metrics, the FID network, scores with floors, the best generator, nearest faces."""
