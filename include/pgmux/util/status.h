// Status and Result<T>: the data plane's error values (no exceptions there).
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace pgmux {

// An error carries a PostgreSQL SQLSTATE (five characters) and a message fit for a client.
class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status error(std::string sqlstate, std::string message) {
    Status s;
    s.ok_ = false;
    s.sqlstate_ = std::move(sqlstate);
    s.message_ = std::move(message);
    return s;
  }
  bool isOk() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const std::string& sqlstate() const { return sqlstate_; }
  const std::string& message() const { return message_; }

 private:
  bool ok_ = true;
  std::string sqlstate_;
  std::string message_;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT(google-explicit-constructor)
  Result(Status error) : v_(std::move(error)) {}     // NOLINT(google-explicit-constructor)
  bool isOk() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return isOk(); }
  T& value() { return std::get<T>(v_); }
  const T& value() const { return std::get<T>(v_); }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }
  const Status& status() const { return std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

// SQLSTATEs pgmux sends itself.
namespace sqlstate {
inline constexpr const char* kProtocolViolation = "08P01";
inline constexpr const char* kConnectionFailure = "08006";
inline constexpr const char* kInvalidPassword = "28P01";
inline constexpr const char* kInvalidAuthorization = "28000";
inline constexpr const char* kTooManyConnections = "53300";
inline constexpr const char* kAdminShutdown = "57P01";
inline constexpr const char* kQueryCanceled = "57014";
// PostgreSQL's message with kQueryCanceled for a CancelRequest (statement_timeout's differs).
inline constexpr const char* kCancelRequestMessage = "canceling statement due to user request";
inline constexpr const char* kInvalidCatalogName = "3D000";
inline constexpr const char* kFeatureNotSupported = "0A000";
inline constexpr const char* kInvalidSqlStatementName = "26000";
inline constexpr const char* kDuplicatePreparedStatement = "42P05";
inline constexpr const char* kInternalError = "XX000";
inline constexpr const char* kConfigFileError = "F0000";
}  // namespace sqlstate

}  // namespace pgmux
