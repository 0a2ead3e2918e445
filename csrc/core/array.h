// Binding-side array checks, shared by every op's *_bind.cpp (non-ISA code only).
//
// The Python layer (fastvision/ops) converts read-only inputs to float32 C-contiguous
// arrays; these checks are the last line for anyone calling fastvision._C directly, and the
// only line for in-place arguments, which are never converted.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/check.h"

namespace fv {
namespace py = pybind11;

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);
Shape shape_of(const py::array& a);

// A float32, C-contiguous array with `ndim` dimensions (any ndim when ndim < 0), or TypeError /
// ValueError naming op and argument.
py::array_t<float> f32_input(const char* op, const char* arg, const py::handle& obj, int ndim);
// Same, and writeable: for arguments updated in place. Never converts.
py::array_t<float> f32_inplace(const char* op, const char* arg, const py::handle& obj, int ndim);
// uint8 C-contiguous array (2x2 max-pool codes).
py::array_t<uint8_t> u8_input(const char* op, const char* arg, const py::handle& obj, int ndim);
// int64 C-contiguous array (labels, max-pool indices).
py::array_t<int64_t> i64_input(const char* op, const char* arg, const py::handle& obj, int ndim);

// A new array of this shape (contents undefined); size checked against int64 overflow. Large
// arrays come from the buffer cache (core/buffer_cache.h).
py::array_t<float> f32_empty(const char* op, const Shape& shape);
py::array_t<float> f32_zeros(const char* op, const Shape& shape);
py::array_t<int64_t> i64_empty(const char* op, const Shape& shape);
py::array_t<uint8_t> u8_empty(const char* op, const Shape& shape);

// Checks 1 <= v <= kMaxHyperParam (or 0 <= v when allow_zero); names arg[index].
void check_positive(const char* op, const char* arg, int index, int64_t v);
void check_non_negative(const char* op, const char* arg, int index, int64_t v);

inline const float* cdata(const py::array_t<float>& a) { return a.data(); }
inline float* mdata(py::array_t<float>& a) { return a.mutable_data(); }

}  // namespace fv
