"""Editing faces in a trained generator's latent space: a photo into it (projection), Radford's
arithmetic on faces, and named attribute directions (InterFaceGAN) for sliders and edits."""
