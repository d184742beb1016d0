"""What users run: the CLI, the notebook's cells, the explorer, the web page, compare, export."""
