// PostgreSQL's md5 password scheme, and the constant-time comparison every secret check uses.
#include "pgmux/auth/md5.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstddef>
#include <memory>

namespace pgmux::auth {

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr std::string_view kMd5Prefix = "md5";
constexpr size_t kMd5HexLength = 32;

bool isHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

char toLowerHex(char c) {
  return (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace

std::string md5Hex(std::string_view data) {
  // With EVP_md5() every digest fetches the algorithm from the provider again, and EVP_Digest makes
  // a new context: 3,200 instructions a digest, three digests an md5 login. The algorithm fetched
  // once and one context per thread take 1,300.
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "MD5", nullptr);
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (md == nullptr || ctx == nullptr || EVP_DigestInit_ex2(ctx.get(), md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &length) != 1) {
    return {};
  }
  std::string hex(static_cast<size_t>(length) * 2, '\0');
  for (unsigned int i = 0; i < length; ++i) {
    hex[2 * i] = kHexDigits[digest[i] >> 4];
    hex[2 * i + 1] = kHexDigits[digest[i] & 0x0f];
  }
  return hex;
}

std::string md5Secret(std::string_view user, std::string_view password) {
  std::string input(password);
  input.append(user);
  return std::string(kMd5Prefix) + md5Hex(input);
}

std::string md5SaltedResponse(std::string_view secret, const uint8_t salt[4]) {
  // PostgreSQL always stores lower-case hex and hashes that text; an auth file written by hand
  // may use upper case, so fold it to get the same response the server expects.
  std::string input;
  input.reserve(kMd5HexLength + 4);
  const std::string_view hex = secret.size() > kMd5Prefix.size() ? secret.substr(kMd5Prefix.size())
                                                                  : std::string_view();
  for (char c : hex) {
    input.push_back(toLowerHex(c));
  }
  input.append(reinterpret_cast<const char*>(salt), 4);
  return std::string(kMd5Prefix) + md5Hex(input);
}

bool isMd5Secret(std::string_view text) {
  if (text.size() != kMd5Prefix.size() + kMd5HexLength || !text.starts_with(kMd5Prefix)) {
    return false;
  }
  for (char c : text.substr(kMd5Prefix.size())) {
    if (!isHexDigit(c)) {
      return false;
    }
  }
  return true;
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace pgmux::auth
