# Finds what deepspeed-cpp builds on and describes it in a few variables:
#   DS_TORCH_TARGETS      LibTorch's libraries
#   DS_TORCH_DEFINITIONS  c10d feature macros the headers need (USE_C10D_GLOO, USE_C10D_NCCL)
#   DS_HAVE_GLOO / DS_HAVE_NCCL / DS_HAVE_CUDA
#   DS_PUBLIC_DEPS / DS_PRIVATE_DEPS
# Two LibTorch builds are supported (docs/development.md, "Building"): Debian's libtorch-dev
# 1.13 (CPU, Gloo) and the one inside a PyTorch 2.x wheel (CUDA, NCCL, usually without Gloo
# headers).

find_package(Torch REQUIRED)
find_package(nlohmann_json 3.9 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(fmt REQUIRED)
find_package(Threads REQUIRED)

set(DS_TORCH_TARGETS ${TORCH_LIBRARIES})
set(DS_TORCH_DEFINITIONS USE_DISTRIBUTED)

# Gloo: c10d's ProcessGroupGloo.hpp includes <gloo/...>; a wheel's LibTorch ships the
# library symbols but not those headers, so Gloo is optional.
include(CheckIncludeFileCXX)
find_path(DS_GLOO_INCLUDE_DIR gloo/algorithm.h HINTS ${TORCH_INCLUDE_DIRS})
if(DS_GLOO_INCLUDE_DIR AND EXISTS "${DS_GLOO_INCLUDE_DIR}/gloo/transport/tcp/device.h")
  set(DS_HAVE_GLOO ON)
  list(APPEND DS_TORCH_DEFINITIONS USE_C10D_GLOO DS_HAVE_GLOO=1)
else()
  set(DS_HAVE_GLOO OFF)
  message(STATUS "deepspeed-cpp: no Gloo headers found; CPU collectives are unavailable in this build")
endif()

# CUDA / NCCL: only when the LibTorch found was built with CUDA (or DS_CUDA is forced on).
set(DS_HAVE_CUDA OFF)
set(DS_HAVE_NCCL OFF)
if(DS_CUDA OR TORCH_CUDA_LIBRARIES OR CUDA_FOUND)
  set(DS_HAVE_CUDA ON)
  list(APPEND DS_TORCH_DEFINITIONS DS_HAVE_CUDA=1)
  find_path(DS_NCCL_INCLUDE_DIR nccl.h
    HINTS ENV NCCL_INCLUDE_DIR ${TORCH_INCLUDE_DIRS}
          # a PyTorch wheel's NCCL: site-packages/nvidia/nccl/include beside site-packages/torch
          ${Torch_DIR}/../../../../nvidia/nccl/include
          ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)
  if(DS_NCCL_INCLUDE_DIR)
    set(DS_HAVE_NCCL ON)
    list(APPEND DS_TORCH_DEFINITIONS USE_C10D_NCCL DS_HAVE_NCCL=1)
  endif()
endif()
foreach(_f GLOO CUDA NCCL)
  if(DS_HAVE_${_f})
    set(DS_HAVE_${_f}_INT 1)
  else()
    set(DS_HAVE_${_f}_INT 0)
  endif()
endforeach()
message(STATUS "deepspeed-cpp: LibTorch ${Torch_VERSION}, gloo=${DS_HAVE_GLOO}, cuda=${DS_HAVE_CUDA}, nccl=${DS_HAVE_NCCL}")

set(DS_PUBLIC_DEPS nlohmann_json::nlohmann_json CLI11::CLI11 Threads::Threads)
set(DS_PRIVATE_DEPS fmt::fmt-header-only)
if(DS_GLOO_INCLUDE_DIR)
  include_directories(SYSTEM ${DS_GLOO_INCLUDE_DIR})
endif()
if(DS_NCCL_INCLUDE_DIR)
  include_directories(SYSTEM ${DS_NCCL_INCLUDE_DIR})
endif()

# Version and git hash for ds_report and the start-up log line.
execute_process(COMMAND git rev-parse --short HEAD WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
  OUTPUT_VARIABLE DS_GIT_HASH OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
execute_process(COMMAND git rev-parse --abbrev-ref HEAD WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
  OUTPUT_VARIABLE DS_GIT_BRANCH OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT DS_GIT_HASH)
  set(DS_GIT_HASH unknown)
  set(DS_GIT_BRANCH unknown)
endif()
