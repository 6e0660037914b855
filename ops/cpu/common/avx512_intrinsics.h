// <immintrin.h> for the AVX-512 kernel variants.
//
// GCC 12 reports -Wmaybe-uninitialized inside its own AVX-512 intrinsics wherever they are
// inlined at -O3 (_mm512_undefined_ps() is written `__m512 __Y = __Y;`: GCC bug 105593,
// fixed in GCC 13). The warning is about the compiler's header, not about the kernels, so it
// is switched off for the files that include this one.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>
