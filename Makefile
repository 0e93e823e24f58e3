# Two commands do all set-up on a fresh machine:
#   make demo   - build the venv if needed, then run the main job on the embedded default data
#   make test   - build the venv if needed, then run the test suite (what .ci/run calls)
#
# The venv is rebuilt whenever setup.py, setup.cfg or constraints.txt change (the stamp
# file is keyed by their hash). ROS 2 Python comes from a sourced distro when there is one
# (the venv then sees the distro's site-packages and we do not install a second rclpy),
# and from the ros-kilted-* PyPI wheels otherwise.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
DEPS_HASH := $(shell cat setup.py setup.cfg constraints.txt | sha256sum | cut -c1-16)
STAMP := $(VENV)/.deps-$(DEPS_HASH)
BIN := $(VENV)/bin

.PHONY: venv demo test bench clean
venv: $(STAMP)

$(STAMP): setup.py setup.cfg constraints.txt
	@set -euo pipefail; rm -rf $(VENV); \
	if [ -n "$${ROS_DISTRO:-}" ] && $(PYTHON) -c "import rclpy" 2>/dev/null; then \
	  echo "ROS 2 $$ROS_DISTRO is sourced: using its rclpy (venv with system site-packages)"; \
	  $(PYTHON) -m venv --system-site-packages $(VENV); EXTRAS="test"; \
	else \
	  echo "no ROS 2 distro sourced: installing ROS 2 Kilted Python from PyPI wheels"; \
	  $(PYTHON) -m venv $(VENV); EXTRAS="ros,test"; \
	fi; \
	$(BIN)/pip install --quiet --upgrade pip; \
	$(BIN)/pip install --quiet -c constraints.txt -e ".[$$EXTRAS]"; \
	touch $@

demo: venv
	$(BIN)/depth_da_demo --out demo_out

test: venv
	$(BIN)/python -m pytest

bench: venv
	$(BIN)/python benchmarks/bench_procedural.py
	$(BIN)/python benchmarks/bench_networks.py

clean:
	rm -rf $(VENV) build install log demo_out .pytest_cache
