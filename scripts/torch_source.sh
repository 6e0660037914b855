# Sourced by setup.sh and build.sh: which LibTorch this build uses (docs/development.md).
#   Debian's libtorch-dev (CPU) where it is installed or installable (Debian 12);
#   else the LibTorch inside python3's PyTorch wheel (the GPU machines: CUDA, NCCL).
# DS_TORCH_PREFIX=<dir> forces a LibTorch (a CMAKE_PREFIX_PATH); DS_TORCH_PREFIX=debian forces
# Debian's. Sets ds_torch_prefix ("" for Debian's).
ds_torch_prefix=""
if [[ "${DS_TORCH_PREFIX:-}" == debian ]]; then
  ds_torch_prefix=""
elif [[ -n "${DS_TORCH_PREFIX:-}" ]]; then
  ds_torch_prefix="$DS_TORCH_PREFIX"
elif ! dpkg-query -W -f='${Status}' libtorch-dev 2>/dev/null | grep -q "install ok installed" &&
     ! grep -qs '^ID=debian' /etc/os-release; then
  ds_torch_prefix="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null || true)"
fi
