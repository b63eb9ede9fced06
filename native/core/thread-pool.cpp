// SPDX-License-Identifier: MIT
#include "weightsmith/thread-pool.h"

#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

namespace ws {

namespace {

struct Job {
  const std::function<Status(size_t)>* fn = nullptr;
  const std::atomic<bool>* cancel = nullptr;
  size_t n_chunks = 0;
  std::atomic<size_t> next{0};
  std::atomic<size_t> finished{0};
  std::mutex mu;
  std::condition_variable done_cv;
  Status first_error;  // guarded by mu
  bool failed = false;  // guarded by mu

  // Claims and runs chunks until none are left, or (for pool workers) until the pool is being resized: the
  // caller of the job always finishes whatever chunks remain.
  void work(const std::atomic<bool>* stop = nullptr) {
    for (;;) {
      if (stop != nullptr && stop->load(std::memory_order_relaxed)) return;
      const size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= n_chunks) return;
      Status st;
      if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
        st = Status(Code::kAborted, "The operation was aborted");
      } else {
        try {
          st = (*fn)(i);
        } catch (const std::bad_alloc&) {
          st = Status(Code::kOutOfMemory, "out of memory in a native kernel");
        } catch (...) {
          st = Status(Code::kInternal, "unexpected exception in a native kernel");
        }
      }
      if (!st.is_ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (!failed) {
          failed = true;
          first_error = std::move(st);
        }
      }
      if (finished.fetch_add(1, std::memory_order_acq_rel) + 1 == n_chunks) {
        std::lock_guard<std::mutex> lock(mu);
        done_cv.notify_all();
      }
    }
  }
};

int default_threads() {
  if (const char* env = std::getenv("WEIGHTSMITH_THREADS")) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 1 && v <= 256) return static_cast<int>(v);
  }
  const unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc > 256 ? 256 : hc);
}

class Pool {
 public:
  Pool() : threads_(default_threads()) {}

  int threads() {
    std::lock_guard<std::mutex> lock(mu_);
    return threads_;
  }

  void set_threads(int n) {
    if (n < 1) n = 1;
    if (n > 256) n = 256;
    std::lock_guard<std::mutex> resize(resize_mu_);
    stop_workers();
    std::lock_guard<std::mutex> lock(mu_);
    threads_ = n;
  }

  Status run(size_t n_chunks, const std::function<Status(size_t)>& fn, const std::atomic<bool>* cancel) {
    if (n_chunks == 0) return Status::ok();
    auto job = std::make_shared<Job>();
    job->fn = &fn;
    job->cancel = cancel;
    job->n_chunks = n_chunks;
    if (n_chunks > 1) {
      std::lock_guard<std::mutex> resize(resize_mu_);
      start_workers();
      std::lock_guard<std::mutex> lock(mu_);
      if (!workers_.empty()) {
        queue_.push_back(job);
        cv_.notify_all();
      }
    }
    job->work();
    {
      std::unique_lock<std::mutex> lock(job->mu);
      job->done_cv.wait(lock, [&] { return job->finished.load(std::memory_order_acquire) == n_chunks; });
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = queue_.begin(); it != queue_.end(); ++it) {
        if (*it == job) {
          queue_.erase(it);
          break;
        }
      }
    }
    std::lock_guard<std::mutex> lock(job->mu);
    return job->failed ? job->first_error : Status::ok();
  }

 private:
  // Called with resize_mu_ held.
  void start_workers() {
    std::lock_guard<std::mutex> lock(mu_);
    const int want = threads_ - 1;
    while (static_cast<int>(workers_.size()) < want) {
      try {
        workers_.emplace_back([this] { worker_loop(); });
      } catch (const std::exception&) {
        break;  // the system refused another thread: run with the ones that started (the caller always works)
      }
    }
  }

  // Called with resize_mu_ held. Workers finish the chunk in hand; queued jobs are completed by their callers.
  void stop_workers() {
    std::vector<std::thread> old;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      old.swap(workers_);
      cv_.notify_all();
    }
    for (auto& t : old) t.join();
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = false;
  }

  void worker_loop() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] {
          if (stopping_.load(std::memory_order_relaxed)) return true;
          for (auto& j : queue_) {
            if (j->next.load(std::memory_order_relaxed) < j->n_chunks) return true;
          }
          return false;
        });
        if (stopping_.load(std::memory_order_relaxed)) return;
        for (auto& j : queue_) {
          if (j->next.load(std::memory_order_relaxed) < j->n_chunks) {
            job = j;
            break;
          }
        }
      }
      if (job) job->work(&stopping_);
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = queue_.begin(); it != queue_.end(); ++it) {
        if (*it == job && job->next.load(std::memory_order_relaxed) >= job->n_chunks) {
          queue_.erase(it);
          break;
        }
      }
    }
  }

  std::mutex resize_mu_;  // serializes start/stop of workers
  std::mutex mu_;         // guards threads_, workers_, queue_, stopping_
  std::condition_variable cv_;
  int threads_;
  std::atomic<bool> stopping_{false};  // written under mu_, read by workers between chunks
  std::vector<std::thread> workers_;
  std::deque<std::shared_ptr<Job>> queue_;
};

// Deliberately never destroyed: worker threads may still be parked on the condition variable when the host
// process exits, and joining them from a static destructor could block exit.
Pool& pool() {
  static Pool* p = new Pool();
  return *p;
}

}  // namespace

int get_threads() { return pool().threads(); }
void set_threads(int n) { pool().set_threads(n); }

Status parallel_for(size_t n_chunks, const std::function<Status(size_t)>& fn, const std::atomic<bool>* cancel) {
  return pool().run(n_chunks, fn, cancel);
}

}  // namespace ws
