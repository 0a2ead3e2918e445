#include "core/array.h"

#include <new>
#include <sstream>

#include "core/buffer_cache.h"

namespace fv {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  if (s.size() == 1) os << ",";
  os << ")";
  return os.str();
}

Shape shape_of(const py::array& a) {
  Shape s(a.ndim());
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s[i] = a.shape(i);
  return s;
}

namespace {

py::array checked(const char* op, const char* arg, const py::handle& obj, int ndim,
                  const py::dtype& want, const char* want_name) {
  if (!py::isinstance<py::array>(obj)) {
    throw_type_error(op, ": ", arg, " must be a numpy.ndarray of ", want_name, ", got ",
                     std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (!a.dtype().is(want)) {
    throw_type_error(op, ": ", arg, " must have dtype ", want_name, ", got ",
                     std::string(py::str(a.dtype())));
  }
  if (!(a.flags() & py::array::c_style)) {
    throw_type_error(op, ": ", arg, " must be C-contiguous");
  }
  if (ndim >= 0 && a.ndim() != ndim) {
    throw_value_error(op, ": ", arg, " must be ", ndim, "-D, got ", a.ndim(), "-D array of shape ",
                      shape_str(shape_of(a)));
  }
  return a;
}

}  // namespace

py::array_t<float> f32_input(const char* op, const char* arg, const py::handle& obj, int ndim) {
  return py::array_t<float>(checked(op, arg, obj, ndim, py::dtype::of<float>(), "float32"));
}

py::array_t<float> f32_inplace(const char* op, const char* arg, const py::handle& obj, int ndim) {
  py::array a = checked(op, arg, obj, ndim, py::dtype::of<float>(), "float32");
  if (!a.writeable()) throw_type_error(op, ": ", arg, " is updated in place and must be writeable");
  return py::array_t<float>(a);
}

py::array_t<uint8_t> u8_input(const char* op, const char* arg, const py::handle& obj, int ndim) {
  return py::array_t<uint8_t>(checked(op, arg, obj, ndim, py::dtype::of<uint8_t>(), "uint8"));
}

py::array_t<int64_t> i64_input(const char* op, const char* arg, const py::handle& obj, int ndim) {
  return py::array_t<int64_t>(checked(op, arg, obj, ndim, py::dtype::of<int64_t>(), "int64"));
}

namespace {

// A new C-contiguous array; large ones come from the buffer cache (see buffer_cache.h) and
// return to it when the array is freed.
template <typename T>
py::array_t<T> empty_array(const char* op, const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n = checked_mul(op, "output size", n, d);
  const int64_t bytes = checked_mul(op, "output bytes", n, static_cast<int64_t>(sizeof(T)));
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  if (static_cast<size_t>(bytes) < kMinCachedBytes) return py::array_t<T>(dims);
  void* p = cache_alloc(static_cast<size_t>(bytes));
  if (p == nullptr) throw std::bad_alloc();  // pybind11 raises MemoryError
  py::capsule owner(p, [](void* q) { cache_free(q); });
  return py::array_t<T>(dims, static_cast<T*>(p), owner);
}

}  // namespace

py::array_t<float> f32_empty(const char* op, const Shape& shape) {
  return empty_array<float>(op, shape);
}

py::array_t<int64_t> i64_empty(const char* op, const Shape& shape) {
  return empty_array<int64_t>(op, shape);
}

py::array_t<uint8_t> u8_empty(const char* op, const Shape& shape) {
  return empty_array<uint8_t>(op, shape);
}

py::array_t<float> f32_zeros(const char* op, const Shape& shape) {
  py::array_t<float> a = f32_empty(op, shape);
  std::fill(a.mutable_data(), a.mutable_data() + a.size(), 0.0f);
  return a;
}

void check_positive(const char* op, const char* arg, int index, int64_t v) {
  if (v < 1) throw_value_error(op, ": ", arg, "[", index, "] must be >= 1, got ", v);
  if (v > kMaxHyperParam)
    throw_overflow_error(op, ": ", arg, "[", index, "] = ", v, " exceeds the limit ", kMaxHyperParam);
}

void check_non_negative(const char* op, const char* arg, int index, int64_t v) {
  if (v < 0) throw_value_error(op, ": ", arg, "[", index, "] must be >= 0, got ", v);
  if (v > kMaxHyperParam)
    throw_overflow_error(op, ": ", arg, "[", index, "] = ", v, " exceeds the limit ", kMaxHyperParam);
}

}  // namespace fv
