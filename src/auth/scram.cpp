// SCRAM-SHA-256 as PostgreSQL speaks it (RFC 5802/7677, no channel binding): the stored secret,
// the server side that checks a client's proof, and the client side that logs in to a server.
#include "pgmux/auth/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <optional>
#include <utility>

namespace pgmux::auth {

namespace {

constexpr std::string_view kScramPrefix = "SCRAM-SHA-256$";
constexpr size_t kRawNonceLength = 18;  // as PostgreSQL's SCRAM_RAW_NONCE_LEN
constexpr size_t kSaltLength = 16;
constexpr int kMockIterations = 4096;
constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// ---- primitives ----------------------------------------------------------------------------

ScramKey hmacSha256(const ScramKey& key, std::string_view message) {
  ScramKey out{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), out.data(), &length);
  return out;
}

ScramKey sha256(const ScramKey& data) {
  ScramKey out{};
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &length, EVP_sha256(), nullptr);
  return out;
}

std::string_view asView(const ScramKey& key) {
  return {reinterpret_cast<const char*>(key.data()), key.size()};
}

std::optional<ScramKey> decodeKey(std::string_view text) {
  auto raw = base64Decode(text);
  if (!raw || raw->size() != ScramKey().size()) {
    return std::nullopt;
  }
  ScramKey key{};
  for (size_t i = 0; i < key.size(); ++i) {
    key[i] = static_cast<uint8_t>((*raw)[i]);
  }
  return key;
}

std::string randomBytes(size_t n) {
  std::string out(n, '\0');
  // RAND_bytes fails only when the system has no entropy source; abort rather than hand out a
  // predictable nonce or salt.
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    std::abort();
  }
  return out;
}

std::string randomNonce() { return base64Encode(randomBytes(kRawNonceLength)); }

// RFC 5802: a nonce is printable ASCII other than ','.
bool isValidNonce(std::string_view nonce) {
  if (nonce.empty()) {
    return false;
  }
  for (char c : nonce) {
    if (c < 0x21 || c > 0x7e || c == ',') {
      return false;
    }
  }
  return true;
}

std::optional<int> parsePositiveInt(std::string_view text) {
  int value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || value < 1) {
    return std::nullopt;
  }
  return value;
}

// Reads "k=value,k=value,..." one attribute at a time, as the RFC's grammar does. Every attribute
// but the first is preceded by ','; a trailing ',' is left over and so is never at the end.
class AttributeReader {
 public:
  explicit AttributeReader(std::string_view text) : rest_(text) {}
  bool atEnd() const { return rest_.empty(); }
  // The next attribute's letter, or '\0' when there is none.
  char peekName() const {
    const std::string_view next = nextAttribute();
    return next.empty() ? '\0' : next[0];
  }
  // Reads "<name>=<value>"; nullopt (and nothing consumed) when the next attribute is another.
  std::optional<std::string_view> read(char name) {
    std::string_view next = nextAttribute();
    if (next.size() < 2 || next[0] != name || next[1] != '=') {
      return std::nullopt;
    }
    const size_t comma = next.find(',');
    const std::string_view value = next.substr(2, comma == std::string_view::npos ? next.npos : comma - 2);
    rest_ = comma == std::string_view::npos ? std::string_view() : next.substr(comma);
    first_ = false;
    return value;
  }
  // Skips one attribute of any name (an extension we ignore); false when it is malformed.
  bool skip() {
    const char name = peekName();
    return name != '\0' && read(name).has_value();
  }
  // What is left, starting with the ',' before the next attribute.
  std::string_view rest() const { return rest_; }

 private:
  std::string_view nextAttribute() const {
    if (first_) {
      return rest_;
    }
    return rest_.starts_with(',') ? rest_.substr(1) : std::string_view();
  }

  std::string_view rest_;
  bool first_ = true;
};

Status malformed(std::string_view what) {
  return Status::error(sqlstate::kProtocolViolation,
                       "malformed SCRAM message: " + std::string(what));
}

Status passwordFailed() {
  return Status::error(sqlstate::kInvalidPassword, "password authentication failed");
}

std::string clientFinalWithoutProof(std::string_view gs2Header, std::string_view nonce) {
  return "c=" + base64Encode(gs2Header) + ",r=" + std::string(nonce);
}

}  // namespace

// ---- base64 (strict: standard alphabet, padded, no whitespace) -----------------------------

std::string base64Encode(std::string_view raw) {
  std::string out;
  out.reserve((raw.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= raw.size(); i += 3) {
    const uint32_t v = (uint32_t{static_cast<uint8_t>(raw[i])} << 16) |
                       (uint32_t{static_cast<uint8_t>(raw[i + 1])} << 8) |
                       uint32_t{static_cast<uint8_t>(raw[i + 2])};
    out.push_back(kBase64Alphabet[(v >> 18) & 63]);
    out.push_back(kBase64Alphabet[(v >> 12) & 63]);
    out.push_back(kBase64Alphabet[(v >> 6) & 63]);
    out.push_back(kBase64Alphabet[v & 63]);
  }
  const size_t left = raw.size() - i;
  if (left > 0) {
    uint32_t v = uint32_t{static_cast<uint8_t>(raw[i])} << 16;
    if (left == 2) {
      v |= uint32_t{static_cast<uint8_t>(raw[i + 1])} << 8;
    }
    out.push_back(kBase64Alphabet[(v >> 18) & 63]);
    out.push_back(kBase64Alphabet[(v >> 12) & 63]);
    out.push_back(left == 2 ? kBase64Alphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  size_t padding = 0;
  if (!text.empty() && text.back() == '=') {
    padding = (text.size() >= 2 && text[text.size() - 2] == '=') ? 2 : 1;
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  uint32_t v = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    uint32_t digit = 0;
    if (i >= text.size() - padding) {
      digit = 0;  // a '=' in the padding position
    } else {
      const size_t pos = kBase64Alphabet.find(text[i]);
      if (pos == std::string_view::npos) {
        return std::nullopt;
      }
      digit = static_cast<uint32_t>(pos);
    }
    v = (v << 6) | digit;
    if (i % 4 == 3) {
      out.push_back(static_cast<char>((v >> 16) & 0xff));
      out.push_back(static_cast<char>((v >> 8) & 0xff));
      out.push_back(static_cast<char>(v & 0xff));
      v = 0;
    }
  }
  out.resize(out.size() - padding);
  return out;
}

// ---- the stored secret ---------------------------------------------------------------------

std::optional<ScramSecret> parseScramSecret(std::string_view text) {
  if (!text.starts_with(kScramPrefix)) {
    return std::nullopt;
  }
  text.remove_prefix(kScramPrefix.size());
  const size_t dollar = text.find('$');
  if (dollar == std::string_view::npos) {
    return std::nullopt;
  }
  const std::string_view iterSalt = text.substr(0, dollar);
  const std::string_view keys = text.substr(dollar + 1);
  const size_t colon1 = iterSalt.find(':');
  const size_t colon2 = keys.find(':');
  if (colon1 == std::string_view::npos || colon2 == std::string_view::npos) {
    return std::nullopt;
  }
  auto iterations = parsePositiveInt(iterSalt.substr(0, colon1));
  auto salt = base64Decode(iterSalt.substr(colon1 + 1));
  auto storedKey = decodeKey(keys.substr(0, colon2));
  auto serverKey = decodeKey(keys.substr(colon2 + 1));
  if (!iterations || !salt || salt->empty() || !storedKey || !serverKey) {
    return std::nullopt;
  }
  return ScramSecret{*iterations, std::move(*salt), *storedKey, *serverKey};
}

std::string formatScramSecret(const ScramSecret& secret) {
  return std::string(kScramPrefix) + std::to_string(secret.iterations) + ":" +
         base64Encode(secret.salt) + "$" + base64Encode(asView(secret.storedKey)) + ":" +
         base64Encode(asView(secret.serverKey));
}

namespace {

ScramKey saltedPassword(std::string_view password, std::string_view salt, int iterations) {
  // PostgreSQL runs the password through SASLprep first; for ASCII passwords that is the identity.
  ScramKey out{};
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), iterations, EVP_sha256(),
                    static_cast<int>(out.size()), out.data());
  return out;
}

}  // namespace

ScramSecret scramSecretFromPassword(std::string_view password, std::string_view salt,
                                    int iterations) {
  const ScramKey salted = saltedPassword(password, salt, iterations);
  ScramSecret secret;
  secret.iterations = iterations;
  secret.salt = std::string(salt);
  secret.storedKey = sha256(hmacSha256(salted, "Client Key"));
  secret.serverKey = hmacSha256(salted, "Server Key");
  return secret;
}

std::string randomScramSalt() { return randomBytes(kSaltLength); }

ScramSecret scramMockSecret(std::string_view user) {
  // One random key per process: the mock salt is stable per user name but unpredictable.
  static const ScramKey processKey = [] {
    ScramKey key{};
    const std::string raw = randomBytes(key.size());
    for (size_t i = 0; i < key.size(); ++i) {
      key[i] = static_cast<uint8_t>(raw[i]);
    }
    return key;
  }();
  const ScramKey mac = hmacSha256(processKey, user);
  ScramSecret secret;
  secret.iterations = kMockIterations;
  secret.salt = std::string(asView(mac).substr(0, kSaltLength));
  // Random keys: no proof can match them.
  const std::string keys = randomBytes(2 * secret.storedKey.size());
  for (size_t i = 0; i < secret.storedKey.size(); ++i) {
    secret.storedKey[i] = static_cast<uint8_t>(keys[i]);
    secret.serverKey[i] = static_cast<uint8_t>(keys[secret.storedKey.size() + i]);
  }
  return secret;
}

// ---- server side ---------------------------------------------------------------------------

Result<std::string> ScramServer::handleClientFirst(std::string_view clientFirst) {
  if (!nonce_.empty()) {
    return malformed("client-first-message sent twice");
  }
  // gs2-header: gs2-cbind-flag "," [authzid] ","
  std::string_view rest = clientFirst;
  if (rest.starts_with("p=")) {
    return Status::error(sqlstate::kProtocolViolation,
                         "SCRAM channel binding was requested, but the server does not offer it");
  }
  if (!rest.starts_with("n,") && !rest.starts_with("y,")) {
    return malformed("unexpected channel-binding flag");
  }
  rest.remove_prefix(2);
  if (rest.starts_with("a=")) {
    return malformed("authorization identity is not supported");
  }
  if (!rest.starts_with(",")) {
    return malformed("expected ',' after the channel-binding flag");
  }
  rest.remove_prefix(1);
  const std::string_view gs2Header = clientFirst.substr(0, 3);
  const std::string_view bare = rest;

  AttributeReader reader(bare);
  if (reader.peekName() == 'm') {
    return malformed("mandatory extensions are not supported");
  }
  // The user name is ignored: the startup packet names the user, and libpq sends it empty.
  if (!reader.read('n')) {
    return malformed("expected the user name attribute n=");
  }
  auto clientNonce = reader.read('r');
  if (!clientNonce || !isValidNonce(*clientNonce)) {
    return malformed("expected a printable client nonce r=");
  }
  while (!reader.atEnd()) {
    if (!reader.skip()) {
      return malformed("garbage after the client nonce");
    }
  }

  gs2Header_ = std::string(gs2Header);
  clientFirstBare_ = std::string(bare);
  nonce_ = std::string(*clientNonce) +
           (fixedServerNonce_.empty() ? randomNonce() : fixedServerNonce_);
  serverFirst_ = "r=" + nonce_ + ",s=" + base64Encode(secret_.salt) +
                 ",i=" + std::to_string(secret_.iterations);
  return serverFirst_;
}

Result<std::string> ScramServer::handleClientFinal(std::string_view clientFinal) {
  if (serverFirst_.empty()) {
    return malformed("client-final-message before client-first-message");
  }
  // One attempt per exchange: whatever happens below, a second client-final is refused.
  const std::string serverFirst = std::exchange(serverFirst_, std::string());

  AttributeReader reader(clientFinal);
  auto channelBinding = reader.read('c');
  if (!channelBinding) {
    return malformed("expected the channel-binding attribute c=");
  }
  auto binding = base64Decode(*channelBinding);
  if (!binding || *binding != gs2Header_) {
    return malformed("channel-binding attribute does not match the gs2 header");
  }
  auto nonce = reader.read('r');
  if (!nonce || *nonce != nonce_) {
    return malformed("nonce does not match");
  }
  while (reader.peekName() != 'p') {
    if (reader.atEnd() || !reader.skip()) {
      return malformed("expected the proof attribute p=");
    }
  }
  // client-final-message-without-proof: everything before ",p=".
  const std::string_view withoutProof =
      clientFinal.substr(0, clientFinal.size() - reader.rest().size());
  auto proofText = reader.read('p');
  if (!proofText || !reader.atEnd()) {
    return malformed("the proof attribute p= must come last");
  }
  auto proof = decodeKey(*proofText);
  if (!proof) {
    return malformed("proof is not 32 bytes of base64");
  }

  std::string authMessage = clientFirstBare_;
  authMessage.append(",").append(serverFirst).append(",").append(withoutProof);

  const ScramKey clientSignature = hmacSha256(secret_.storedKey, authMessage);
  ScramKey clientKey{};
  for (size_t i = 0; i < clientKey.size(); ++i) {
    clientKey[i] = static_cast<uint8_t>((*proof)[i] ^ clientSignature[i]);
  }
  const ScramKey storedKey = sha256(clientKey);
  if (CRYPTO_memcmp(storedKey.data(), secret_.storedKey.data(), storedKey.size()) != 0) {
    return passwordFailed();
  }
  clientKey_ = clientKey;
  return "v=" + base64Encode(asView(hmacSha256(secret_.serverKey, authMessage)));
}

// ---- client side ---------------------------------------------------------------------------

ScramClient ScramClient::withPassword(std::string password) {
  ScramClient client;
  client.password_ = std::move(password);
  return client;
}

ScramClient ScramClient::withKeys(const ScramKey& clientKey, const ScramKey& serverKey) {
  ScramClient client;
  client.haveKeys_ = true;
  client.clientKey_ = clientKey;
  client.serverKey_ = serverKey;
  return client;
}

std::string ScramClient::clientFirst() {
  if (clientNonce_.empty()) {
    clientNonce_ = randomNonce();
  }
  // libpq sends an empty user name: the server takes it from the startup packet.
  clientFirstBare_ = "n=,r=" + clientNonce_;
  return "n,," + clientFirstBare_;
}

Result<std::string> ScramClient::handleServerFirst(std::string_view serverFirst) {
  if (clientFirstBare_.empty() || !expectedServerSignature_.empty()) {
    return malformed("unexpected server-first-message");
  }
  AttributeReader reader(serverFirst);
  if (reader.peekName() == 'm') {
    return malformed("mandatory extensions are not supported");
  }
  auto nonce = reader.read('r');
  if (!nonce || !isValidNonce(*nonce) || nonce->size() <= clientNonce_.size() ||
      !nonce->starts_with(clientNonce_)) {
    return malformed("server nonce does not extend the client nonce");
  }
  auto saltText = reader.read('s');
  auto salt = saltText ? base64Decode(*saltText) : std::nullopt;
  if (!salt || salt->empty()) {
    return malformed("expected a base64 salt s=");
  }
  auto iterationsText = reader.read('i');
  auto iterations = iterationsText ? parsePositiveInt(*iterationsText) : std::nullopt;
  if (!iterations) {
    return malformed("expected an iteration count i= of at least 1");
  }
  while (!reader.atEnd()) {
    if (!reader.skip()) {
      return malformed("garbage after the iteration count");
    }
  }

  if (!haveKeys_) {
    const ScramKey salted = saltedPassword(password_, *salt, *iterations);
    clientKey_ = hmacSha256(salted, "Client Key");
    serverKey_ = hmacSha256(salted, "Server Key");
  }
  const std::string withoutProof = clientFinalWithoutProof("n,,", *nonce);
  std::string authMessage = clientFirstBare_;
  authMessage.append(",").append(serverFirst).append(",").append(withoutProof);

  const ScramKey clientSignature = hmacSha256(sha256(clientKey_), authMessage);
  std::string proof(clientKey_.size(), '\0');
  for (size_t i = 0; i < clientKey_.size(); ++i) {
    proof[i] = static_cast<char>(clientKey_[i] ^ clientSignature[i]);
  }
  expectedServerSignature_ = std::string(asView(hmacSha256(serverKey_, authMessage)));
  return withoutProof + ",p=" + base64Encode(proof);
}

Status ScramClient::handleServerFinal(std::string_view serverFinal) {
  if (expectedServerSignature_.empty()) {
    return malformed("server-final-message before server-first-message");
  }
  AttributeReader reader(serverFinal);
  if (auto error = reader.read('e')) {
    return Status::error(sqlstate::kInvalidPassword,
                         "SCRAM authentication failed: server error " + std::string(*error));
  }
  auto verifierText = reader.read('v');
  auto verifier = verifierText ? base64Decode(*verifierText) : std::nullopt;
  if (!verifier || verifier->size() != expectedServerSignature_.size()) {
    return malformed("expected a 32-byte server signature v=");
  }
  while (!reader.atEnd()) {
    if (!reader.skip()) {
      return malformed("garbage after the server signature");
    }
  }
  if (CRYPTO_memcmp(verifier->data(), expectedServerSignature_.data(), verifier->size()) != 0) {
    return Status::error(sqlstate::kInvalidPassword,
                         "SCRAM authentication failed: invalid server signature");
  }
  return Status::ok();
}

}  // namespace pgmux::auth
