// A small fixed thread pool whose one primitive, ParallelFor, splits an index range over all cores.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

namespace qalign {

class ThreadPool {
 public:
  // num_threads <= 0: std::thread::hardware_concurrency(). The calling thread is one of them, so
  // a pool of N threads starts N - 1 workers.
  explicit ThreadPool(int num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) on disjoint chunks covering [0, n), each at least `min_chunk` long
  // (except the last), and returns when all are done. Nested calls (from inside fn) and calls
  // while another ParallelFor runs execute inline on the calling thread.
  void ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                   int64_t min_chunk = 1);

 private:
  // One ParallelFor call. Workers hold it by shared_ptr, so a worker that wakes late still
  // counts chunks on the job it woke for and never takes a chunk of the next one.
  struct Job {
    const std::function<void(int64_t, int64_t)>* fn = nullptr;
    int64_t n = 0;
    int64_t chunk = 1;
    int64_t num_chunks = 0;
    std::atomic<int64_t> next_chunk{0};
    int64_t chunks_done = 0;  // guarded by ThreadPool::mutex_
  };

  void WorkerLoop();
  void RunChunks(Job& job);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::mutex run_mutex_;  // one ParallelFor at a time
  bool stop_ = false;
  uint64_t generation_ = 0;
  std::shared_ptr<Job> job_;  // the current job, guarded by mutex_
};

// Runs fn over [0, n) on `pool`, or inline when pool is nullptr or the range is small.
void ParallelFor(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                 int64_t min_chunk = 1);

}  // namespace qalign
