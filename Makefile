# The two commands of the README. Both create the environment on first use.
.PHONY: setup analyze test test-slow lint docs

setup:
	bash scripts/setup.sh

analyze: setup
	.venv/bin/rhojax analyze smollm2-135m --budget quick --out results/smollm2-135m-quick

# `make test` is the suite a developer runs (under 10 minutes on two cores): every test on tiny random
# models, closed forms and plain NumPy twins, the property tests under the derandomized ci profile.
# `make test-slow` runs the long checks: the tests on the real packaged models (parity with transformers,
# the main job end to end in a subprocess and in Chromium, the tutorial) and the property tests again
# under the dev profile (1,000 fresh examples per theorem). CI (.ci/run) runs both.
# `make test` compiles with XLA's backend optimisation off: its tiny models spend far more time compiling
# than computing (the subset of two API and profile test files: 110 s -> 69 s); matrix products still run in
# XLA's optimised runtime kernels. The subprocesses the tests start inherit the flag.
test: setup
	XLA_FLAGS="--xla_backend_optimization_level=0 $$XLA_FLAGS" \
		.venv/bin/python -m pytest -q -n 2 --dist loadgroup -m "not slow"

test-slow: setup
	.venv/bin/python -m pytest -q -n 2 --dist loadgroup -m slow
	HYPOTHESIS_PROFILE=dev .venv/bin/python -m pytest -q -n 2 -p no:cacheprovider property_tests

lint: setup
	.venv/bin/ruff check rhojax tests property_tests benchmarks scripts

docs: setup
	.venv/bin/python scripts/api_docs.py build/api
