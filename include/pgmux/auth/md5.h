// PostgreSQL's md5 password scheme.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pgmux::auth {

// Lower-case hex MD5 of `data`.
std::string md5Hex(std::string_view data);
// The stored form: "md5" + md5hex(password + user).
std::string md5Secret(std::string_view user, std::string_view password);
// The wire response to an MD5 challenge: "md5" + md5hex(md5hex(password + user) + salt), computed
// from the stored form `secret` ("md5" + 32 hex digits).
std::string md5SaltedResponse(std::string_view secret, const uint8_t salt[4]);
// True for "md5" followed by 32 lower- or upper-case hex digits.
bool isMd5Secret(std::string_view text);

// Compares in time that depends only on the lengths.
bool constantTimeEquals(std::string_view a, std::string_view b);

}  // namespace pgmux::auth
