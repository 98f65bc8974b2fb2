"""Tern's exporter: PyTorch / Hugging Face checkpoints -> .tern weight files (see export.py)."""
