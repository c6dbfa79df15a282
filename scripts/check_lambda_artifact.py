"""Checks a Lambda `bootstrap` for the `provided.al2023` runtime on x86_64:
an x86-64 ELF executable whose glibc symbol versions the runtime's glibc
(2.34) provides. Prints one line of JSON on success; exits 1 with the reason
otherwise.

Usage: check_lambda_artifact.py PATH
"""

import json
import os
import re
import struct
import sys

RUNTIME_GLIBC = (2, 34)
EM_X86_64 = 62
ET_EXEC, ET_DYN = 2, 3


def fail(why):
    print(f"check_lambda_artifact: {why}", file=sys.stderr)
    sys.exit(1)


path = sys.argv[1]
if not os.path.isfile(path):
    fail(f"{path} was not built")
if os.path.basename(path) != "bootstrap":
    fail(f"a custom runtime's executable must be named bootstrap, not {os.path.basename(path)}")
if not os.access(path, os.X_OK):
    fail(f"{path} is not executable")
data = open(path, "rb").read()
if data[:4] != b"\x7fELF":
    fail(f"{path} is not an ELF file")
if data[4] != 2 or data[5] != 1:
    fail(f"{path} is not a 64-bit little-endian ELF")
e_type, e_machine = struct.unpack_from("<HH", data, 16)
if e_machine != EM_X86_64:
    fail(f"{path} is built for ELF machine {e_machine}, not x86-64")
if e_type not in (ET_EXEC, ET_DYN):
    fail(f"{path} is not an executable (ELF type {e_type})")
versions = sorted({tuple(map(int, v.split(b"."))) for v in re.findall(rb"GLIBC_(\d+\.\d+(?:\.\d+)?)", data)})
newest = versions[-1] if versions else None
if newest and newest[:2] > RUNTIME_GLIBC:
    fail(f"{path} needs glibc {'.'.join(map(str, newest))}; provided.al2023 has 2.34")
print(json.dumps({
    "artifact": path,
    "bytes": len(data),
    "machine": "x86-64",
    "newest_glibc": ".".join(map(str, newest)) if newest else None,
}))
