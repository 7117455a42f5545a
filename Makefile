# make install | demo | test — each creates .venv when it is missing.
#   PILLOW=pillow-simd (default) builds Pillow-SIMD from source (needs a C compiler and the
#   JPEG/zlib headers); PILLOW=pillow installs stock Pillow instead.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PILLOW ?= pillow-simd
# AVX2 where the CPU has it (Pillow-SIMD's fastest paths), else the compiler's default.
SIMD_CC := $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && echo "cc -mavx2" || echo cc)
STAMP := $(VENV)/.installed-$(PILLOW)

.PHONY: install demo test clean bytecode

install: $(STAMP) bytecode

# Byte-compiled once, as pip does for a regular install (an editable one does not): where
# PYTHONDONTWRITEBYTECODE is set (CI images, this project's machines) every process would
# otherwise compile the package again, 0.18 s each, and a conversion starts one per core.
# Only files changed since are compiled again.
bytecode: $(STAMP)
	$(PY) -m compileall -q tfrecordkit

$(STAMP): setup.cfg setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	TFRECORDKIT_PILLOW=$(PILLOW) CC="$(SIMD_CC)" $(PIP) install -q -e '.[test,dask]'
	@# Test extras (matplotlib) pull stock Pillow into the same PIL/ folder: put ours back on top.
	$(PIP) uninstall -q -y pillow pillow-simd
	CC="$(SIMD_CC)" $(PIP) install -q --no-deps $(if $(filter pillow-simd,$(PILLOW)),--no-binary pillow-simd) $(PILLOW)
	$(PY) -c "import PIL.Image, tfrecordkit; print('installed tfrecordkit', tfrecordkit.__version__, 'with Pillow', PIL.__version__)"
	rm -f $(VENV)/.installed-*
	touch $@

demo: install
	$(PY) -m tfrecordkit.demo data_samples demo_out

test: install
	$(PY) -m pytest -q

clean:
	rm -rf demo_out .pytest_cache build *.egg-info
