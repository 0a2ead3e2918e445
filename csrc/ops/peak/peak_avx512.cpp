// peak probe, AVX512 (see peak.h): 12 independent 16-lane FMA chains.
#include <immintrin.h>

#include "ops/peak/peak.h"

namespace fv {
namespace {

float run(int64_t iterations) {
  __m512 acc[12];
  for (int j = 0; j < 12; ++j) acc[j] = _mm512_set1_ps(1.0f + 0.001f * j);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iterations; ++i) {
    for (int j = 0; j < 12; ++j) acc[j] = _mm512_fmadd_ps(acc[j], a, b);
  }
  __m512 s = acc[0];
  for (int j = 1; j < 12; ++j) s = _mm512_add_ps(s, acc[j]);
  float lanes[16];
  _mm512_storeu_ps(lanes, s);
  float r = 0.0f;
  for (int j = 0; j < 16; ++j) r += lanes[j];
  return r;
}

}  // namespace

extern const PeakKernels peak_kernels_avx512 = {12 * 16 * 2, &run};

}  // namespace fv
