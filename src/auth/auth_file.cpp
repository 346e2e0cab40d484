// The auth file (PgBouncer's userlist.txt): parsing `"user" "secret"` lines and telling plain,
// md5 and SCRAM-SHA-256 secrets apart.
#include "pgmux/auth/auth_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "pgmux/auth/md5.h"

namespace pgmux::auth {

namespace {

bool isBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

void skipBlanks(std::string_view& rest) {
  while (!rest.empty() && isBlank(rest.front())) {
    rest.remove_prefix(1);
  }
}

// Reads one double-quoted field, `""` standing for a quote; nullopt when unterminated or absent.
std::optional<std::string> readQuoted(std::string_view& rest) {
  if (!rest.starts_with('"')) {
    return std::nullopt;
  }
  std::string field;
  for (size_t i = 1; i < rest.size(); ++i) {
    if (rest[i] != '"') {
      field.push_back(rest[i]);
    } else if (i + 1 < rest.size() && rest[i + 1] == '"') {
      field.push_back('"');
      ++i;
    } else {
      rest.remove_prefix(i + 1);
      return field;
    }
  }
  return std::nullopt;
}

Status lineError(std::string_view origin, size_t line, std::string_view what) {
  return Status::error(sqlstate::kConfigFileError,
                       std::string(origin) + ":" + std::to_string(line) + ": " + std::string(what));
}

}  // namespace

UserSecret classifySecret(std::string text) {
  UserSecret secret;
  if (isMd5Secret(text)) {
    secret.kind = SecretKind::Md5;
  } else if (auto scram = parseScramSecret(text)) {
    secret.kind = SecretKind::Scram;
    secret.scram = std::move(*scram);
  }
  secret.text = std::move(text);
  return secret;
}

Result<AuthFile> parseAuthFile(std::string_view text, std::string_view origin) {
  AuthFile file;
  size_t lineNumber = 0;
  while (!text.empty()) {
    ++lineNumber;
    const size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);

    skipBlanks(line);
    if (line.empty() || line.front() == ';' || line.front() == '#') {
      continue;
    }
    auto user = readQuoted(line);
    if (!user) {
      return lineError(origin, lineNumber, "expected a double-quoted user name");
    }
    if (user->empty()) {
      return lineError(origin, lineNumber, "empty user name");
    }
    skipBlanks(line);
    auto secret = readQuoted(line);
    if (!secret) {
      return lineError(origin, lineNumber, "expected a double-quoted secret after the user name");
    }
    // As in PgBouncer, a user listed twice takes the later line.
    file.insert_or_assign(std::move(*user), classifySecret(std::move(*secret)));
  }
  return file;
}

Result<AuthFile> loadAuthFile(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    return Status::error(sqlstate::kConfigFileError,
                         "could not open auth file " + path + ": " + std::strerror(errno));
  }
  std::string text;
  char buffer[8192];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, f.get())) > 0) {
    text.append(buffer, n);
  }
  if (std::ferror(f.get()) != 0) {
    return Status::error(sqlstate::kConfigFileError, "could not read auth file " + path);
  }
  return parseAuthFile(text, path);
}

}  // namespace pgmux::auth
