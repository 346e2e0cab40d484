// The line source inih reads the config from: files and %include, with file:line for every line.
#include "line_reader.h"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "values.h"

namespace pgmux::config {

namespace {

bool readWholeFile(const std::string& path, std::string& text, std::string& error) {
  const std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  int err = 0;
  if (f == nullptr) {
    err = errno;
  } else {
    std::array<char, 8192> buf{};
    size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) text.append(buf.data(), n);
    if (std::ferror(f.get()) != 0) err = errno != 0 ? errno : EIO;
  }
  if (err == 0) return true;
  error = "cannot read config file " + path + ": " + std::strerror(err);
  return false;
}

bool isKnownSection(std::string_view name) {
  for (const char* known : {"databases", "users", "pgbouncer", "pgmux"}) {
    if (detail::equalsIgnoreCase(name, known)) return true;
  }
  return false;
}

std::string directoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

bool LineReader::openFile(const std::string& path, std::string& error) {
  Source src;
  src.path = path;
  if (!readWholeFile(path, src.text, error)) return false;
  stack_.push_back(std::move(src));
  return true;
}

void LineReader::openText(std::string_view text, std::string origin) {
  Source src;
  src.path = std::move(origin);
  src.text = std::string(text);
  stack_.push_back(std::move(src));
}

void LineReader::fail(std::string message) {
  if (error_.empty()) error_ = std::move(message);
}

bool LineReader::takeStashed(std::string& key, std::string& value) {
  if (!stashed_) return false;
  stashed_ = false;
  key = std::move(stashedKey_);
  value = std::move(stashedValue_);
  return true;
}

char* LineReader::read(char* str, int num, void* self) {
  if (num < 2) return nullptr;
  return static_cast<LineReader*>(self)->next(str, static_cast<size_t>(num));
}

char* LineReader::next(char* str, size_t size) {
  stashed_ = false;
  while (!failed() && !stack_.empty()) {
    Source& src = stack_.back();
    if (src.pos >= src.text.size()) {
      stack_.pop_back();
      continue;
    }
    const size_t eol = src.text.find('\n', src.pos);
    const size_t end = eol == std::string::npos ? src.text.size() : eol;
    std::string_view line(src.text.data() + src.pos, end - src.pos);
    src.pos = eol == std::string::npos ? src.text.size() : eol + 1;
    ++src.line;
    file_ = src.path;
    line_ = src.line;
    // A UTF-8 byte order mark opens some files written on Windows, included ones too.
    if (src.line == 1 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
    if (take(line, str, size)) return str;
  }
  return nullptr;
}

bool LineReader::take(std::string_view raw, char* str, size_t size) {
  // Leading blanks are dropped: PgBouncer allows indented keys, which inih would otherwise take
  // for the continuation of the previous value.
  const std::string_view line = detail::trim(raw);
  if (line.empty() || line.front() == ';' || line.front() == '#') return false;

  if (line.substr(0, 8) == "%include" && (line.size() == 8 || line[8] == ' ' || line[8] == '\t')) {
    include(detail::trim(line.substr(8)));
    return false;
  }

  if (line.front() == '[') {
    const size_t close = line.find(']');
    if (close == std::string_view::npos) {
      failHere("syntax error: section header without ']'");
      return false;
    }
    const std::string_view name = detail::trim(line.substr(1, close - 1));
    if (!isKnownSection(name) && warnings_ != nullptr) {
      warnings_->push_back(where() + ": unknown section [" + std::string(name) +
                           "], its keys are ignored");
    }
    return emit("[" + std::string(name) + "]", str, size);
  }

  // PgBouncer's names: a bare word, or double-quoted with "" for a quote (then '=' may be in it).
  size_t nameEnd = 0;
  if (line.front() == '"') {
    nameEnd = 1;
    while (nameEnd < line.size()) {
      if (line[nameEnd] == '"') {
        if (nameEnd + 1 < line.size() && line[nameEnd + 1] == '"') {
          nameEnd += 2;
          continue;
        }
        ++nameEnd;
        break;
      }
      ++nameEnd;
    }
  }
  const size_t eq = line.find('=', nameEnd);
  if (eq == std::string_view::npos) {
    failHere("syntax error: expected 'name = value', got '" + std::string(line) + "'");
    return false;
  }
  const std::string_view key = detail::trim(line.substr(0, eq));
  const std::string_view value = detail::trim(line.substr(eq + 1));
  if (key.empty()) {
    failHere("syntax error: missing name before '='");
    return false;
  }
  const bool fits = line.size() + 2 <= size;  // room for '\n' and '\0'
  const bool inihWouldCut = !fits || line.find(';') != std::string_view::npos ||
                            key.find(':') != std::string_view::npos || key.front() == '"';
  if (!inihWouldCut) return emit(line, str, size);
  stashed_ = true;
  stashedKey_ = std::string(key);
  stashedValue_ = std::string(value);
  return emit("-=-", str, size);
}

bool LineReader::include(std::string_view argument) {
  if (argument.empty()) {
    failHere("%include needs a file name");
    return false;
  }
  if (stack_.size() > kMaxIncludeDepth) {
    failHere("%include nested more than " + std::to_string(kMaxIncludeDepth) +
             " deep (does a file include itself?)");
    return false;
  }
  std::string path(argument);
  if (path.front() != '/') path = directoryOf(stack_.back().path) + "/" + path;
  Source src;
  src.path = path;
  std::string error;
  if (!readWholeFile(path, src.text, error)) {
    failHere(error);
    return false;
  }
  stack_.push_back(std::move(src));
  return true;
}

bool LineReader::emit(std::string_view text, char* str, size_t size) {
  if (text.size() + 2 > size) {
    failHere("line too long");
    return false;
  }
  std::memcpy(str, text.data(), text.size());
  str[text.size()] = '\n';
  str[text.size() + 1] = '\0';
  return true;
}

}  // namespace pgmux::config
