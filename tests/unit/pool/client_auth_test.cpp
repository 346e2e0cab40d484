// Client authentication exchanges, driven with the bytes a real client would send.
#include <catch2/catch.hpp>

#include "pgmux/auth/md5.h"
#include "pgmux/auth/scram.h"
#include "pgmux/pool/client_auth.h"
#include "pgmux/proto/frame.h"
#include "pgmux/proto/messages.h"

using namespace pgmux;
using pgmux::config::AuthType;
using pgmux::pool::ClientAuth;

namespace {

// The body of the one message in `bytes`.
std::span<const uint8_t> bodyOf(const std::string& bytes) {
  proto::FrameHeader h;
  REQUIRE(proto::peekFrame(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), h) ==
          proto::DecodeStatus::Ok);
  REQUIRE(bytes.size() == h.totalSize());
  return std::span(reinterpret_cast<const uint8_t*>(bytes.data()) + 5, h.bodySize());
}

proto::AuthRequest authRequestOf(const std::string& bytes) {
  REQUIRE(bytes[0] == 'R');
  proto::AuthRequest req;
  REQUIRE(proto::parseAuthenticationRequest(bodyOf(bytes), req) == proto::DecodeStatus::Ok);
  return req;
}

std::string passwordMessage(std::string_view pw) {
  std::string out;
  proto::encodePasswordMessage(out, pw);
  return out;
}

// Runs a whole SCRAM exchange with `password`; returns the final step.
ClientAuth::Step scramLogin(ClientAuth& a, std::string first, const std::string& password) {
  auto req = authRequestOf(first);
  REQUIRE(req.code == proto::AuthCode::SASL);
  auto client = auth::ScramClient::withPassword(password);
  std::string msg;
  proto::encodeSASLInitialResponse(msg, "SCRAM-SHA-256", client.clientFirst());
  std::string out;
  REQUIRE(a.onPasswordMessage(bodyOf(msg), out) == ClientAuth::Step::SendAndWait);
  auto cont = authRequestOf(out);
  REQUIRE(cont.code == proto::AuthCode::SASLContinue);
  auto final = client.handleServerFirst(std::string_view(reinterpret_cast<const char*>(cont.data.data()), cont.data.size()));
  REQUIRE(final.isOk());
  std::string resp;
  proto::encodeSASLResponse(resp, *final);
  out.clear();
  const auto step = a.onPasswordMessage(bodyOf(resp), out);
  if (step == ClientAuth::Step::Done) {
    auto fin = authRequestOf(out);
    REQUIRE(fin.code == proto::AuthCode::SASLFinal);
    CHECK(client.handleServerFinal(std::string_view(reinterpret_cast<const char*>(fin.data.data()), fin.data.size())).isOk());
  }
  return step;
}

}  // namespace

TEST_CASE("md5: the right password logs in, a wrong one fails with 28P01", "[pool][auth]") {
  const auto secretForm = GENERATE(as<std::string>{}, "plain", "md5");
  const auth::UserSecret secret =
      auth::classifySecret(secretForm == "plain" ? std::string("s3cret") : auth::md5Secret("alice", "s3cret"));
  const auto password = GENERATE(as<std::string>{}, "s3cret", "wrong");
  ClientAuth a;
  std::string out;
  REQUIRE(a.begin(AuthType::Md5, &secret, "alice", 4096, out) == ClientAuth::Step::SendAndWait);
  auto req = authRequestOf(out);
  REQUIRE(req.code == proto::AuthCode::MD5Password);
  REQUIRE(req.data.size() == 4);
  const auto resp = auth::md5SaltedResponse(auth::md5Secret("alice", password), req.data.data());
  out.clear();
  const auto step = a.onPasswordMessage(bodyOf(passwordMessage(resp)), out);
  if (password == "s3cret") {
    CHECK(step == ClientAuth::Step::Done);
  } else {
    CHECK(step == ClientAuth::Step::Failed);
    CHECK(a.error().sqlstate() == "28P01");
  }
}

TEST_CASE("unknown user and wrong password fail with the same error", "[pool][auth]") {
  const auto type = GENERATE(AuthType::Md5, AuthType::ScramSha256, AuthType::Plain);
  const auth::UserSecret secret = auth::classifySecret("right");
  std::string errWrong, errUnknown;
  for (const bool known : {true, false}) {
    ClientAuth a;
    std::string out;
    REQUIRE(a.begin(type, known ? &secret : nullptr, "bob", 4096, out) == ClientAuth::Step::SendAndWait);
    ClientAuth::Step step;
    if (type == AuthType::ScramSha256) {
      step = scramLogin(a, out, "wrong");
    } else if (type == AuthType::Md5) {
      auto req = authRequestOf(out);
      std::string o;
      step = a.onPasswordMessage(
          bodyOf(passwordMessage(auth::md5SaltedResponse(auth::md5Secret("bob", "wrong"), req.data.data()))), o);
    } else {
      std::string o;
      step = a.onPasswordMessage(bodyOf(passwordMessage("wrong")), o);
    }
    REQUIRE(step == ClientAuth::Step::Failed);
    (known ? errWrong : errUnknown) = a.error().sqlstate() + ": " + a.error().message();
  }
  CHECK(errWrong == errUnknown);
  CHECK(errWrong == "28P01: password authentication failed for user \"bob\"");
}

TEST_CASE("scram-sha-256 against a plain secret logs in and offers no pass-through keys", "[pool][auth]") {
  const auth::UserSecret secret = auth::classifySecret("pencil");
  ClientAuth a;
  std::string out;
  REQUIRE(a.begin(AuthType::ScramSha256, &secret, "u", 4096, out) == ClientAuth::Step::SendAndWait);
  CHECK(scramLogin(a, out, "pencil") == ClientAuth::Step::Done);
  CHECK_FALSE(a.clientKey().has_value());
}

TEST_CASE("a SCRAM secret logs in by SCRAM even with auth_type md5 and yields the pass-through keys",
          "[pool][auth]") {
  const auto stored = auth::scramSecretFromPassword("pencil", "0123456789abcdef", 4096);
  const auth::UserSecret secret = auth::classifySecret(auth::formatScramSecret(stored));
  REQUIRE(secret.kind == auth::SecretKind::Scram);
  const auto type = GENERATE(AuthType::Md5, AuthType::ScramSha256);
  ClientAuth a;
  std::string out;
  REQUIRE(a.begin(type, &secret, "u", 4096, out) == ClientAuth::Step::SendAndWait);
  CHECK(scramLogin(a, out, "pencil") == ClientAuth::Step::Done);
  REQUIRE(a.clientKey().has_value());
  CHECK(a.serverKey() == stored.serverKey);
}

TEST_CASE("plain auth accepts the password against plain, md5 and SCRAM secrets", "[pool][auth]") {
  const auto text = GENERATE(std::string("pw"), pgmux::auth::md5Secret("carol", "pw"),
                             pgmux::auth::formatScramSecret(pgmux::auth::scramSecretFromPassword("pw", "saltsalt", 1000)));
  const auth::UserSecret secret = auth::classifySecret(text);
  ClientAuth a;
  std::string out;
  REQUIRE(a.begin(AuthType::Plain, &secret, "carol", 4096, out) == ClientAuth::Step::SendAndWait);
  CHECK(authRequestOf(out).code == proto::AuthCode::CleartextPassword);
  std::string o;
  CHECK(a.onPasswordMessage(bodyOf(passwordMessage("pw")), o) == ClientAuth::Step::Done);
}

TEST_CASE("trust needs the user in the auth file; any does not", "[pool][auth]") {
  const auth::UserSecret secret = auth::classifySecret("");
  std::string out;
  ClientAuth known, unknown, any;
  CHECK(known.begin(AuthType::Trust, &secret, "u", 4096, out) == ClientAuth::Step::Done);
  CHECK(unknown.begin(AuthType::Trust, nullptr, "u", 4096, out) == ClientAuth::Step::Failed);
  CHECK(any.begin(AuthType::Any, nullptr, "u", 4096, out) == ClientAuth::Step::Done);
  CHECK(out.empty());
}

TEST_CASE("a malformed SASL initial response is a protocol violation", "[pool][auth]") {
  const auth::UserSecret secret = auth::classifySecret("pw");
  ClientAuth a;
  std::string out;
  REQUIRE(a.begin(AuthType::ScramSha256, &secret, "u", 4096, out) == ClientAuth::Step::SendAndWait);
  std::string o;
  CHECK(a.onPasswordMessage(bodyOf(std::string("p\0\0\0\x05x", 6)), o) == ClientAuth::Step::Failed);
  CHECK(a.error().sqlstate() == "08P01");
}
