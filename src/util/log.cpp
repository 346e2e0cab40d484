// Log sink: timestamped lines to stdout or an append-mode file.
#include "pgmux/util/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <ctime>
#include <mutex>

namespace pgmux {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::Log)};
std::atomic<bool> g_quiet{false};
FILE* g_file = nullptr;  // nullptr: stdout
std::mutex g_fileMu;     // workers log while SIGHUP reopens the file

const char* levelName(LogLevel level) {
  switch (level) {
    case LogLevel::Error: return "ERROR";
    case LogLevel::Warning: return "WARNING";
    case LogLevel::Log: return "LOG";
    case LogLevel::Debug: return "DEBUG";
    case LogLevel::Noise: return "NOISE";
  }
  return "LOG";
}
}  // namespace

void setLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel logLevel() {
  if (g_quiet.load()) return LogLevel::Warning;
  return static_cast<LogLevel>(g_level.load());
}
void setLogQuiet(bool quiet) { g_quiet.store(quiet); }

bool setLogFile(const char* path) {
  std::lock_guard lock(g_fileMu);
  if (path == nullptr || *path == '\0') {
    if (g_file != nullptr) fclose(g_file);
    g_file = nullptr;
    return true;
  }
  FILE* f = fopen(path, "a");
  if (f == nullptr) return false;
  setvbuf(f, nullptr, _IOLBF, 0);
  if (g_file != nullptr) fclose(g_file);
  g_file = f;
  return true;
}

void logWrite(LogLevel level, const char* fmt, ...) {
  char line[2048];
  timeval tv{};
  gettimeofday(&tv, nullptr);
  tm t{};
  gmtime_r(&tv.tv_sec, &t);
  int n = snprintf(line, sizeof line, "%04d-%02d-%02d %02d:%02d:%02d.%03d UTC [%d] %s ", t.tm_year + 1900,
                   t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, static_cast<int>(tv.tv_usec / 1000),
                   static_cast<int>(getpid()), levelName(level));
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - static_cast<size_t>(n) - 1, fmt, ap);
  va_end(ap);
  size_t len = static_cast<size_t>(n) + (m < 0 ? 0 : static_cast<size_t>(m));
  if (len > sizeof line - 2) len = sizeof line - 2;
  line[len++] = '\n';
  std::lock_guard lock(g_fileMu);
  FILE* out = g_file != nullptr ? g_file : stdout;
  fwrite(line, 1, len, out);
  fflush(out);
}

}  // namespace pgmux
