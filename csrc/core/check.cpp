#include "core/check.h"

namespace fv {

int64_t checked_mul(const char* op, const char* what, int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) {
    throw_overflow_error(op, ": ", what, " = ", a, " * ", b, " exceeds the index limit ",
                         INT64_MAX);
  }
  return r;
}

}  // namespace fv
