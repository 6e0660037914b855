#!/usr/bin/env bash
# The layering check (cmake/check_layering.py) on a small tree made here: it passes a tree whose
# includes go down, and fails one whose lower library includes a higher one's header, naming
# the file, the line and both libraries; a public header counts for the library that owns it.
set -euo pipefail
check="$1"
python="${2:-python3}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/src/low" "$dir/src/high/inner" "$dir/include/deepspeed"
cat > "$dir/layers.txt" <<'TABLE'
ds_low folders=src/low headers=low.h uses=
ds_high folders=src/high headers=high.h uses=ds_low
ds_inner folders=src/high/inner uses=ds_low
TABLE
printf '#include "low/a.h"\n#include <deepspeed/errors.h>\n' > "$dir/src/low/a.cpp"
printf '#include "low/a.h"\n#include <deepspeed/low.h>\n#include <torch/torch.h>\n' > "$dir/src/high/b.cpp"
printf '#include "low/a.h"\n' > "$dir/src/high/inner/c.cpp"
"$python" "$check" "$dir/layers.txt" "$dir" > "$dir/out" || { cat "$dir/out"; echo "FAIL: a clean tree was refused"; exit 1; }

# A lower library includes a higher one's header, by path and by public header.
printf '#include "low/a.h"\n#include "high/b.h"\n#include <deepspeed/high.h>\n' > "$dir/src/low/a.cpp"
# A nested library reaches its parent folder's library, which it does not use.
printf '#include "high/b.h"\n' > "$dir/src/high/inner/c.cpp"
if "$python" "$check" "$dir/layers.txt" "$dir" > "$dir/out"; then
  cat "$dir/out"; echo "FAIL: upward includes passed"; exit 1
fi
grep -q '^src/low/a.cpp:2: ds_low includes high/b.h of ds_high' "$dir/out" || { cat "$dir/out"; echo "FAIL: line 2"; exit 1; }
grep -q '^src/low/a.cpp:3: ds_low includes deepspeed/high.h of ds_high' "$dir/out" || { cat "$dir/out"; echo "FAIL: line 3"; exit 1; }
grep -q '^src/high/inner/c.cpp:1: ds_inner includes high/b.h of ds_high' "$dir/out" || { cat "$dir/out"; echo "FAIL: nested"; exit 1; }
grep -q '3 include(s) or namespace(s) go against' "$dir/out" || { cat "$dir/out"; echo "FAIL: count"; exit 1; }

# Namespaces: each library opens only its own (and *_detail ones in them, anonymous and foreign
# ones), and closes each with a comment.
mkdir -p "$dir/ns/src/low"
echo 'ds_low folders=src/low uses= namespaces=deepspeed,deepspeed::low' > "$dir/ns/layers.txt"
cat > "$dir/ns/src/low/ok.h" <<'CPP'
namespace torch::autograd {
struct Node;
}  // namespace torch::autograd
namespace deepspeed::low {
namespace {
}  // namespace
namespace table_detail {
}  // namespace table_detail
}  // namespace deepspeed::low
CPP
"$python" "$check" "$dir/ns/layers.txt" "$dir/ns" > "$dir/out" || { cat "$dir/out"; echo "FAIL: good namespaces refused"; exit 1; }
cat > "$dir/ns/src/low/bad.h" <<'CPP'
namespace deepspeed {
namespace high {
}  // namespace high
}  // namespace deepspeed
namespace deepspeed::low {
CPP
if "$python" "$check" "$dir/ns/layers.txt" "$dir/ns" > "$dir/out"; then cat "$dir/out"; echo "FAIL: foreign namespace passed"; exit 1; fi
grep -q '^src/low/bad.h:2: ds_low opens namespace deepspeed::high; its namespaces are deepspeed, deepspeed::low' "$dir/out" || { cat "$dir/out"; echo "FAIL: namespace line"; exit 1; }
grep -q '^src/low/bad.h:5: namespace deepspeed::low is not closed' "$dir/out" || { cat "$dir/out"; echo "FAIL: unclosed"; exit 1; }

# A table that names a library it does not list is itself an error.
echo 'ds_x folders=src/low uses=ds_missing' > "$dir/bad.txt"
if "$python" "$check" "$dir/bad.txt" "$dir" > "$dir/out" 2>&1; then echo "FAIL: bad table passed"; exit 1; fi
grep -q 'ds_x uses ds_missing, which the table does not list' "$dir/out" || { cat "$dir/out"; exit 1; }
echo "layering check: passes a clean tree, names every include that goes up and every namespace not the library's"
