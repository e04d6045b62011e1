"""Builds the offline wheelhouse of the sysenv task: two versions of the tiny pure-Python package
labworker, as ordinary wheels (zip, dist-info with METADATA, WHEEL and RECORD). The files'
contents are fixed here: the grader knows their digests and judges the installed version by them.

Usage: python3 build-wheels.py <wheelhouse-dir>
"""
import base64
import hashlib
import os
import sys
import zipfile

INIT = '''"""labworker: a tiny model-service worker (exam material of the deploylab sysenv task)."""
__version__ = "{v}"
'''

MAIN = '''"""Run as `python -m labworker`: hold the package's BUILD file open and wait for work."""
import os
import signal
import sys
import time

from . import __version__


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    # Kept open for the life of the process: which installed copy of the package runs.
    build = open(os.path.join(here, "BUILD"), "rb")
    print(
        f"labworker {{__version__}} from {{here}}; MODEL_DIR={{os.environ.get('MODEL_DIR')!r}} "
        f"HF_HOME={{os.environ.get('HF_HOME')!r}}",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    finally:
        build.close()


main()
'''

BUILD = "labworker {v} ({tag})\n"
TAGS = {"1.4.0": "stable-2024.11", "2.0.0": "preview-2025.03"}

METADATA = """Metadata-Version: 2.1
Name: labworker
Version: {v}
Summary: Tiny model-service worker (exam material)
Requires-Python: >=3.9
"""

WHEEL = """Wheel-Version: 1.0
Generator: deploylab-sysenv
Root-Is-Purelib: true
Tag: py3-none-any
"""


def files_of(v: str) -> dict:
    return {
        "labworker/__init__.py": INIT.format(v=v),
        "labworker/__main__.py": MAIN.format(),
        "labworker/BUILD": BUILD.format(v=v, tag=TAGS[v]),
        f"labworker-{v}.dist-info/METADATA": METADATA.format(v=v),
        f"labworker-{v}.dist-info/WHEEL": WHEEL,
    }


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build(out: str, v: str) -> str:
    files = {k: s.encode() for k, s in files_of(v).items()}
    record = "".join(f"{k},{record_hash(d)},{len(d)}\n" for k, d in files.items())
    record += f"labworker-{v}.dist-info/RECORD,,\n"
    files[f"labworker-{v}.dist-info/RECORD"] = record.encode()
    path = os.path.join(out, f"labworker-{v}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 11, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return path


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for v in TAGS:
        print(build(out, v))
