"""Prints the package directory of this python3 under PREFIX, relative to it.

Usage: sitedir.py PREFIX (run by python/CMakeLists.txt). The first entry of
sys.path, from the end (Debian lists /usr/lib/python3/dist-packages last),
that is a site-packages or dist-packages directory under PREFIX; else
sysconfig's purelib of the posix_prefix scheme for PREFIX.
"""
import os
import sys
import sysconfig

prefix = os.path.normpath(sys.argv[1])
for entry in reversed(sys.path):
    entry = os.path.normpath(entry) if entry else ""
    if (entry.startswith(prefix + os.sep)
            and os.path.basename(entry) in ("site-packages", "dist-packages")):
        print(os.path.relpath(entry, prefix))
        break
else:
    purelib = sysconfig.get_path("purelib", "posix_prefix",
                                 {"base": prefix, "platbase": prefix})
    print(os.path.relpath(purelib, prefix))
