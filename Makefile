# make demo: a local S3 server, a real tar.gz backup piped through the cloudpipe command, verified.
# make test: a virtual environment in .venv with cloudpipe and its test tools, then the tests
# (which start their own SeaweedFS and moto servers on 127.0.0.1).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-ceph lint docs bench peak-rss bench-resume bench-asgi clean

$(VENV)/.test: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.dev: $(VENV)/.test
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.test
	$(PY) examples/demo.py

test: $(VENV)/.test
	$(PY) -m pytest

# The same suite against a throwaway single-node Ceph RADOS Gateway (Debian's packages).
test-ceph: $(VENV)/.test
	@if bash tests/install_ceph.sh; then \
		CLOUDPIPE_SERVERS=ceph $(PY) -m pytest; \
	else \
		echo "SKIP ******** make test-ceph: Debian's Ceph packages could not be installed;" \
			"the suite did NOT run against Ceph RGW ********"; \
	fi

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict cloudpipe

$(VENV)/.docs: $(VENV)/.test
	$(PY) -m pip install --quiet -e '.[docs]'
	touch $@

docs: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

$(VENV)/.bench: $(VENV)/.test
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $@

# s3fs pins aiobotocore and botocore, so it gets a virtual environment of its own.
.venv-s3fs/.installed:
	$(PYTHON) -m venv .venv-s3fs
	.venv-s3fs/bin/python -m pip install --quiet s3fs
	touch $@

# cloudpipe against raw boto3, smart_open, s3fs and upload_fileobj, on a local SeaweedFS and
# behind a distant-store proxy (WAN profiles A and B): tables on stdout, and docs/benchmarks.md,
# its charts and .json (about 50 minutes on 2 cores).
bench: $(VENV)/.bench .venv-s3fs/.installed
	$(PY) -m benchmarks.compare --flat-mib 8192

peak-rss: $(VENV)/.test
	$(PY) -m benchmarks.peak_rss

# A 2 GiB stream killed after 1.5 GiB, then resumed: the journal's size, verify and upload time.
bench-resume: $(VENV)/.test
	$(PY) -m benchmarks.resume

# A 1 GiB request body through examples/asgi_upload.py: the service's memory, and the loop's lag.
bench-asgi: $(VENV)/.test
	$(PY) -m benchmarks.asgi

clean:
	rm -rf $(VENV) .venv-s3fs build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
