// Whether this build compiles the x86 kernel variants (AVX2, AVX-512) beside the scalar one.
// ops/CMakeLists.txt defines DS_CPU_X86_VARIANTS to match the files it compiles; without it
// (a compile by hand) the target processor decides, as the CMake test does.
#pragma once

#ifndef DS_CPU_X86_VARIANTS
#if defined(__x86_64__) || defined(_M_X64)
#define DS_CPU_X86_VARIANTS 1
#else
#define DS_CPU_X86_VARIANTS 0
#endif
#endif
