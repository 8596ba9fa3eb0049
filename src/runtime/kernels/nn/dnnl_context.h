// The process-wide oneDNN engine and per-thread stream, and helpers to describe plain tensors.
#pragma once

#include <cstdint>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

namespace qalign::nn {

// One CPU engine for the whole process. oneDNN in Debian uses the OpenMP runtime (libgomp), so a
// primitive runs on omp_get_max_threads() threads (all cores unless OMP_NUM_THREADS says
// otherwise). libgomp's idle workers spin after each parallel region, which next to qalign's own
// thread pool (and on a busy machine) slowed PP-OCRv4 det's convolutions up to 5x;
// OMP_WAIT_POLICY=PASSIVE avoids it, but libgomp reads it before main(), so it has to be in the
// environment when the process starts (bench/runtime_compare.sh sets it).
dnnl::engine& DnnlEngine();
// One in-order stream per calling thread (a stream must not be shared by concurrent callers); it
// is created once per thread and lives as long as the thread.
dnnl::stream& DnnlStream();

// Dense row-major ("abcd...") f32 memory descriptor for `dims`.
dnnl::memory::desc PlainDesc(const std::vector<int64_t>& dims);
// f32 memory descriptor for `dims` with explicit element strides.
dnnl::memory::desc StridedDesc(const std::vector<int64_t>& dims,
                               const std::vector<int64_t>& strides);

// Wraps caller-owned memory (oneDNN does not take ownership; it never writes to inputs).
inline dnnl::memory WrapMemory(const dnnl::memory::desc& desc, const void* data) {
  return dnnl::memory(desc, DnnlEngine(), const_cast<void*>(data));
}

}  // namespace qalign::nn
