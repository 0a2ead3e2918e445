#include "core/buffer_cache.h"

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>

namespace fv {
namespace {

constexpr size_t kAlign = 64;   // a cache line; also the widest vector
constexpr size_t kPage = 4096;

// Each block starts with a header (its rounded size) in the first kAlign bytes.
struct Header {
  size_t bytes;
};

struct Cache {
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;  // rounded size -> block start
  size_t free_bytes = 0;
};

// Leaked: arrays may be freed during interpreter exit. A forked child starts a fresh cache
// (the parent's mutex may have been held at the fork); blocks it inherited are simply freed
// when their arrays die, since cache_free puts them into whichever cache is current.
std::atomic<Cache*> g_cache{nullptr};
std::once_flag g_cache_once;

void reset_cache_in_child() { g_cache.store(new Cache()); }

Cache& cache() {
  std::call_once(g_cache_once, [] {
    g_cache.store(new Cache());
    pthread_atfork(nullptr, nullptr, &reset_cache_in_child);
  });
  return *g_cache.load();
}

size_t round_up(size_t bytes) { return (bytes + kAlign + kPage - 1) / kPage * kPage; }

}  // namespace

void* cache_alloc(size_t bytes) {
  const size_t size = round_up(bytes);
  if (size < bytes) return nullptr;  // overflow
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lk(c.mu);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end()) {
      void* block = it->second;
      c.free_blocks.erase(it);
      c.free_bytes -= size;
      return static_cast<char*>(block) + kAlign;
    }
  }
  void* block = std::aligned_alloc(kAlign, size);
  if (block == nullptr) {
    empty_cache();  // give the cached blocks back and try once more
    block = std::aligned_alloc(kAlign, size);
    if (block == nullptr) return nullptr;
  }
  static_cast<Header*>(block)->bytes = size;
  return static_cast<char*>(block) + kAlign;
}

void cache_free(void* p) {
  if (p == nullptr) return;
  void* block = static_cast<char*>(p) - kAlign;
  const size_t size = static_cast<Header*>(block)->bytes;
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lk(c.mu);
    if (c.free_bytes + size <= kMaxCachedBytes) {
      c.free_blocks.emplace(size, block);
      c.free_bytes += size;
      return;
    }
  }
  std::free(block);
}

size_t cached_free_bytes() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lk(c.mu);
  return c.free_bytes;
}

void empty_cache() {
  Cache& c = cache();
  std::multimap<size_t, void*> blocks;
  {
    std::lock_guard<std::mutex> lk(c.mu);
    blocks.swap(c.free_blocks);
    c.free_bytes = 0;
  }
  for (auto& kv : blocks) std::free(kv.second);
}

}  // namespace fv
