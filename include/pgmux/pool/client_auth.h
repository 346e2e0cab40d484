// The client side of authentication: which request pgmux sends for the configured auth_type and
// the user's secret, and the check of each password message. No sockets: bytes in, bytes out.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "pgmux/auth/auth_file.h"
#include "pgmux/auth/scram.h"
#include "pgmux/config/config.h"
#include "pgmux/util/status.h"

namespace pgmux::pool {

class ClientAuth {
 public:
  enum class Step : uint8_t { SendAndWait, Done, Failed };

  // Starts the exchange. `secret` is nullptr for a user missing from the auth file: the exchange
  // then runs to its end and fails like a wrong password, so the two cannot be told apart.
  // `out` gets the authentication request to send.
  Step begin(config::AuthType type, const auth::UserSecret* secret, const std::string& user,
             int scramIterations, std::string& out);
  // Feeds one password message ('p') body. `out` gets what to send next (for SCRAM).
  Step onPasswordMessage(std::span<const uint8_t> body, std::string& out);

  // Why the exchange failed (28P01 for a wrong password or unknown user, 08P01 for bad messages).
  const Status& error() const { return error_; }
  // After a SCRAM login against a SCRAM secret: the keys for server login by pass-through.
  const std::optional<auth::ScramKey>& clientKey() const { return clientKey_; }
  const auth::ScramKey& serverKey() const { return serverKey_; }

 private:
  enum class Method : uint8_t { None, Cleartext, Md5, ScramFirst, ScramFinal };
  Step fail(const char* sqlstate, std::string message);
  Step authFailed();

  Method method_ = Method::None;
  std::string user_;
  const auth::UserSecret* secret_ = nullptr;
  uint8_t salt_[4] = {};
  std::unique_ptr<auth::ScramServer> scram_;
  bool scramFromSecret_ = false;
  Status error_;
  std::optional<auth::ScramKey> clientKey_;
  auth::ScramKey serverKey_{};
};

}  // namespace pgmux::pool
