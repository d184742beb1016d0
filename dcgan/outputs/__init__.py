"""What a run writes and how it is read back: the run folder, grids, plots, generators."""
