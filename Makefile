# The two commands of the README. Both create the environment on first use.
.PHONY: setup analyze test lint docs

setup:
	bash scripts/setup.sh

analyze: setup
	.venv/bin/rhojax analyze smollm2-135m --budget quick --out results/smollm2-135m-quick

test: setup
	.venv/bin/python -m pytest -q -n 2 --dist loadgroup

lint: setup
	.venv/bin/ruff check rhojax tests property_tests benchmarks scripts

docs: setup
	.venv/bin/python scripts/api_docs.py build/api
