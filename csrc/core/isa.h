// Run-time ISA levels and their selection.
//
// Levels, one spelling everywhere: scalar (any CPU), avx2 (AVX2 + FMA), avx512 (F/BW/DQ/VL).
// The machine's level is read once (CPUID + XGETBV, so an OS that does not save the wide
// registers counts as lacking them). FASTVISION_ISA=scalar|avx2|avx512 forces a level at or
// below the machine's; set_active_isa() does the same at run time (tests use it to run every
// kernel at every level in one process).
#pragma once

namespace fv {

enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2 };
constexpr int kNumIsa = 3;

const char* isa_name(Isa isa);
// Parses "scalar" / "avx2" / "avx512"; returns false on anything else.
bool parse_isa(const char* text, Isa* out);

Isa detected_isa();   // the best level this CPU and OS support
Isa active_isa();     // the level kernels dispatch to now
// Throws ValueError when `isa` is above detected_isa().
void set_active_isa(Isa isa);
// Reads FASTVISION_ISA once at import; throws ValueError naming the variable on a bad value.
void init_isa_from_env();

}  // namespace fv
