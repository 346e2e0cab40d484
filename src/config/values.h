// Value parsers and printers shared by the settings table and the [databases]/[users] lines, so
// that a port or a timeout means the same thing (and fails the same way) wherever it is written.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pgmux/config/config.h"

namespace pgmux::config::detail {

std::string_view trim(std::string_view s);
bool equalsIgnoreCase(std::string_view a, std::string_view b);
std::string toLower(std::string_view s);

// Each parser returns false on a bad value and then sets `expected` to what would have been
// accepted, e.g. "an integer 1-65535", for the caller to put into its message.
bool parseInteger(std::string_view text, int64_t min, int64_t max, int64_t& out,
                  std::string& expected);
bool parseBool(std::string_view text, bool& out, std::string& expected);
bool parseSeconds(std::string_view text, double& out, std::string& expected);
bool parsePoolMode(std::string_view text, PoolMode& out, std::string& expected);
bool parseAuthType(std::string_view text, AuthType& out, std::string& expected);
// Comma separated, each item trimmed, empty items dropped.
std::vector<std::string> parseList(std::string_view text);

// "invalid value for <key>: '<value>' (expected <expected>)"
std::string invalidValue(std::string_view key, std::string_view value, std::string_view expected);

// Whole seconds print without a fraction ("60"), others with the shortest exact form ("0.5").
std::string formatSeconds(double seconds);
std::string formatList(const std::vector<std::string>& items);

}  // namespace pgmux::config::detail
