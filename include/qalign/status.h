// Status and StatusOr<T>: how every qalign library call reports failure (no exceptions cross the API).
#pragma once

#include <cassert>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <variant>

namespace qalign {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // bad user input: a flag, a file's contents, a tensor name
  kNotFound,           // a file, tensor or op that does not exist
  kFailedPrecondition, // the graph is not in a state the call needs (e.g. a cycle)
  kUnimplemented,      // an op, opset or feature qalign does not support
  kIoError,            // reading or writing a file failed
  kInternal,           // a broken invariant: a bug in qalign
  kCancelled,          // the caller's progress callback asked to stop
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid argument: <message>", or "ok".
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Concatenates any streamable values into one string: StrCat("op ", name, " has ", n, " inputs").
template <typename... Args>
std::string StrCat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

template <typename... Args>
Status InvalidArgumentError(const Args&... args) {
  return Status(StatusCode::kInvalidArgument, StrCat(args...));
}
template <typename... Args>
Status NotFoundError(const Args&... args) {
  return Status(StatusCode::kNotFound, StrCat(args...));
}
template <typename... Args>
Status FailedPreconditionError(const Args&... args) {
  return Status(StatusCode::kFailedPrecondition, StrCat(args...));
}
template <typename... Args>
Status UnimplementedError(const Args&... args) {
  return Status(StatusCode::kUnimplemented, StrCat(args...));
}
template <typename... Args>
Status IoError(const Args&... args) {
  return Status(StatusCode::kIoError, StrCat(args...));
}
template <typename... Args>
Status InternalError(const Args&... args) {
  return Status(StatusCode::kInternal, StrCat(args...));
}
template <typename... Args>
Status CancelledError(const Args&... args) {
  return Status(StatusCode::kCancelled, StrCat(args...));
}

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(const Status& status) : status_(status) { assert(!status.ok()); }  // NOLINT
  StatusOr(Status&& status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT
  StatusOr(const T& value) : value_(value) {}                                   // NOLINT
  StatusOr(T&& value) : value_(std::move(value)) {}                             // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace qalign

#define QALIGN_CONCAT_INNER_(a, b) a##b
#define QALIGN_CONCAT_(a, b) QALIGN_CONCAT_INNER_(a, b)

#define QALIGN_RETURN_IF_ERROR(expr)               \
  do {                                             \
    ::qalign::Status qalign_status_ = (expr);      \
    if (!qalign_status_.ok()) return qalign_status_; \
  } while (0)

#define QALIGN_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()

// QALIGN_ASSIGN_OR_RETURN(auto graph, ImportOnnx(path));
#define QALIGN_ASSIGN_OR_RETURN(lhs, expr) \
  QALIGN_ASSIGN_OR_RETURN_IMPL_(QALIGN_CONCAT_(qalign_statusor_, __LINE__), lhs, expr)
