#!/usr/bin/env python3
"""Checks every language in po/LINGUAS: the .po compiles cleanly (msgfmt --check)
and has no fuzzy or untranslated messages. With --against-sources it also checks
that the .po covers every message of a template extracted now from
po/POTFILES.in (msgcmp), so that a new or changed string needs a translation."""
import pathlib
import subprocess
import sys
import tempfile

source_root = pathlib.Path(sys.argv[1])
against_sources = '--against-sources' in sys.argv[2:]
po_dir = source_root / 'po'
xgettext_args = [
    '--from-code=UTF-8', '--add-comments', '--keyword=_', '--keyword=N_',
    '--keyword=C_:1c,2', '--keyword=NC_:1c,2', '--keyword=g_dngettext:2,3',
    '--keyword=g_dpgettext2:2c,3', '--flag=N_:1:pass-c-format',
    '--flag=C_:2:pass-c-format', '--flag=NC_:2:pass-c-format',
    '--flag=g_dngettext:2:pass-c-format', '--flag=g_strdup_printf:1:c-format',
    '--flag=g_string_printf:2:c-format', '--flag=g_set_error:4:c-format',
]


def extract_template(directory):
    template = pathlib.Path(directory) / 'onestep.pot'
    subprocess.run(['xgettext', *xgettext_args, '--directory', str(source_root),
                    '--files-from', str(po_dir / 'POTFILES.in'), '--output', str(template)],
                   check=True)
    return template


failed = False
with tempfile.TemporaryDirectory() as tmp:
    template = extract_template(tmp) if against_sources else None
    for language in (po_dir / 'LINGUAS').read_text().split():
        po = po_dir / f'{language}.po'
        stats = subprocess.run(['msgfmt', '--check', '--statistics', '-o', '/dev/null', str(po)],
                               capture_output=True, text=True)
        print(f'{language}: {stats.stderr.strip()}')
        if stats.returncode != 0 or 'fuzzy' in stats.stderr or 'untranslated' in stats.stderr:
            failed = True
        if template is not None:
            compare = subprocess.run(['msgcmp', str(po), str(template)],
                                     capture_output=True, text=True)
            if compare.returncode != 0:
                print(compare.stderr.strip())
                failed = True
sys.exit(1 if failed else 0)
