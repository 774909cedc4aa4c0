# make setup | make test | make run
# Only `setup` uses the network (package registries); tests and the main job run in a private
# network namespace with loopback only, so nothing can silently download at run time.

PY    := .venv/bin/python
STAMP := .venv/.installed
# Prefer the shared helper; otherwise do the same thing inline (needs root, as on these machines).
OFFLINE := $(if $(wildcard ../shared/bin/offline),../shared/bin/offline,unshare -n -- sh -c 'ip link set lo up && exec "$$@"' offline)

.PHONY: setup test run cluster-check cluster-check-fault

# Chromium (Debian's package) lets the report's test open the HTML page as a reader would; optional:
# without apt-get or root, setup says so and that test skips.
setup: $(STAMP)
	$(PY) -m vda.assets fetch-data
	$(PY) -m attack_workers.lexicon.resources fetch
	$(PY) -m attack_workers.lexicon build
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium) \
	    || echo "setup: chromium could not be installed; the report's browser test will skip"; \
	else echo "setup: no apt-get or not root: chromium not installed; the report's browser test will skip"; fi

# torch first and pinned: it installs the local CPU wheel; an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -c constraints.txt -e '.[test]'
	$(PY) -m pip check
	touch $@

test: setup
	$(OFFLINE) $(PY) -m pytest -q

run: setup
	$(OFFLINE) $(PY) tune/sweep.py

# The used-by cluster path on this machine: `ray start` a head and a worker node (cluster.yaml's start
# commands), run a tiny sweep on them, check where trials and attacks ran and that the store is complete,
# stop both nodes by pid (scripts/cluster_check.py; docs/cluster.md). One private network namespace for
# the whole run. cluster-check-fault kills the worker node's raylet mid-sweep.
cluster-check: setup
	$(OFFLINE) $(PY) scripts/cluster_check.py

cluster-check-fault: setup
	$(OFFLINE) $(PY) scripts/cluster_check.py --fault
