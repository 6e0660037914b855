#!/usr/bin/env bash
# Fails when a tracked file cites something outside the repository: a section or a quirk of a
# specification the repository does not hold, or a path into the folders beside the checkout.
# A reader of the project has only the project, so code and docs cite docs/*.md instead.
#
# usage: no_outside_citations_test.sh SOURCE_DIR
# Lists the files with `git ls-files` (every file under SOURCE_DIR, less build trees, when it
# is not a git checkout) and prints each offending line as FILE:LINE: TEXT.
set -euo pipefail

src=${1:?usage: no_outside_citations_test.sh SOURCE_DIR}
cd "$src"

# What may not appear (extended regular expressions, case-insensitive). Each is written so
# that it does not match its own text here.
patterns=(
  '§ ?[0-9]'                               # a numbered section of an outside document
  'quirks? #?[0-9]'                        # a numbered quirk of such a document
  'spec[/ ]README'                         # the specification's own README
  '[.][.]/shared'                          # the shared folder beside the checkout ...
  '/shared[/]'                             # ... by any path into it
  '(^|[^a-z0-9_./-])shared[/](spec|testdata|seed|hooks)'
  '"[.][.]" */ *"shared"'                  # ... or built from path components
  '(^|[^a-z0-9_/.-])(design|style)[.]md'   # documents kept outside the repository
)

# The only exception: the conformance test reads the ds_config files kept beside the checkout
# (it skips, saying so, where they are absent). FILE|PATTERN, one per line.
allowed=(
  'tests/unit/config/testdata_configs_test.cpp|"[.][.]" */ *"shared"'
)

if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
  mapfile -d '' files < <(git ls-files -z)
else
  mapfile -d '' files < <(find . -path ./.git -prune -o -path './build*' -prune -o -path ./.cache -prune \
                            -o -type f -print0 | sed -z 's|^\./||')
fi

offending=()
for pattern in "${patterns[@]}"; do
  hits=$(printf '%s\0' "${files[@]}" | xargs -0 grep -EniHI -- "$pattern" 2> /dev/null || true)
  [[ -z "$hits" ]] && continue
  while IFS= read -r hit; do
    file=${hit%%:*}
    skip=0
    for entry in "${allowed[@]}"; do
      [[ "$file|$pattern" == "$entry" ]] && skip=1
    done
    ((skip)) || offending+=("$hit")
  done <<< "$hits"
done

if ((${#offending[@]})); then
  printf '%s\n' "${offending[@]}" | sort -t: -k1,1 -k2,2n -u
  echo "no_outside_citations: the lines above cite files outside the repository; cite docs/*.md" \
       "(docs/compatibility.md for where and why we differ from DeepSpeed) or say the fact itself" >&2
  exit 1
fi
echo "no_outside_citations: ${#files[@]} files, none cites a file outside the repository"
