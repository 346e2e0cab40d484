// Logging: one line per event, to stdout (or the configured logfile), with a timestamp and level.
#pragma once

#include <cstdio>
#include <string_view>

namespace pgmux {

enum class LogLevel : int { Error = 0, Warning = 1, Log = 2, Debug = 3, Noise = 4 };

// Global log settings; set at start-up and on reload, read on every log call.
void setLogLevel(LogLevel level);
LogLevel logLevel();
// Opens (append) the file that log lines go to; empty path means stdout. Returns false on error.
bool setLogFile(const char* path);
// When true, nothing below Warning is written (pgmux -q).
void setLogQuiet(bool quiet);

void logWrite(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

inline bool logEnabled(LogLevel level) { return static_cast<int>(level) <= static_cast<int>(logLevel()); }

}  // namespace pgmux

#define PGMUX_LOG(level, ...)                                   \
  do {                                                          \
    if (::pgmux::logEnabled(level)) ::pgmux::logWrite(level, __VA_ARGS__); \
  } while (0)
#define LOG_ERROR(...) PGMUX_LOG(::pgmux::LogLevel::Error, __VA_ARGS__)
#define LOG_WARNING(...) PGMUX_LOG(::pgmux::LogLevel::Warning, __VA_ARGS__)
#define LOG_INFO(...) PGMUX_LOG(::pgmux::LogLevel::Log, __VA_ARGS__)
#define LOG_DEBUG(...) PGMUX_LOG(::pgmux::LogLevel::Debug, __VA_ARGS__)
#define LOG_NOISE(...) PGMUX_LOG(::pgmux::LogLevel::Noise, __VA_ARGS__)
