// A caching allocator for kernel outputs (the CPU analogue of PyTorch's CUDA caching
// allocator).
//
// Why: a training step allocates the same large activation and gradient arrays every step.
// From malloc, each large block is fresh mmap'ed memory, and its first touch costs a page
// fault per 4 KiB: measured in the reference CNN's step, relu_backward on (64,32,26,26) took
// 1.8 ms with fresh memory against 0.11 ms with warm memory. Freed blocks are kept here and
// handed out again for the same size, so steady-state steps touch only warm pages.
//
// Blocks are 64-byte aligned, their size rounded up to 4 KiB; only blocks of at least
// kMinCachedBytes go through the cache (small arrays stay with NumPy's allocator). At most
// kMaxCachedBytes of free blocks are kept; past that a freed block goes back to the OS.
// Thread-safe. Contents of a reused block are stale: kernels must write every output element.
#pragma once

#include <cstddef>

namespace fv {

constexpr size_t kMinCachedBytes = size_t(1) << 16;
constexpr size_t kMaxCachedBytes = size_t(1) << 30;

// A 64-byte aligned block of at least `bytes`; nullptr when out of memory.
void* cache_alloc(size_t bytes);
// Gives back a block from cache_alloc (kept for reuse, or freed when the cache is full).
void cache_free(void* p);
// Bytes held in free blocks now; frees them all.
size_t cached_free_bytes();
void empty_cache();

}  // namespace fv
