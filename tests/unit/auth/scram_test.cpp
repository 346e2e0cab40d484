// SCRAM-SHA-256 on both sides: RFC 7677's vector, a secret PostgreSQL 15 made, full exchanges
// between ScramClient and ScramServer, and malformed or tampered messages.
#include "pgmux/auth/scram.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace pgmux;
using namespace pgmux::auth;

namespace {

// RFC 7677 section 3.
constexpr const char* kRfcClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr const char* kRfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr const char* kRfcSalt = "W22ZaJ0SNY7soEsUEjb6gQ==";
constexpr const char* kRfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr const char* kRfcServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr const char* kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr const char* kRfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

ScramSecret rfcSecret() {
  return scramSecretFromPassword("pencil", *base64Decode(kRfcSalt), 4096);
}

ScramSecret quickSecret(std::string_view password) {
  return scramSecretFromPassword(password, "0123456789abcdef", 16);
}

// Runs client-first and server-first; returns the client-final the client built.
std::string firstHalf(ScramClient& client, ScramServer& server) {
  auto serverFirst = server.handleClientFirst(client.clientFirst());
  REQUIRE(serverFirst.isOk());
  auto clientFinal = client.handleServerFirst(serverFirst.value());
  REQUIRE(clientFinal.isOk());
  return clientFinal.value();
}

std::string withCharFlipped(std::string text, size_t at) {
  text[at] = text[at] == 'A' ? 'B' : 'A';
  return text;
}

}  // namespace

TEST_CASE("base64 matches RFC 4648 and rejects what is not canonical base64", "[auth][scram]") {
  const std::vector<std::pair<std::string, std::string>> vectors = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [raw, encoded] : vectors) {
    CHECK(base64Encode(raw) == encoded);
    CHECK(base64Decode(encoded) == raw);
  }
  const std::string binary("\x00\xff\xfe\x80", 4);
  CHECK(base64Decode(base64Encode(binary)) == binary);
  for (const char* bad : {"Zg=", "Z===", "Zm9v!", "Zg==Zg==", "Zm 9", "=Zm9", "Zm9vY"}) {
    INFO(bad);
    CHECK_FALSE(base64Decode(bad).has_value());
  }
}

TEST_CASE("scramSecretFromPassword reproduces a secret PostgreSQL 15 stored", "[auth][scram]") {
  // SET password_encryption='scram-sha-256'; CREATE ROLE alice PASSWORD 'pencil';
  const std::string pg =
      "SCRAM-SHA-256$4096:vxy8t314ZZwhxJ3q8TOnvA==$ajOs6zAlmK8ZWtIhxKan3oOj/GI3gJ8DFyPvqNo9BSQ=:"
      "iI+44OA5CWBpjKIqWDn8VQmt9CRUjCsSk3x6fkQZ7ws=";
  auto parsed = parseScramSecret(pg);
  REQUIRE(parsed.has_value());
  CHECK(parsed->iterations == 4096);
  CHECK(parsed->salt.size() == 16);
  CHECK(formatScramSecret(*parsed) == pg);

  const ScramSecret derived = scramSecretFromPassword("pencil", parsed->salt, 4096);
  CHECK(formatScramSecret(derived) == pg);
  CHECK(formatScramSecret(scramSecretFromPassword("pencil2", parsed->salt, 4096)) != pg);
}

TEST_CASE("parseScramSecret rejects anything not exactly the stored form", "[auth][scram]") {
  const std::string keys =
      "ajOs6zAlmK8ZWtIhxKan3oOj/GI3gJ8DFyPvqNo9BSQ=:iI+44OA5CWBpjKIqWDn8VQmt9CRUjCsSk3x6fkQZ7ws=";
  CHECK(parseScramSecret("SCRAM-SHA-256$4096:vxy8t314ZZwhxJ3q8TOnvA==$" + keys).has_value());
  const std::vector<std::string> bads = {
           "SCRAM-SHA-1$4096:vxy8t314ZZwhxJ3q8TOnvA==$" + keys,
           "scram-sha-256$4096:vxy8t314ZZwhxJ3q8TOnvA==$" + keys,
           "SCRAM-SHA-256$0:vxy8t314ZZwhxJ3q8TOnvA==$" + keys,
           "SCRAM-SHA-256$-1:vxy8t314ZZwhxJ3q8TOnvA==$" + keys,
           "SCRAM-SHA-256$4k:vxy8t314ZZwhxJ3q8TOnvA==$" + keys,
           "SCRAM-SHA-256$99999999999:vxy8t314ZZwhxJ3q8TOnvA==$" + keys,
           "SCRAM-SHA-256$4096:$" + keys,
           "SCRAM-SHA-256$4096:vxy8t314ZZwhxJ3q8TOnvA=$" + keys,
           "SCRAM-SHA-256$4096vxy8t314ZZwhxJ3q8TOnvA==$" + keys,
           "SCRAM-SHA-256$4096:vxy8t314ZZwhxJ3q8TOnvA==",
           "SCRAM-SHA-256$4096:vxy8t314ZZwhxJ3q8TOnvA==$ajOs6zAlmK8ZWtIhxKan3oOj/GI3gJ8DFyPvqNo9BSQ=",
           // a StoredKey of 31 bytes
           "SCRAM-SHA-256$4096:vxy8t314ZZwhxJ3q8TOnvA==$ajOs6zAlmK8ZWtIhxKan3oOj/GI3gJ8DFyPvqNo9BQ==:"
           "iI+44OA5CWBpjKIqWDn8VQmt9CRUjCsSk3x6fkQZ7ws=",
           "SCRAM-SHA-256$4096:vxy8t314ZZwhxJ3q8TOnvA==$" + keys + "x",
           ""};
  for (const std::string& bad : bads) {
    INFO(bad);
    CHECK_FALSE(parseScramSecret(bad).has_value());
  }
}

TEST_CASE("ScramServer replays RFC 7677's exchange", "[auth][scram]") {
  ScramServer server(rfcSecret());
  server.setServerNonceForTesting(kRfcServerNonce);
  auto serverFirst = server.handleClientFirst(kRfcClientFirst);
  REQUIRE(serverFirst.isOk());
  CHECK(serverFirst.value() == kRfcServerFirst);
  auto serverFinal = server.handleClientFinal(kRfcClientFinal);
  REQUIRE(serverFinal.isOk());
  CHECK(serverFinal.value() == kRfcServerFinal);
  // ClientKey for "pencil" with RFC 7677's salt (HMAC(SaltedPassword, "Client Key")).
  CHECK(base64Encode(std::string_view(reinterpret_cast<const char*>(server.clientKey().data()),
                                      server.clientKey().size())) ==
        "pg/JI9Z+hkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos=");
}

TEST_CASE("ScramServer rejects RFC 7677's proof with one bit changed as a bad password",
          "[auth][scram]") {
  ScramServer server(rfcSecret());
  server.setServerNonceForTesting(kRfcServerNonce);
  REQUIRE(server.handleClientFirst(kRfcClientFirst).isOk());
  std::string clientFinal = kRfcClientFinal;
  clientFinal[clientFinal.find(",p=") + 3] = 'e';  // 'd' -> 'e'
  auto result = server.handleClientFinal(clientFinal);
  REQUIRE_FALSE(result.isOk());
  CHECK(result.status().sqlstate() == sqlstate::kInvalidPassword);
  CHECK(result.status().message() == "password authentication failed");
}

TEST_CASE("ScramClient computes the proof and checks the signature for RFC 7677's values",
          "[auth][scram]") {
  // libpq sends "n=" with no user name, so the AuthMessage differs from the RFC's; the expected
  // proof and signature were computed independently with Python's hashlib and hmac.
  ScramClient client = ScramClient::withPassword("pencil");
  client.setClientNonceForTesting(kRfcClientNonce);
  CHECK(client.clientFirst() == "n,,n=,r=rOprNGfwEbeRWgbNEkqO");
  auto clientFinal = client.handleServerFirst(kRfcServerFirst);
  REQUIRE(clientFinal.isOk());
  CHECK(clientFinal.value() ==
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=");
  CHECK(client.handleServerFinal("v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=").isOk());
}

TEST_CASE("ScramClient rejects a server signature that does not match", "[auth][scram]") {
  ScramClient client = ScramClient::withPassword("pencil");
  client.setClientNonceForTesting(kRfcClientNonce);
  (void)client.clientFirst();
  REQUIRE(client.handleServerFirst(kRfcServerFirst).isOk());
  // The RFC's signature belongs to an AuthMessage with n=user, not ours.
  const Status status = client.handleServerFinal(kRfcServerFinal);
  REQUIRE_FALSE(status.isOk());
  CHECK(status.sqlstate() == sqlstate::kInvalidPassword);
}

TEST_CASE("ScramClient and ScramServer complete an exchange with a password", "[auth][scram]") {
  const ScramSecret secret = scramSecretFromPassword("s3cret", randomScramSalt(), 64);
  ScramServer server(secret);
  ScramClient client = ScramClient::withPassword("s3cret");
  auto serverFinal = server.handleClientFinal(firstHalf(client, server));
  REQUIRE(serverFinal.isOk());
  CHECK(client.handleServerFinal(serverFinal.value()).isOk());
}

TEST_CASE("a ClientKey recovered by the server logs in by pass-through", "[auth][scram]") {
  // The pooler checks the client against the auth file's secret, then logs in to the server,
  // which holds the same secret, with the recovered ClientKey and the file's ServerKey.
  const ScramSecret secret = scramSecretFromPassword("s3cret", randomScramSalt(), 64);
  ScramServer pooler(secret);
  ScramClient app = ScramClient::withPassword("s3cret");
  auto poolerFinal = pooler.handleClientFinal(firstHalf(app, pooler));
  REQUIRE(poolerFinal.isOk());
  REQUIRE(app.handleServerFinal(poolerFinal.value()).isOk());

  ScramServer backend(secret);
  ScramClient passThrough = ScramClient::withKeys(pooler.clientKey(), secret.serverKey);
  auto backendFinal = backend.handleClientFinal(firstHalf(passThrough, backend));
  REQUIRE(backendFinal.isOk());
  CHECK(passThrough.handleServerFinal(backendFinal.value()).isOk());
}

TEST_CASE("pass-through fails when the server's secret is not the auth file's", "[auth][scram]") {
  const std::string salt = randomScramSalt();
  const ScramSecret fileSecret = scramSecretFromPassword("s3cret", salt, 64);
  ScramServer pooler(fileSecret);
  ScramClient app = ScramClient::withPassword("s3cret");
  REQUIRE(pooler.handleClientFinal(firstHalf(app, pooler)).isOk());

  SECTION("the server has another password") {
    ScramServer backend(scramSecretFromPassword("other", salt, 64));
    ScramClient passThrough = ScramClient::withKeys(pooler.clientKey(), fileSecret.serverKey);
    auto result = backend.handleClientFinal(firstHalf(passThrough, backend));
    REQUIRE_FALSE(result.isOk());
    CHECK(result.status().sqlstate() == sqlstate::kInvalidPassword);
  }
  SECTION("the server has the same StoredKey but another ServerKey") {
    ScramSecret forged = fileSecret;
    forged.serverKey[0] ^= 1;
    ScramServer backend(forged);
    ScramClient passThrough = ScramClient::withKeys(pooler.clientKey(), fileSecret.serverKey);
    auto backendFinal = backend.handleClientFinal(firstHalf(passThrough, backend));
    REQUIRE(backendFinal.isOk());
    const Status status = passThrough.handleServerFinal(backendFinal.value());
    REQUIRE_FALSE(status.isOk());
    CHECK(status.sqlstate() == sqlstate::kInvalidPassword);
  }
}

TEST_CASE("a wrong password fails with 28P01", "[auth][scram]") {
  ScramServer server(quickSecret("right"));
  ScramClient client = ScramClient::withPassword("wrong");
  auto result = server.handleClientFinal(firstHalf(client, server));
  REQUIRE_FALSE(result.isOk());
  CHECK(result.status().sqlstate() == sqlstate::kInvalidPassword);
  CHECK(result.status().message() == "password authentication failed");
}

TEST_CASE("a mock secret fails every password and keeps its salt per user", "[auth][scram]") {
  const ScramSecret mock = scramMockSecret("nobody");
  CHECK(scramMockSecret("nobody").salt == mock.salt);
  CHECK(scramMockSecret("somebody").salt != mock.salt);
  CHECK(mock.salt.size() == 16);
  ScramServer server(mock);
  ScramClient client = ScramClient::withPassword("");
  auto result = server.handleClientFinal(firstHalf(client, server));
  REQUIRE_FALSE(result.isOk());
  CHECK(result.status().sqlstate() == sqlstate::kInvalidPassword);
}

TEST_CASE("ScramServer accepts gs2 flag y and then wants c= to carry it", "[auth][scram]") {
  ScramServer server(rfcSecret());
  server.setServerNonceForTesting(kRfcServerNonce);
  REQUIRE(server.handleClientFirst("y,,n=user,r=rOprNGfwEbeRWgbNEkqO").isOk());
  // c=biws is "n,,": not the header this client sent.
  auto result = server.handleClientFinal(kRfcClientFinal);
  REQUIRE_FALSE(result.isOk());
  CHECK(result.status().sqlstate() == sqlstate::kProtocolViolation);
}

TEST_CASE("ScramServer refuses channel binding, which it does not offer", "[auth][scram]") {
  ScramServer server(quickSecret("pw"));
  auto result = server.handleClientFirst("p=tls-server-end-point,,n=,r=abcdef");
  REQUIRE_FALSE(result.isOk());
  CHECK(result.status().sqlstate() == sqlstate::kProtocolViolation);
}

TEST_CASE("ScramServer rejects a malformed client-first-message with 08P01", "[auth][scram]") {
  const std::string bad = GENERATE(as<std::string>(), "", "n", "n,", "n,,", "n,,n=", "n,,n=,r=",
                                   "n,,r=abc", "n,,n=,r=abc,", "n,,n=,r=abc,x", "x,,n=,r=abc",
                                   "n,a=bob,n=,r=abc", "n,,m=ext,n=,r=abc", "n,,n=,r=ab\x01",
                                   "n,,n=,r=a b", "n,, n=,r=abc", "y,n=,r=abc");
  INFO(bad);
  ScramServer server(quickSecret("pw"));
  auto result = server.handleClientFirst(bad);
  REQUIRE_FALSE(result.isOk());
  CHECK(result.status().sqlstate() == sqlstate::kProtocolViolation);
}

TEST_CASE("ScramServer accepts and ignores client-first extensions other than m=", "[auth][scram]") {
  ScramServer server(rfcSecret());
  server.setServerNonceForTesting(kRfcServerNonce);
  REQUIRE(server.handleClientFirst("n,,n=,r=abc,x=ext").isOk());
}

TEST_CASE("ScramServer rejects every cut of a valid client-final-message", "[auth][scram]") {
  const std::string full = kRfcClientFinal;
  const size_t cut = GENERATE_COPY(range<size_t>(0, std::string(kRfcClientFinal).size()));
  ScramServer server(rfcSecret());
  server.setServerNonceForTesting(kRfcServerNonce);
  REQUIRE(server.handleClientFirst(kRfcClientFirst).isOk());
  auto result = server.handleClientFinal(full.substr(0, cut));
  CHECK_FALSE(result.isOk());
}

TEST_CASE("ScramServer rejects a malformed or tampered client-final-message with 08P01",
          "[auth][scram]") {
  const std::string nonce = std::string(kRfcClientNonce) + kRfcServerNonce;
  const std::string proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  const std::string bad = GENERATE_COPY(
      "c=biws,r=" + nonce + "X," + proof,                          // nonce extended
      "c=biws,r=" + nonce.substr(0, nonce.size() - 1) + "," + proof,  // nonce cut
      "c=biws,r=" + withCharFlipped(nonce, 25) + "," + proof,         // server part changed
      "c=eSws,r=" + nonce + "," + proof,                           // "y,," but we saw "n,,"
      "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r=" + nonce + "," + proof,
      "c=biws,r=" + nonce,                                         // no proof
      "c=biws,r=" + nonce + "," + proof + ",x=1",                  // proof not last
      "c=biws,r=" + nonce + "," + proof + ",",
      "c=biws,r=" + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndQ==",  // 31 bytes
      "c=biws,r=" + nonce + ",p=!HzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
      "r=" + nonce + ",c=biws," + proof,                           // attributes out of order
      "c=biws," + proof, std::string("garbage"));
  INFO(bad);
  ScramServer server(rfcSecret());
  server.setServerNonceForTesting(kRfcServerNonce);
  REQUIRE(server.handleClientFirst(kRfcClientFirst).isOk());
  auto result = server.handleClientFinal(bad);
  REQUIRE_FALSE(result.isOk());
  CHECK(result.status().sqlstate() == sqlstate::kProtocolViolation);
}

TEST_CASE("ScramServer ignores extensions between the nonce and the proof", "[auth][scram]") {
  // The extension is part of client-final-message-without-proof, so the proof changes; what this
  // pins down is that it is parsed past and the proof is checked (and fails) rather than 08P01.
  ScramServer server(rfcSecret());
  server.setServerNonceForTesting(kRfcServerNonce);
  REQUIRE(server.handleClientFirst(kRfcClientFirst).isOk());
  std::string clientFinal = kRfcClientFinal;
  clientFinal.insert(clientFinal.find(",p="), ",x=ext");
  auto result = server.handleClientFinal(clientFinal);
  REQUIRE_FALSE(result.isOk());
  CHECK(result.status().sqlstate() == sqlstate::kInvalidPassword);
}

TEST_CASE("ScramServer takes each message once and in order", "[auth][scram]") {
  ScramServer server(rfcSecret());
  server.setServerNonceForTesting(kRfcServerNonce);
  auto early = server.handleClientFinal(kRfcClientFinal);
  REQUIRE_FALSE(early.isOk());
  CHECK(early.status().sqlstate() == sqlstate::kProtocolViolation);

  REQUIRE(server.handleClientFirst(kRfcClientFirst).isOk());
  CHECK_FALSE(server.handleClientFirst(kRfcClientFirst).isOk());
  REQUIRE(server.handleClientFinal(kRfcClientFinal).isOk());
  auto again = server.handleClientFinal(kRfcClientFinal);
  REQUIRE_FALSE(again.isOk());
  CHECK(again.status().sqlstate() == sqlstate::kProtocolViolation);
}

TEST_CASE("ScramClient rejects a malformed or foreign server-first-message", "[auth][scram]") {
  const std::string ours = kRfcClientNonce;
  const std::string bad = GENERATE_COPY(
      std::string(""), std::string("garbage"),
      "r=" + ours + ",s=" + kRfcSalt + ",i=4096",                 // server added nothing
      "r=X" + ours + "abc,s=" + std::string(kRfcSalt) + ",i=4096",  // does not start with ours
      "r=" + withCharFlipped(ours, 3) + "abc,s=" + kRfcSalt + ",i=4096",
      "r=" + ours + "abc,s=,i=4096", "r=" + ours + "abc,s=W22Z!,i=4096",
      "r=" + ours + "abc,s=" + kRfcSalt + ",i=0", "r=" + ours + "abc,s=" + kRfcSalt + ",i=-5",
      "r=" + ours + "abc,s=" + kRfcSalt + ",i=", "r=" + ours + "abc,s=" + kRfcSalt + ",i=4k",
      "r=" + ours + "abc,s=" + kRfcSalt, "r=" + ours + "abc,i=4096,s=" + kRfcSalt,
      "r=" + ours + "abc,s=" + kRfcSalt + ",i=4096,", "m=x,r=" + ours + "abc,s=" + kRfcSalt +
      ",i=4096", "r=" + ours + "a,bc,s=" + kRfcSalt + ",i=4096");
  INFO(bad);
  ScramClient client = ScramClient::withPassword("pencil");
  client.setClientNonceForTesting(kRfcClientNonce);
  (void)client.clientFirst();
  auto result = client.handleServerFirst(bad);
  REQUIRE_FALSE(result.isOk());
  CHECK(result.status().sqlstate() == sqlstate::kProtocolViolation);
}

TEST_CASE("ScramClient rejects a malformed server-final-message and reports e=", "[auth][scram]") {
  ScramClient client = ScramClient::withPassword("pencil");
  client.setClientNonceForTesting(kRfcClientNonce);
  (void)client.clientFirst();
  REQUIRE(client.handleServerFirst(kRfcServerFirst).isOk());

  SECTION("server error") {
    const Status status = client.handleServerFinal("e=invalid-proof");
    REQUIRE_FALSE(status.isOk());
    CHECK(status.sqlstate() == sqlstate::kInvalidPassword);
    CHECK(status.message().find("invalid-proof") != std::string::npos);
  }
  SECTION("malformed") {
    const std::string bad = GENERATE(as<std::string>(), "", "v=", "v=!!!!", "x=abc", "v",
                                     "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=,",
                                     "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg",
                                     "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBt");  // 30 bytes
    INFO(bad);
    const Status status = client.handleServerFinal(bad);
    REQUIRE_FALSE(status.isOk());
    CHECK(status.sqlstate() == sqlstate::kProtocolViolation);
  }
}

TEST_CASE("ScramClient takes the server's messages only in order", "[auth][scram]") {
  ScramClient client = ScramClient::withPassword("pencil");
  client.setClientNonceForTesting(kRfcClientNonce);
  CHECK_FALSE(client.handleServerFirst(kRfcServerFirst).isOk());  // before clientFirst()
  CHECK_FALSE(client.handleServerFinal("v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=").isOk());
  (void)client.clientFirst();
  REQUIRE(client.handleServerFirst(kRfcServerFirst).isOk());
  CHECK_FALSE(client.handleServerFirst(kRfcServerFirst).isOk());
}
