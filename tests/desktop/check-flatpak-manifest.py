#!/usr/bin/env python3
"""Checks a Flatpak manifest offline: `flatpak-builder --show-manifest` must print
no WARNING (it exits 0 even on unknown keys), every source must be local or pinned
(archives and files by https URL plus sha256, git by commit), and the sandbox gets
no broad file system access. Skips (77) without flatpak-builder."""
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

manifest = pathlib.Path(sys.argv[1])
if shutil.which('flatpak-builder') is None:
    print('flatpak-builder is not installed')
    sys.exit(77)

# flatpak-builder makes its state folder in the working directory: keep it out of the tree.
with tempfile.TemporaryDirectory() as state:
    shown = subprocess.run(['flatpak-builder', '--show-manifest', str(manifest.resolve())],
                           cwd=state, capture_output=True, text=True)
problems = []
if shown.returncode != 0 or 'WARNING' in shown.stderr:
    problems.append(f'flatpak-builder --show-manifest: {shown.stderr.strip()}')
else:
    parsed = json.loads(shown.stdout)

    def check_module(module):
        for source in module.get('sources', []):
            kind = source.get('type')
            where = f"{module.get('name')}: {source.get('url') or source.get('path')}"
            if kind in ('archive', 'file') and 'url' in source:
                if not source['url'].startswith('https://'):
                    problems.append(f'{where}: not an https URL')
                if not re.fullmatch(r'[0-9a-f]{64}', source.get('sha256', '')):
                    problems.append(f'{where}: no sha256')
            elif kind == 'git' and not source.get('commit'):
                problems.append(f'{where}: git source without a commit')
            elif kind in ('dir', 'file', 'patch') and source.get('path', '').startswith('/'):
                problems.append(f'{where}: absolute local path')
        for child in module.get('modules', []):
            check_module(child)

    for module in parsed.get('modules', []):
        check_module(module)
    for arg in parsed.get('finish-args', []):
        if arg.startswith('--filesystem') or arg in ('--device=all', '--socket=session-bus'):
            problems.append(f'finish-args: {arg} is broader than needed')

for problem in problems:
    print(f'{manifest.name}: {problem}')
sys.exit(1 if problems else 0)
