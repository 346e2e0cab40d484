// The auth file (PgBouncer's userlist.txt): one `"user" "secret"` pair per line.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "pgmux/auth/scram.h"
#include "pgmux/util/status.h"

namespace pgmux::auth {

enum class SecretKind : uint8_t { Plain, Md5, Scram };

struct UserSecret {
  SecretKind kind = SecretKind::Plain;
  std::string text;                  // as written in the file
  std::optional<ScramSecret> scram;  // parsed, when kind == Scram
};

// Plain unless the text is a well-formed md5 or SCRAM-SHA-256 secret.
UserSecret classifySecret(std::string text);

using AuthFile = std::unordered_map<std::string, UserSecret>;

// Parses the file's text: two double-quoted fields per line (`""` is a quote inside a field), the
// rest of the line ignored; blank lines and lines starting with ';' or '#' skipped. A malformed
// line is an error naming `origin`:line.
Result<AuthFile> parseAuthFile(std::string_view text, std::string_view origin);
Result<AuthFile> loadAuthFile(const std::string& path);

}  // namespace pgmux::auth
