// Per-op kernel tables and their run-time selection.
//
// Each op declares a struct of function pointers (its "kernels"), e.g.
//     struct ReluKernels { void (*forward)(const float* x, float* y, int64_t n); ... };
// and each variant file defines one constant table with external linkage:
//     relu_scalar.cpp:  extern const ReluKernels relu_kernels_scalar = {&forward, ...};
//     relu_avx2.cpp:    extern const ReluKernels relu_kernels_avx2   = {...};
// The table is constant-initialised (addresses only), so no code from an ISA file runs at
// load time, and everything else in an ISA file sits in an anonymous namespace (internal
// linkage: an inline helper built with AVX-512 can never be merged into the scalar path).
// tests/test_build.py checks both with nm and objdump.
//
// FV_KERNEL_SET(ReluKernels, relu_kernels) then builds a KernelSet holding the variants that
// exist on this target; .cpu() picks the best one at or below active_isa(). The `cuda` slot
// stays null until a CUDA backend is built (a later issue adds *_cuda.cu files).
#pragma once

#include "core/isa.h"

namespace fv {

template <typename Kernels>
struct KernelSet {
  const Kernels* scalar;
  const Kernels* avx2;
  const Kernels* avx512;
  const Kernels* cuda;

  const Kernels& cpu() const { return at(active_isa()); }
  const Kernels& at(Isa isa) const {
    if (isa == Isa::avx512 && avx512 != nullptr) return *avx512;
    if (isa >= Isa::avx2 && avx2 != nullptr) return *avx2;
    return *scalar;
  }
};

}  // namespace fv

// Declares the variant tables of one op (put in the op's header).
#if defined(FV_X86)
#define FV_DECLARE_KERNELS(Type, name)        \
  extern const Type name##_scalar;            \
  extern const Type name##_avx2;              \
  extern const Type name##_avx512
#define FV_KERNEL_SET(Type, name) \
  ::fv::KernelSet<Type> { &name##_scalar, &name##_avx2, &name##_avx512, nullptr }
// For an op that has no AVX-512 file (the avx2 table serves avx512 too).
#define FV_DECLARE_KERNELS_AVX2_ONLY(Type, name) \
  extern const Type name##_scalar;               \
  extern const Type name##_avx2
#define FV_KERNEL_SET_AVX2_ONLY(Type, name) \
  ::fv::KernelSet<Type> { &name##_scalar, &name##_avx2, nullptr, nullptr }
#else
#define FV_DECLARE_KERNELS(Type, name) extern const Type name##_scalar
#define FV_KERNEL_SET(Type, name) ::fv::KernelSet<Type> { &name##_scalar, nullptr, nullptr, nullptr }
#define FV_DECLARE_KERNELS_AVX2_ONLY(Type, name) extern const Type name##_scalar
#define FV_KERNEL_SET_AVX2_ONLY(Type, name) \
  ::fv::KernelSet<Type> { &name##_scalar, nullptr, nullptr, nullptr }
#endif
