// A persistent thread pool and parallel_for.
//
// Workers live for the life of the process (an idle wake-up costs microseconds, a thread
// start tens of them). FASTVISION_NUM_THREADS sets the size at import, set_num_threads() later;
// the default is the number of CPUs this process may run on.
//
// Determinism contract: parallel_for hands out contiguous ranges, and a kernel must compute
// each output element the same way whatever range it falls in. Reductions across ranges
// (weight gradients) split work into chunks whose count does not depend on the thread count
// and sum the chunk results in a fixed order. So one ISA gives bitwise-identical results at
// any thread count.
//
// Only non-ISA code calls this (std::function must not be instantiated in an ISA file).
#pragma once

#include <cstdint>
#include <functional>

namespace fv {

int num_threads();
// Throws ValueError for n < 1.
void set_num_threads(int n);
// Reads FASTVISION_NUM_THREADS; throws ValueError naming the variable on a bad value.
void init_threads_from_env();

// Calls fn(begin, end) over disjoint contiguous ranges covering [0, n), on up to
// num_threads() threads, each range holding at least `grain` items (so small work stays on
// the calling thread). A nested or concurrent call runs serially on the calling thread.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace fv
