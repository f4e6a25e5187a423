#!/usr/bin/env python3
"""Checks that po/POTFILES.in lists every tracked file with translatable strings
(gettext calls in C, translatable="yes" in .ui, desktop, metainfo and GSettings
files) and nothing that does not exist. Skips (77) outside a git checkout."""
import pathlib
import re
import subprocess
import sys

source_root = pathlib.Path(sys.argv[1])

try:
    tracked = subprocess.run(['git', '-C', str(source_root), 'ls-files'],
                             capture_output=True, text=True, check=True).stdout.split('\n')
except (OSError, subprocess.CalledProcessError):
    print('not a git checkout: cannot tell which files are tracked')
    sys.exit(77)

gettext_marker = re.compile(r'(?<![\w])(?:N_|C_|NC_|_|g_dgettext|g_dngettext|ngettext)\s*\(\s*"'
                            r'|translatable="yes"')
always_translatable = re.compile(r'\.(?:desktop|metainfo\.xml|appdata\.xml)\.in(?:\.in)?$'
                                 r'|\.gschema\.xml(?:\.in)?$')
candidate = re.compile(r'\.(?:c|ui|in|xml)$')

needed = set()
for name in tracked:
    if not candidate.search(name) or name.startswith(('tests/', 'subprojects/')):
        continue
    path = source_root / name
    if not path.is_file():
        continue
    if always_translatable.search(name) or gettext_marker.search(path.read_text(errors='replace')):
        needed.add(name)

listed = set()
for line in (source_root / 'po' / 'POTFILES.in').read_text().splitlines():
    line = line.strip()
    if line and not line.startswith('#'):
        listed.add(line)

missing = sorted(needed - listed)
absent = sorted(name for name in listed if not (source_root / name).is_file())
for name in missing:
    print(f'po/POTFILES.in: missing {name}, which has translatable strings')
for name in absent:
    print(f'po/POTFILES.in: lists {name}, which does not exist')
sys.exit(1 if missing or absent else 0)
