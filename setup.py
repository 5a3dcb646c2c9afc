"""Only the optional compiled fast path; everything else is in pyproject.toml.

``optional=True``: where it cannot be built (no compiler), Volley installs and
runs on the pure-Python path (engine/smpp/fastpath.py says which one runs).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("engine.smpp._speedups", ["engine/smpp/_speedups.c"], optional=True),
    ]
)
