// CPU feature detection and the active ISA level. Compiled without ISA flags.
#include "core/isa.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/check.h"

#if defined(FV_X86)
#include <cpuid.h>
#endif

namespace fv {
namespace {

#if defined(FV_X86)
uint64_t read_xcr0() {
  uint32_t eax, edx;
  // xgetbv with ecx=0; written as bytes so the baseline build needs no -mxsave.
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}

Isa detect() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::scalar;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28);
  if (!(osxsave && avx && fma)) return Isa::scalar;
  const uint64_t xcr0 = read_xcr0();
  if ((xcr0 & 0x6) != 0x6) return Isa::scalar;  // XMM and YMM state saved by the OS
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return Isa::scalar;
  const bool avx2 = b & (1u << 5);
  if (!avx2) return Isa::scalar;
  const bool f = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
  const bool zmm_state = (xcr0 & 0xe6) == 0xe6;  // opmask, ZMM_Hi256, Hi16_ZMM
  if (f && dq && bw && vl && zmm_state) return Isa::avx512;
  return Isa::avx2;
}
#else
Isa detect() { return Isa::scalar; }
#endif

const Isa g_detected = detect();
std::atomic<int> g_active{static_cast<int>(g_detected)};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "unknown";
}

bool parse_isa(const char* text, Isa* out) {
  for (int i = 0; i < kNumIsa; ++i) {
    if (std::strcmp(text, isa_name(static_cast<Isa>(i))) == 0) {
      *out = static_cast<Isa>(i);
      return true;
    }
  }
  return false;
}

Isa detected_isa() { return g_detected; }
Isa active_isa() { return static_cast<Isa>(g_active.load(std::memory_order_relaxed)); }

void set_active_isa(Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(g_detected)) {
    throw_value_error("set_isa: isa '", isa_name(isa), "' is not supported by this CPU (best: '",
                      isa_name(g_detected), "')");
  }
  g_active.store(static_cast<int>(isa), std::memory_order_relaxed);
}

void init_isa_from_env() {
  const char* env = std::getenv("FASTVISION_ISA");
  if (env == nullptr || *env == '\0') return;
  Isa isa;
  if (!parse_isa(env, &isa)) {
    throw_value_error("FASTVISION_ISA: must be one of scalar, avx2, avx512, got '", env, "'");
  }
  if (static_cast<int>(isa) > static_cast<int>(g_detected)) {
    throw_value_error("FASTVISION_ISA: '", env, "' is above what this CPU supports ('",
                      isa_name(g_detected), "'); a level can only be lowered");
  }
  g_active.store(static_cast<int>(isa), std::memory_order_relaxed);
}

}  // namespace fv
