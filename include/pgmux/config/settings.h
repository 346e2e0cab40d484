// The one table of main-section settings: name, type, default, reloadable, help, and how to
// read and print each against a Config. It drives parsing, SHOW CONFIG, SET and the example file.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "pgmux/config/config.h"

namespace pgmux::config {

enum class SettingType : uint8_t { String, Int, Bool, Seconds, PoolMode, AuthType, List, Mode };

struct Setting {
  const char* name;
  SettingType type;
  const char* defaultValue;  // as written in a file
  bool reloadable;           // false: a restart is needed
  const char* help;          // one line
  // Parses `value` into `cfg`; on failure returns false and sets `error` (without file/line).
  bool (*apply)(Config& cfg, std::string_view value, std::string& error);
  // The current value as SHOW CONFIG prints it.
  std::string (*show)(const Config& cfg);
};

std::span<const Setting> settings();
const Setting* findSetting(std::string_view name);  // case-insensitive; nullptr when unknown

}  // namespace pgmux::config
