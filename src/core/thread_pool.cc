// ThreadPool: workers sleep on a condition variable and pull chunks of the current job.
#include "core/thread_pool.h"

#include <algorithm>
#include <system_error>

#include "core/logging.h"

namespace qalign {
namespace {
thread_local bool t_inside_pool = false;
}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) num_threads = static_cast<int>(std::thread::hardware_concurrency());
  num_threads = std::max(num_threads, 1);
  // More threads than cores only adds switching; --threads 100000 asked the system for threads it
  // would not give (std::system_error escaped main).
  const int cap = std::max(256, 4 * static_cast<int>(std::thread::hardware_concurrency()));
  if (num_threads > cap) {
    LogWarning("thread pool: ", num_threads, " threads asked, using ", cap);
    num_threads = cap;
  }
  for (int i = 1; i < num_threads; ++i) {
    try {
      workers_.emplace_back([this] { WorkerLoop(); });
    } catch (const std::system_error& e) {
      // Out of threads (ulimit -u, memory for stacks): run with those that started.
      LogWarning("thread pool: could start only ", i, " of ", num_threads, " threads (",
                 e.what(), ")");
      break;
    }
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::RunChunks(Job& job) {
  int64_t finished = 0;
  while (true) {
    const int64_t c = job.next_chunk.fetch_add(1);
    if (c >= job.num_chunks) break;
    const int64_t begin = c * job.chunk;
    const int64_t end = std::min(job.n, begin + job.chunk);
    (*job.fn)(begin, end);
    ++finished;
  }
  if (finished > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    job.chunks_done += finished;
    if (job.chunks_done == job.num_chunks) done_.notify_all();
  }
}

void ThreadPool::WorkerLoop() {
  t_inside_pool = true;
  uint64_t seen = 0;
  while (true) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
    }
    if (job) RunChunks(*job);
  }
}

void ThreadPool::ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                             int64_t min_chunk) {
  if (n <= 0) return;
  min_chunk = std::max<int64_t>(min_chunk, 1);
  if (workers_.empty() || t_inside_pool || n <= min_chunk) {
    fn(0, n);
    return;
  }
  std::unique_lock<std::mutex> run_lock(run_mutex_, std::try_to_lock);
  if (!run_lock.owns_lock()) {  // another thread is using the pool: do not wait for it
    fn(0, n);
    return;
  }
  // About 4 chunks per thread balances uneven chunks without much scheduling overhead.
  const int64_t target_chunks = static_cast<int64_t>(num_threads()) * 4;
  auto job = std::make_shared<Job>();
  job->fn = &fn;
  job->n = n;
  job->chunk = std::max(min_chunk, (n + target_chunks - 1) / target_chunks);
  job->num_chunks = (n + job->chunk - 1) / job->chunk;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = job;
    ++generation_;
  }
  wake_.notify_all();
  t_inside_pool = true;
  RunChunks(*job);
  t_inside_pool = false;
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return job->chunks_done == job->num_chunks; });
  job_.reset();
}

void ParallelFor(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                 int64_t min_chunk) {
  if (n <= 0) return;
  if (pool == nullptr) {
    fn(0, n);
    return;
  }
  pool->ParallelFor(n, fn, min_chunk);
}

}  // namespace qalign
