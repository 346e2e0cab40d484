// SCRAM-SHA-256 (RFC 5802/7677 as PostgreSQL uses it, without channel binding): both sides.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "pgmux/util/status.h"

namespace pgmux::auth {

using ScramKey = std::array<uint8_t, 32>;

// The stored form "SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>".
struct ScramSecret {
  int iterations = 0;
  std::string salt;  // raw bytes
  ScramKey storedKey{};
  ScramKey serverKey{};
};
std::optional<ScramSecret> parseScramSecret(std::string_view text);
std::string formatScramSecret(const ScramSecret& secret);
// Derives the secret for a plain-text password (SaltedPassword by PBKDF2-HMAC-SHA-256).
ScramSecret scramSecretFromPassword(std::string_view password, std::string_view salt, int iterations);
// A new random salt of 16 bytes.
std::string randomScramSalt();
// A secret for a user who does not exist, so that the exchange runs to the same "password
// authentication failed" as a wrong password: the salt is stable per user name for the life of the
// process (a probing client sees the same salt each time, as for a real user), the keys are random.
ScramSecret scramMockSecret(std::string_view user);

std::string base64Encode(std::string_view raw);
std::optional<std::string> base64Decode(std::string_view text);

// pgmux authenticating a client. Errors carry 28P01 (bad proof) or 08P01 (malformed message).
class ScramServer {
 public:
  explicit ScramServer(ScramSecret secret) : secret_(std::move(secret)) {}
  // client-first-message -> server-first-message ("r=...,s=...,i=...").
  Result<std::string> handleClientFirst(std::string_view clientFirst);
  // client-final-message -> server-final-message ("v=..."); fails when the proof is wrong.
  Result<std::string> handleClientFinal(std::string_view clientFinal);
  // After a successful handleClientFinal: ClientKey recovered from the proof (for pass-through).
  const ScramKey& clientKey() const { return clientKey_; }
  // Tests only: the server nonce to append instead of a random one (to replay known vectors).
  void setServerNonceForTesting(std::string nonce) { fixedServerNonce_ = std::move(nonce); }

 private:
  ScramSecret secret_;
  std::string fixedServerNonce_;
  std::string gs2Header_;  // "n,," or "y,,": what c= in client-final must carry
  std::string clientFirstBare_;
  std::string serverFirst_;
  std::string nonce_;  // client nonce + server nonce
  ScramKey clientKey_{};
};

// pgmux logging in to a server, with a password or with the keys of a pass-through client.
// Errors carry 08P01 (malformed server message) or 28P01 (server error e=, or a server signature
// that does not match: the server does not hold the same secret).
class ScramClient {
 public:
  static ScramClient withPassword(std::string password);
  static ScramClient withKeys(const ScramKey& clientKey, const ScramKey& serverKey);
  // "n,,n=,r=<nonce>"
  std::string clientFirst();
  // server-first-message -> client-final-message.
  Result<std::string> handleServerFirst(std::string_view serverFirst);
  // Checks the server's signature in server-final-message ("v=...").
  Status handleServerFinal(std::string_view serverFinal);
  // Tests only: the client nonce clientFirst() sends instead of a random one.
  void setClientNonceForTesting(std::string nonce) { clientNonce_ = std::move(nonce); }

 private:
  std::string password_;
  bool haveKeys_ = false;
  ScramKey clientKey_{};
  ScramKey serverKey_{};
  std::string clientNonce_;
  std::string clientFirstBare_;
  std::string expectedServerSignature_;
};

}  // namespace pgmux::auth
