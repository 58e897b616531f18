"""Benchmarks: ``python -m benchmarks`` (or ``python benchmarks/run.py``) measures rhojax against PyTorch
baselines written here, every figure a ratio measured in the same run (see :mod:`benchmarks.run`)."""
