// The line source inih reads the config from: one file or text, with %include files spliced in,
// knowing the file and line of every line it hands out so that messages can name them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pgmux::config {

class LineReader {
 public:
  static constexpr size_t kMaxIncludeDepth = 10;

  // On failure sets `error` to "cannot read config file <path>: <reason>".
  bool openFile(const std::string& path, std::string& error);
  // `origin` names the text in messages; %include paths are relative to its directory.
  void openText(std::string_view text, std::string origin);
  // Where unknown-section warnings go ("file:line: ..." each); may stay unset.
  void setWarnings(std::vector<std::string>* warnings) { warnings_ = warnings; }

  // inih's fgets-style reader. Comments, blank lines and %include never reach inih; a key line
  // that inih would cut (longer than its line buffer, a ';' it would take for a comment, a
  // quoted or ':' name) is parsed here and reaches the handler through takeStashed().
  static char* read(char* str, int num, void* self);

  // True when the line inih just gave the handler was stashed; then `key` and `value` hold it.
  bool takeStashed(std::string& key, std::string& value);

  // "file:line" of the line last handed to inih.
  std::string where() const { return file_ + ":" + std::to_string(line_); }
  int line() const { return line_; }

  // Records the first error; the next read() ends the parse.
  void fail(std::string message);
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  struct Source {
    std::string path;
    std::string text;
    size_t pos = 0;
    int line = 0;
  };

  char* next(char* str, size_t size);
  // Handles one line; returns false when it produced nothing for inih (comment, include, error).
  bool take(std::string_view line, char* str, size_t size);
  bool include(std::string_view argument);
  bool emit(std::string_view text, char* str, size_t size);
  void failHere(const std::string& message) { fail(where() + ": " + message); }

  std::vector<Source> stack_;
  std::vector<std::string>* warnings_ = nullptr;
  std::string file_;
  int line_ = 0;
  bool stashed_ = false;
  std::string stashedKey_;
  std::string stashedValue_;
  std::string error_;
};

}  // namespace pgmux::config
