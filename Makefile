# make demo: a local S3 server, a real tar.gz backup piped through the cloudpipe command, verified
# (in .venv-demo, with only what the demo needs: cloudpipe and the SeaweedFS binary).
# make serve: that server, left running, with the AWS_* exports to try the command by hand
# (make serve PORT=9000 for a port of your choice).
# make test: a virtual environment in .venv with cloudpipe and its test tools, then the tests
# (which start their own SeaweedFS and moto servers on 127.0.0.1).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo serve test test-ceph lint wheel-check docs docs-check docs-check-ci bench peak-rss bench-resume bench-verify bench-asgi clean

$(VENV)/.test: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.dev: $(VENV)/.test
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

.venv-demo/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-demo
	.venv-demo/bin/python -m pip install --quiet --upgrade pip
	.venv-demo/bin/python -m pip install --quiet -e '.[demo]'
	touch $@

demo: .venv-demo/.installed
	.venv-demo/bin/python examples/demo.py

serve: .venv-demo/.installed
	.venv-demo/bin/python examples/serve.py $(if $(PORT),--port $(PORT))

# The suite runs in TEST_WORKERS processes (pytest-xdist), each with its own servers; the tests
# that assert on wall-clock time or a process's memory (marked alone) run after, by themselves.
TEST_WORKERS ?= 4
PYTEST_BOTH = $(PY) -m pytest -n $(TEST_WORKERS) -m "not alone" && $(PY) -m pytest -m alone

test: $(VENV)/.test
	$(PYTEST_BOTH)

# The same suite against a throwaway single-node Ceph RADOS Gateway (Debian's packages), one
# cluster per worker. Left out, as make test runs them: the tests that use no server or are the
# same on every server (the docs' code, the examples, the client's own timing), the writer's
# tests at max_concurrency 3, and those marked alone (the client's own time and memory).
test-ceph: $(VENV)/.test
	@if bash tests/install_ceph.sh; then \
		export CLOUDPIPE_SERVERS=ceph CLOUDPIPE_SERVER_TESTS_ONLY=1 CLOUDPIPE_CONCURRENCY=1 && \
			$(PY) -m pytest -n $(TEST_WORKERS) -m "not alone"; \
	else \
		echo "SKIP ******** make test-ceph: Debian's Ceph packages could not be installed;" \
			"the suite did NOT run against Ceph RGW ********"; \
	fi

# The wheel, built as a release would be, installed alone in a clean virtual environment.
wheel-check: $(VENV)/.dev
	rm -rf dist .venv-wheel
	$(PY) -m build --wheel --outdir dist . > /dev/null
	$(PYTHON) -m venv .venv-wheel
	.venv-wheel/bin/python -m pip install --quiet dist/cloudpipe_s3-*.whl
	cd /tmp && $(CURDIR)/.venv-wheel/bin/cloudpipe --version
	cd /tmp && $(CURDIR)/.venv-wheel/bin/python -c "import cloudpipe, cloudpipe.aio; print('imports:', cloudpipe.__file__)"
	$(PYTHON) -c "import glob, sys, zipfile; names = zipfile.ZipFile(glob.glob('dist/cloudpipe_s3-*.whl')[0]).namelist(); sys.exit(0 if any('.dist-info/' in n and 'LICENSE' in n for n in names) else 'the wheel has no LICENSE file')"

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict cloudpipe

$(VENV)/.docs: $(VENV)/.test
	$(PY) -m pip install --quiet -e '.[docs]'
	touch $@

docs: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# The built site as headless Chromium renders it, at 1280 and 800 px: a screenshot of each page
# (site-shots/), and a failure for a broken image, a table or code line wider than its column,
# a literal backslash in a table, or a chart without a legend (needs Debian's chromium).
docs-check: docs
	$(PY) -m tests.docs_pages site --shots site-shots

# CI's: the same checks without the screenshots, chromium installed from Debian if missing.
docs-check-ci: docs
	@if bash tests/install_chromium.sh; then \
		$(PY) -m tests.docs_pages site --no-shots; \
	else \
		echo "SKIP ******** make docs-check-ci: Debian's chromium could not be installed;" \
			"the rendered docs were NOT checked ********"; \
	fi

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

# cloudpipe verify of a 1 GiB file against the time to read and CRC32 (or MD5) it, and its memory.
bench-verify: $(VENV)/.test
	$(PY) -m benchmarks.verify

# A 1 GiB request body through examples/asgi_upload.py: the service's memory, and the loop's lag.
bench-asgi: $(VENV)/.test
	$(PY) -m benchmarks.asgi

clean:
	rm -rf $(VENV) .venv-s3fs .venv-demo .venv-wheel build dist site site-shots *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
