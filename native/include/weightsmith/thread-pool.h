// SPDX-License-Identifier: MIT
// A fixed pool of native threads. Work is cut by the caller into chunks whose boundaries depend only on the
// problem size (never on the thread count), and each chunk writes a disjoint part of the output, so results
// are bit-identical for any thread count. The calling thread takes part in its own job; several jobs (from
// several async workers) may run at once.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>

#include "weightsmith/status.h"

namespace ws {

// Threads used by parallel_for, including the caller. Default: WEIGHTSMITH_THREADS if set, else the number
// of cores. set_threads clamps to [1, 256].
int get_threads();
void set_threads(int n);

// Runs fn(chunk) for chunk in [0, n_chunks). fn must not throw (exceptions are caught and reported as
// kInternal / kOutOfMemory). When cancel becomes true, chunks not yet started are skipped and kAborted is
// returned. Returns the first failing Status a chunk reported through fn's return value.
Status parallel_for(size_t n_chunks, const std::function<Status(size_t)>& fn,
                    const std::atomic<bool>* cancel = nullptr);

// Number of chunks of `chunk` items covering n items.
inline size_t chunk_count(size_t n, size_t chunk) { return n == 0 ? 0 : (n + chunk - 1) / chunk; }

}  // namespace ws
