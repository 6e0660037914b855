#!/usr/bin/env bash
# The README's quick start, as a new user meets it: installs this build into a temporary
# prefix, checks that what the README names is there (the tools, the guide `deepspeed --help`
# points to), writes my_training.cpp, ds_config.json and CMakeLists.txt from the README's
# blocks marked "<!-- install-test: NAME -->" exactly as written, runs the README's commands
# (with the prefix for /opt/deepspeed) and trains on 2 ranks with the installed launcher.
# $1: the build, $2: the sources, $3: more of CMAKE_PREFIX_PATH (the LibTorch of a wheel).
set -euo pipefail
build_dir="$1"; source_dir="$2"; prefix_path="${3:-}"
readme="$source_dir/README.md"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

# The fenced block after "<!-- install-test: NAME -->", or exit status 1 without one.
extract() {
  awk -v name="$1" '
    $0 == "<!-- install-test: " name " -->" { armed = 1; next }
    armed && !inside && /^```/ { inside = 1; next }
    inside && /^```/ { found = 1; exit }
    inside { print }
    END { exit found ? 0 : 1 }' "$readme"
}

cmake --install "$build_dir" --prefix "$prefix" > "$work/install.log"
for f in bin/deepspeed bin/ds_config bin/ds_report bin/ds_to_fp32 include/deepspeed/deepspeed.h \
         include/deepspeed/version.h share/doc/DeepSpeed/README.md share/doc/DeepSpeed/docs/launcher.md; do
  [[ -e "$prefix/$f" ]] || { echo "the install has no $f"; exit 1; }
done
"$prefix/bin/deepspeed" --help > "$work/help.txt"
guide="$(sed -n 's/^The launcher.s guide: //p' "$work/help.txt")"
[[ "$guide" == "$prefix/share/doc/DeepSpeed/docs/launcher.md" && -f "$guide" ]] ||
  { echo "deepspeed --help names '$guide' as its guide"; exit 1; }

project="$work/project"
mkdir -p "$project"
for name in my_training.cpp ds_config.json CMakeLists.txt; do
  extract "$name" > "$project/$name" || { echo "README.md has no block marked install-test: $name"; exit 1; }
done
extract commands > "$work/commands.sh" || { echo "README.md has no block marked install-test: commands"; exit 1; }
"$prefix/bin/ds_config" "$project/ds_config.json" --world_size 2 > /dev/null

# The commands after the first (which installs deepspeed-cpp: done above), in the project.
# CMake also reads CMAKE_PREFIX_PATH and CMAKE_CXX_COMPILER_LAUNCHER from the environment.
export CMAKE_PREFIX_PATH="$prefix_path"
export OMP_NUM_THREADS=1  # two ranks on a shared machine
tail -n +2 "$work/commands.sh" | sed "s|/opt/deepspeed|$prefix|g" > "$work/run.sh"
cd "$project"
if ! bash -euo pipefail "$work/run.sh" > "$work/run.log" 2>&1; then
  cat "$work/run.log"
  exit 1
fi
# Rank 0's lines, which the launcher prefixes with "[rank0]: ".
grep -E '^(\[rank0\]: )?epoch [0-9]+ mean loss' "$work/run.log" || { cat "$work/run.log"; echo "no epoch lines"; exit 1; }
# Both epochs ran and the loss went down; both ranks wrote their part of the checkpoint.
awk '/epoch 0 mean loss/ { first = $NF } /epoch 1 mean loss/ { last = $NF }
     END { if (first == "" || last == "" || !(last < first)) { print "the loss did not go down"; exit 1 } }' \
  "$work/run.log"
[[ -f "$project/ckpt/latest" ]] || { echo "no checkpoint"; exit 1; }
echo "README quick start: built against the install and trained on 2 ranks"
