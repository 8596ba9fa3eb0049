// The process-wide oneDNN engine and per-thread stream, and helpers to describe plain tensors.
#pragma once

#include <cstdint>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

namespace qalign::nn {

// One CPU engine for the whole process. oneDNN in Debian uses the OpenMP runtime, so a primitive
// runs on omp_get_max_threads() threads (all cores unless OMP_NUM_THREADS says otherwise).
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
