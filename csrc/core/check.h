// Error helpers: every bad input becomes a Python exception whose message names the op, the
// argument, the value and the rule, e.g. "conv2d: stride[1] must be >= 1, got 0".
// pybind11 translates std::invalid_argument -> ValueError, std::overflow_error ->
// OverflowError; fv::TypeError is registered in module.cpp -> TypeError.
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

namespace fv {

struct TypeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

template <typename... Args>
[[noreturn]] void throw_value_error(const Args&... args) {
  throw std::invalid_argument(cat(args...));
}
template <typename... Args>
[[noreturn]] void throw_type_error(const Args&... args) {
  throw TypeError(cat(args...));
}
template <typename... Args>
[[noreturn]] void throw_overflow_error(const Args&... args) {
  throw std::overflow_error(cat(args...));
}

// Largest size or index any kernel handles; sizes are int64 inside, but hyper-parameters
// (kernel, stride, padding, dilation) are kept to int32 so that products of two stay exact.
constexpr int64_t kMaxHyperParam = INT32_MAX;

// a * b, throwing OverflowError "op: what = a * b exceeds ..." when it does not fit int64.
int64_t checked_mul(const char* op, const char* what, int64_t a, int64_t b);

}  // namespace fv
