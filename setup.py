"""Shim for tools that still call setup.py; the metadata lives in setup.cfg.

pillow-simd is a drop-in, faster build of Pillow (the same ``PIL`` module) that
compiles from source. ``TFRECORDKIT_PILLOW=pillow pip install .`` depends on
stock Pillow instead, for machines without a C compiler.
"""
import configparser
import os

from setuptools import setup

PILLOW_DEFAULT = "pillow-simd"

config = configparser.ConfigParser()
config.read(os.path.join(os.path.dirname(os.path.abspath(__file__)), "setup.cfg"))
requires = [line.strip() for line in config["options"]["install_requires"].splitlines() if line.strip()]
pillow = os.environ.get("TFRECORDKIT_PILLOW", PILLOW_DEFAULT)
requires = [pillow if line.startswith(PILLOW_DEFAULT) else line for line in requires]

setup(install_requires=requires)
