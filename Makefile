# The two commands of the README. Both create the environment on first use.
.PHONY: setup analyze test lint docs

setup:
	bash scripts/setup.sh

analyze: setup
	.venv/bin/rhojax analyze smollm2-135m --budget quick --out results/smollm2-135m-quick

# The property tests run twice: the derandomized ci profile (inside the suite) and the dev profile,
# which draws 1,000 fresh examples per theorem (about 20 s more on two cores).
test: setup
	.venv/bin/python -m pytest -q -n 2 --dist loadgroup
	HYPOTHESIS_PROFILE=dev .venv/bin/python -m pytest -q -n 2 -p no:cacheprovider property_tests

lint: setup
	.venv/bin/ruff check rhojax tests property_tests benchmarks scripts

docs: setup
	.venv/bin/python scripts/api_docs.py build/api
