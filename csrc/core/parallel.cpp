#include "core/parallel.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/check.h"

namespace fv {
namespace {

int default_threads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

thread_local bool t_in_parallel = false;

class Pool {
 public:
  explicit Pool(int n_threads) : size_(n_threads) { start_workers(); }
  ~Pool() { stop_workers(); }

  int size() const { return size_; }

  void resize(int n) {
    std::lock_guard<std::mutex> run_lock(run_mu_);
    stop_workers();
    size_ = n;
    start_workers();
  }

  void run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    const int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(1, grain));
    const int chunks = static_cast<int>(std::min<int64_t>(size_, max_chunks));
    // Serial when there is one chunk or when nested: decided before touching run_mu_, which a
    // nested call's own thread may hold (try_lock on a std::mutex the thread owns is undefined).
    if (chunks <= 1 || t_in_parallel) {
      fn(0, n);
      return;
    }
    std::unique_lock<std::mutex> run_lock(run_mu_, std::try_to_lock);
    if (!run_lock.owns_lock()) {  // another thread's region is running: run serially
      fn(0, n);
      return;
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = &fn;
      job_n_ = n;
      job_chunks_ = chunks;
      pending_ = chunks - 1;
      error_ = nullptr;
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    t_in_parallel = true;
    try {
      run_chunk(0);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_) error_ = std::current_exception();
    }
    t_in_parallel = false;
    // Wait for the workers: spin briefly (layers are short), then sleep.
    for (int spin = 0; spin < 20000 && pending_.load(std::memory_order_acquire) != 0; ++spin) {
      std::this_thread::yield();
    }
    {
      std::unique_lock<std::mutex> lk(mu_);
      done_cv_.wait(lk, [&] { return pending_.load(std::memory_order_acquire) == 0; });
      job_ = nullptr;
    }
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void run_chunk(int c) {
    const int64_t begin = job_n_ * c / job_chunks_;
    const int64_t end = job_n_ * (c + 1) / job_chunks_;
    if (begin < end) (*job_)(begin, end);
  }

  // `seen` starts at the generation current when the worker was created: a worker started by
  // resize() after earlier jobs must not take the last (finished) job for a new one.
  void worker(int index, uint64_t seen) {
    t_in_parallel = true;
    for (;;) {
      spin_for_next_job(seen);
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || generation_.load(std::memory_order_acquire) != seen; });
      if (stop_) return;
      seen = generation_.load(std::memory_order_acquire);
      if (index >= job_chunks_) continue;  // fewer chunks than workers this time
      lk.unlock();
      try {
        run_chunk(index);
      } catch (...) {
        std::lock_guard<std::mutex> elk(mu_);
        if (!error_) error_ = std::current_exception();
      }
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> dlk(mu_);
        done_cv_.notify_all();
      }
    }
  }

  // A network's layers come back to back, a few microseconds of Python apart; a worker that
  // went to sleep after each costs a 20-50 us futex wake-up per layer. So a worker polls for
  // the next job for a short while first (kSpinMicros), then sleeps. 200 us left ~1.4 sleeps
  // per training step of the reference model (the gaps around the loss, the optimizer and the
  // batch), whose wake-ups averaged ~74 us each on this VM (an Intel Xeon host; counted per
  // region); 2 ms cut the regions the worker joined >= 30 us late from 303 to 31 in 10,000,
  // and the step measured ~0.06 ms faster (per-step A/B: -0.10, +0.01, -0.08, -0.05 ms).
  // OpenMP runtimes spin longer still by default (KMP_BLOCKTIME 200 ms).
  static constexpr int64_t kSpinMicros = 2000;
  void spin_for_next_job(uint64_t seen) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
    for (int i = 0;; ++i) {
      if (generation_.load(std::memory_order_acquire) != seen || stop_flag_.load()) return;
      if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) return;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
  }

  void start_workers() {
    stop_ = false;
    stop_flag_ = false;
    const uint64_t gen = generation_.load();  // no job runs here: constructor, or resize() holding run_mu_
    for (int i = 1; i < size_; ++i) workers_.emplace_back([this, i, gen] { worker(i, gen); });
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      stop_flag_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  int size_;
  std::vector<std::thread> workers_;
  std::mutex run_mu_;  // one parallel region at a time; others run serially
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  bool stop_ = false;
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_flag_{false};  // stop_, readable without the lock while spinning
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int job_chunks_ = 1;
  std::atomic<int> pending_{0};
  std::exception_ptr error_;
};

// Leaked on purpose: joining threads from a static destructor at interpreter exit can
// deadlock; the OS reclaims them.
std::atomic<Pool*> g_pool{nullptr};
std::once_flag g_pool_once;

// A forked child (multiprocessing's default start method on Linux) has none of the parent's
// worker threads, and the pool's mutexes may have been held at the fork: the child gets a
// fresh pool of the same size (the old one is abandoned, never touched again).
void reset_pool_in_child() {
  Pool* old = g_pool.load();
  g_pool.store(new Pool(old != nullptr ? old->size() : default_threads()));
}

Pool& pool() {
  std::call_once(g_pool_once, [] {
    g_pool.store(new Pool(default_threads()));
    pthread_atfork(nullptr, nullptr, &reset_pool_in_child);
  });
  return *g_pool.load();
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) {
  if (n < 1) throw_value_error("set_num_threads: n must be >= 1, got ", n);
  if (n > 1024) throw_value_error("set_num_threads: n must be <= 1024, got ", n);
  if (n != pool().size()) pool().resize(n);
}

void init_threads_from_env() {
  const char* env = std::getenv("FASTVISION_NUM_THREADS");
  if (env == nullptr || *env == '\0') return;
  char* end = nullptr;
  const long n = std::strtol(env, &end, 10);
  if (*end != '\0' || n < 1 || n > 1024) {
    throw_value_error("FASTVISION_NUM_THREADS: must be an integer in [1, 1024], got '", env, "'");
  }
  set_num_threads(static_cast<int>(n));
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  pool().run(n, grain, fn);
}

}  // namespace fv
