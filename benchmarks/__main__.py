"""``python -m benchmarks``: the benchmark table (:func:`benchmarks.run.main`)."""

from benchmarks.run import main

raise SystemExit(main())
