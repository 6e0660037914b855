#!/usr/bin/env python3
"""Fails when a library's source includes a header of a library it does not build on.

The table (written by cmake/DeepSpeedLayers.cmake at configure time) has one line per library:

    <library> folders=<dir>[,<dir>...] headers=<public header>[,...] uses=<library>[,...]

Folders are relative to the repository root; a file belongs to the library whose folder is the
longest prefix of its path. An include names a header of a library either by path below the
folder's root (src/ or ops/: "runtime/zero/x.h" is in src/runtime/zero, "cpu/common/x.h" in
ops/cpu) or as a public header (<deepspeed/comm.h>, listed under headers=). A library may
include its own headers, those of the libraries it uses (and what they use, transitively), and
the public headers no library claims (errors.h, torch_compat.h, version.h: everyone's). Headers
outside the tree (<torch/...>, <fmt/...>) are not ours to check.

Each library also names the namespaces its code may open (namespaces=; docs/development.md,
"Namespaces"): every `namespace X {` must be one of them, a `*_detail` or `detail` namespace
nested in one, anonymous, or foreign (not below deepspeed: forward declarations of torch's
types); `deepspeed::ops::*` allows any namespace below deepspeed::ops. Every namespace is
closed with a `}  // namespace X` comment, which is how the check follows the nesting.

usage: check_layering.py <table> <repository root>
Prints one line per include that goes up or sideways, naming the file, the line, the two
libraries and what the including library may use, and exits 1 if there is any.
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
NAMESPACE_OPEN = re.compile(r'^\s*(?:inline\s+)?namespace\s*([\w:]*)\s*\{\s*(?://.*)?$')
NAMESPACE_CLOSE = re.compile(r'^\s*\}\s*//\s*namespace\b')
SOURCE_SUFFIXES = ('.h', '.hpp', '.cpp', '.cc', '.cu', '.cuh')


def read_table(path):
    libraries = {}
    for number, line in enumerate(open(path, encoding='utf-8'), 1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        name, *fields = line.split()
        entry = {'folders': [], 'headers': [], 'uses': [], 'namespaces': []}
        for field in fields:
            key, _, value = field.partition('=')
            if key not in entry:
                sys.exit(f'{path}:{number}: unknown field {key!r} (expected folders=, headers=, uses=, namespaces=)')
            entry[key] = [v for v in value.split(',') if v]
        if name in libraries:
            sys.exit(f'{path}:{number}: library {name} is listed twice')
        libraries[name] = entry
    for name, entry in libraries.items():
        for used in entry['uses']:
            if used not in libraries:
                sys.exit(f'{path}: {name} uses {used}, which the table does not list')
    return libraries


def closure(libraries, name):
    """Every library `name` may include: itself and what it uses, transitively."""
    seen, stack = set(), [name]
    while stack:
        lib = stack.pop()
        if lib in seen:
            continue
        seen.add(lib)
        stack.extend(libraries[lib]['uses'])
    return seen


def owner_of_folder(libraries, relpath):
    best, best_len = None, -1
    for name, entry in libraries.items():
        for folder in entry['folders']:
            prefix = folder.rstrip('/') + '/'
            if relpath.startswith(prefix) and len(prefix) > best_len:
                best, best_len = name, len(prefix)
    return best


def owner_of_include(libraries, header, roots):
    for name, entry in libraries.items():
        if header.startswith('deepspeed/') and header[len('deepspeed/'):] in entry['headers']:
            return name
    # "runtime/zero/x.h" from src/, "cpu/common/x.h" from ops/: the folder that holds it.
    for root in roots:
        owner = owner_of_folder(libraries, os.path.join(root, header))
        if owner:
            return owner
    return None


def namespace_allowed(name, allowed):
    if not name.startswith('deepspeed'):
        return True  # foreign: a forward declaration of torch's types
    parts = name.split('::')
    if parts[-1] == 'detail' or parts[-1].endswith('_detail'):
        parts = parts[:-1]
    name = '::'.join(parts)
    for a in allowed:
        if a.endswith('::*') and name.startswith(a[:-1]):
            return True
        if name == a:
            return True
    return False


def check_namespaces(lines, rel, library, allowed):
    """Problems with the namespaces `lines` open, as messages naming file and line."""
    problems, stack = [], []
    for number, line in enumerate(lines, 1):
        m = NAMESPACE_OPEN.match(line)
        if m:
            stack.append((m.group(1), number))
            if not m.group(1):
                continue  # anonymous
            parts = [n for n, _ in stack if n]
            full = '::'.join(parts)
            if parts[0] == 'deepspeed' and not namespace_allowed(full, allowed):
                problems.append(f'{rel}:{number}: {library} opens namespace {full}; its namespaces are '
                                f'{", ".join(allowed)} (cmake/DeepSpeedLayers.cmake, NAMESPACES)')
        elif NAMESPACE_CLOSE.match(line):
            if not stack:
                problems.append(f'{rel}:{number}: "}}  // namespace" closes no namespace')
            else:
                stack.pop()
    for name, number in stack:
        problems.append(f'{rel}:{number}: namespace {name or "(anonymous)"} is not closed with a '
                        f'"}}  // namespace" comment')
    return problems


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    libraries = read_table(sys.argv[1])
    repo = sys.argv[2]
    roots = sorted({folder.split('/')[0] for entry in libraries.values() for folder in entry['folders']})
    problems = []
    files = 0
    for name, entry in sorted(libraries.items()):
        allowed = closure(libraries, name)
        for folder in entry['folders']:
            for dirpath, _, filenames in os.walk(os.path.join(repo, folder)):
                for filename in sorted(filenames):
                    if not filename.endswith(SOURCE_SUFFIXES):
                        continue
                    path = os.path.join(dirpath, filename)
                    rel = os.path.relpath(path, repo)
                    if owner_of_folder(libraries, rel) != name:
                        continue  # a nested folder that is another library
                    files += 1
                    with open(path, encoding='utf-8', errors='replace') as f:
                        lines = f.read().split('\n')
                    problems.extend(check_namespaces(lines, rel, name, entry['namespaces'] or ['deepspeed']))
                    for number, line in enumerate(lines, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        owner = owner_of_include(libraries, m.group(2), roots)
                        if owner is None or owner in allowed:
                            continue
                        problems.append(
                            f'{rel}:{number}: {name} includes {m.group(2)} of {owner}, which it does not '
                            f'build on ({name} uses: {", ".join(sorted(allowed - {name})) or "nothing"})')
    for p in problems:
        print(p)
    if problems:
        print(f'layering: {len(problems)} include(s) or namespace(s) go against cmake/DeepSpeedLayers.cmake')
        return 1
    print(f'layering: {files} files in {len(libraries)} libraries include only what their library builds on, '
          f'in their own namespaces')
    return 0


if __name__ == '__main__':
    sys.exit(main())
