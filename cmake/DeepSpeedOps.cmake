# Native ops and their build flags (docs/launcher.md, "ds_report"), and the header that tells
# ds_report and the library which ops this build has:
# ${PROJECT_BINARY_DIR}/include/deepspeed/ops_config.h.
#
# DS_BUILD_OPS sets the default of every DS_BUILD_<OP>; each DS_BUILD_<OP> overrides it.
# Both are CMake options, and an environment variable of the same name at configure time
# (`DS_BUILD_OPS=0 DS_BUILD_CPU_ADAM=1 cmake ...`) gives the option its value, as DeepSpeed's
# `DS_BUILD_OPS=1 pip install deepspeed` does. A -D on the command line wins over both.
# Difference from DeepSpeed: C++ has no JIT, so an op not built is not available at all;
# hence DS_BUILD_OPS defaults to ON (DeepSpeed: 0 = JIT on first use).
#
# An op is "built" (installed) when its flag is on, its sources exist (ops/<dir>/ holds a
# .cpp or .cu), and its build dependencies were found here; a requested op that cannot be
# built is skipped with a warning naming the reason, as DeepSpeed skips incompatible ops.

# name | build variable | source folder under ops/ | needs: none, cuda, aio (liburing), ...
set(DS_OPS_TABLE
  "async_io|DS_BUILD_AIO|io/async_io|aio"
  "gds|DS_BUILD_GDS|io/gds|cufile"
  "pin_memory|DS_BUILD_PIN_MEMORY|io/pin_memory|cuda"
  "cpu_adam|DS_BUILD_CPU_ADAM|cpu/cpu_adam|none"
  "cpu_adagrad|DS_BUILD_CPU_ADAGRAD|cpu/cpu_adagrad|none"
  "cpu_lion|DS_BUILD_CPU_LION|cpu/cpu_lion|none"
  "fused_adam|DS_BUILD_FUSED_ADAM|cuda/fused_adam|cuda"
  "fused_lamb|DS_BUILD_FUSED_LAMB|cuda/fused_lamb|cuda"
  "fused_lion|DS_BUILD_FUSED_LION|cuda/fused_lion|cuda"
  "transformer|DS_BUILD_TRANSFORMER|cuda/transformer|cuda"
  "stochastic_transformer|DS_BUILD_STOCHASTIC_TRANSFORMER|cuda/stochastic_transformer|cuda"
  "transformer_inference|DS_BUILD_TRANSFORMER_INFERENCE|cuda/transformer_inference|cuda"
  "inference_core_ops|DS_BUILD_INFERENCE_CORE_OPS|cuda/inference_core_ops|cuda"
  "cutlass_ops|DS_BUILD_CUTLASS_OPS|cuda/cutlass_ops|cutlass"
  "ragged_device_ops|DS_BUILD_RAGGED_DEVICE_OPS|cuda/ragged_device_ops|cuda"
  "ragged_ops|DS_BUILD_RAGGED_OPS|cuda/ragged_ops|cuda"
  "spatial_inference|DS_BUILD_SPATIAL_INFERENCE|cuda/spatial_inference|cuda"
  "sparse_attn|DS_BUILD_SPARSE_ATTN|cuda/sparse_attn|cuda"
  "evoformer_attn|DS_BUILD_EVOFORMER_ATTN|cuda/evoformer_attn|cutlass"
  "quantizer|DS_BUILD_QUANTIZER|cpu/quantizer|none"
  "fp_quantizer|DS_BUILD_FP_QUANTIZER|cuda/fp_quantizer|cuda"
  "random_ltd|DS_BUILD_RANDOM_LTD|cuda/random_ltd|cuda"
  "utils|DS_BUILD_UTILS|cpu/utils|none"
  "dc|DS_BUILD_DEEP_COMPILE|cuda/dc|torch_compile")

# What this machine offers for building (not for running: ds_report checks that).
# async_io is written on liburing (Debian: liburing-dev); libaio is not used. find_path and
# find_library search again on the next configure while they have found nothing, so that
# installing liburing-dev later is seen without clearing the cache.
find_path(DS_LIBURING_INCLUDE_DIR liburing.h)
find_library(DS_LIBURING_LIBRARY uring)
if(DS_LIBURING_INCLUDE_DIR AND DS_LIBURING_LIBRARY)
  set(DS_HAVE_AIO ON)
else()
  set(DS_HAVE_AIO OFF)
endif()
find_path(DS_CUFILE_INCLUDE_DIR cufile.h HINTS /usr/local/cuda/include)
find_path(DS_CUTLASS_INCLUDE_DIR cutlass/cutlass.h HINTS ENV CUTLASS_PATH)

function(_ds_env_default var fallback out)
  if(DEFINED ENV{${var}} AND NOT "$ENV{${var}}" STREQUAL "")
    if("$ENV{${var}}")
      set(${out} ON PARENT_SCOPE)
    else()
      set(${out} OFF PARENT_SCOPE)
    endif()
  else()
    set(${out} ${fallback} PARENT_SCOPE)
  endif()
endfunction()

_ds_env_default(DS_BUILD_OPS ON _ds_ops_default)
option(DS_BUILD_OPS "Default for every DS_BUILD_<OP>: build the native ops" ${_ds_ops_default})

set(DS_OPS_BUILT "")
set(_ds_ops_rows "")
foreach(_row ${DS_OPS_TABLE})
  string(REPLACE "|" ";" _f "${_row}")
  list(GET _f 0 _name)
  list(GET _f 1 _var)
  list(GET _f 2 _dir)
  list(GET _f 3 _needs)
  _ds_env_default(${_var} ${DS_BUILD_OPS} _default)
  option(${_var} "Build the ${_name} op (default: DS_BUILD_OPS)" ${_default})

  file(GLOB _sources "${PROJECT_SOURCE_DIR}/ops/${_dir}/*.cpp" "${PROJECT_SOURCE_DIR}/ops/${_dir}/*.cu")
  if(_sources)
    set(_has_sources 1)
  else()
    set(_has_sources 0)
  endif()

  # Why this op cannot be built here ("" when it can).
  set(_reason "")
  if(_needs STREQUAL "aio" AND NOT DS_HAVE_AIO)
    set(_reason "no liburing (liburing.h and liburing.so; install liburing-dev and reconfigure)")
  elseif(_needs STREQUAL "cuda" AND NOT DS_HAVE_CUDA)
    set(_reason "this build has no CUDA (the LibTorch found is CPU-only)")
  elseif(_needs STREQUAL "cufile" AND (NOT DS_HAVE_CUDA OR NOT DS_CUFILE_INCLUDE_DIR))
    set(_reason "GPUDirect Storage needs CUDA and cuFile (cufile.h)")
  elseif(_needs STREQUAL "cutlass" AND (NOT DS_HAVE_CUDA OR NOT DS_CUTLASS_INCLUDE_DIR))
    set(_reason "needs CUDA and CUTLASS headers (set CUTLASS_PATH)")
  elseif(_needs STREQUAL "torch_compile")
    set(_reason "needs torch.compile (Python); not available to C++")
  endif()

  set(_built 0)
  if(${_var})
    if(NOT _has_sources)
      # Not yet written: nothing to warn about, ds_report says "not installed".
    elseif(NOT _reason STREQUAL "")
      message(WARNING "deepspeed-cpp: ${_var} is on but ${_name} cannot be built: ${_reason}; skipping it")
    else()
      set(_built 1)
      list(APPEND DS_OPS_BUILT ${_name})
    endif()
  endif()
  if(${_var})
    set(_requested 1)
  else()
    set(_requested 0)
  endif()
  string(TOUPPER "${_name}" _upper)
  string(APPEND _ds_ops_rows
    "    {\"${_name}\", \"${_var}\", \"${_needs}\", ${_requested}, ${_has_sources}, ${_built}, \"${_reason}\"},\n")
  set(DS_OP_${_upper}_BUILT ${_built})
  string(APPEND _ds_ops_defines "#define DEEPSPEED_OP_${_upper}_BUILT ${_built}\n")
endforeach()
message(STATUS "deepspeed-cpp: ops built: ${DS_OPS_BUILT}")

# The quantizer op runs on the CPU everywhere; a CUDA build adds its kernels (ops/cuda/quantizer).
if(DS_OP_QUANTIZER_BUILT AND DS_HAVE_CUDA)
  string(APPEND _ds_ops_defines "#define DEEPSPEED_OP_QUANTIZER_CUDA_BUILT 1\n")
else()
  string(APPEND _ds_ops_defines "#define DEEPSPEED_OP_QUANTIZER_CUDA_BUILT 0\n")
endif()

if(DS_HAVE_AIO)
  set(_aio_int 1)
else()
  set(_aio_int 0)
endif()
set(_ds_ops_header "${PROJECT_BINARY_DIR}/include/deepspeed/ops_config.h")
set(_ds_ops_text "// Generated by cmake/DeepSpeedOps.cmake: the native ops of this build.
#pragma once

${_ds_ops_defines}#define DEEPSPEED_HAVE_AIO_HEADERS ${_aio_int}

namespace deepspeed::ops {

struct OpBuildInfo {
  const char* name;        // DeepSpeed's op name (ds_report's first column)
  const char* build_var;   // DS_BUILD_<OP>
  const char* needs;       // none, cuda, aio, cufile, cutlass, torch_compile
  bool requested;          // the build flag was on
  bool has_sources;        // ops/<dir>/ had sources at configure time
  bool built;              // compiled into this build
  const char* not_buildable_reason;  // why it could not be built here; \"\" if it could
};

inline constexpr OpBuildInfo kOpBuildInfo[] = {
${_ds_ops_rows}};

}  // namespace deepspeed::ops
")
# Rewrite only on change, so that an unchanged configure does not rebuild its users.
if(EXISTS "${_ds_ops_header}")
  file(READ "${_ds_ops_header}" _old)
else()
  set(_old "")
endif()
if(NOT _old STREQUAL _ds_ops_text)
  file(WRITE "${_ds_ops_header}" "${_ds_ops_text}")
endif()

# The CUDA ops are compiled by nvcc; CUDA is enabled only when one of them is built.
if(DS_OP_FUSED_ADAM_BUILT OR DS_OP_FUSED_LAMB_BUILT OR DS_OP_TRANSFORMER_BUILT OR
   DS_OP_STOCHASTIC_TRANSFORMER_BUILT OR DS_OP_SPARSE_ATTN_BUILT OR (DS_OP_QUANTIZER_BUILT AND DS_HAVE_CUDA))
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 80 90)  # A100, H100/H200; override with -DCMAKE_CUDA_ARCHITECTURES
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  set(DS_HAVE_CUDA_OPS ON)
else()
  set(DS_HAVE_CUDA_OPS OFF)
endif()
