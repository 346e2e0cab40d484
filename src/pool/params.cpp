// Tracked session parameters and the SET that re-applies them on a server switch.
#include "pgmux/pool/params.h"

#include <strings.h>

namespace pgmux::pool {

namespace {
bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}
}  // namespace

const std::string* ParamList::get(std::string_view name) const {
  for (const auto& [k, v] : items_) {
    if (k == name) return &v;
  }
  return nullptr;
}

bool ParamList::set(std::string_view name, std::string_view value) {
  for (auto& [k, v] : items_) {
    if (k == name) {
      if (v == value) return false;
      v.assign(value);
      keyValid_ = false;
      return true;
    }
  }
  items_.emplace_back(std::string(name), std::string(value));
  keyValid_ = false;
  return true;
}

const std::string& ParamList::trackedKey(const TrackedParams& tracked) const {
  if (keyValid_) return key_;
  key_.clear();
  for (const auto& name : tracked.names()) {
    // A NUL cannot occur in a value: it separates them, and marks an absent one.
    if (const std::string* v = get(name); v != nullptr) {
      key_.push_back('=');
      key_ += *v;
    }
    key_.push_back('\0');
  }
  keyValid_ = true;
  return key_;
}

TrackedParams::TrackedParams(const std::vector<std::string>& extra)
    : names_{"client_encoding", "DateStyle", "TimeZone", "IntervalStyle", "standard_conforming_strings",
             "application_name"} {
  for (const auto& e : extra) {
    if (canonical(e).empty()) names_.push_back(e);
  }
}

std::string_view TrackedParams::canonical(std::string_view name) const {
  for (const auto& n : names_) {
    if (iequals(n, name)) return n;
  }
  return {};
}

std::string quoteLiteral(std::string_view value) {
  const bool backslash = value.find('\\') != std::string_view::npos;
  std::string out = backslash ? "E'" : "'";
  for (char c : value) {
    if (c == '\'' || (backslash && c == '\\')) out.push_back(c);
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::string buildSetQuery(const TrackedParams& tracked, const ParamList& want, const ParamList& have) {
  std::string sql;
  for (const auto& name : tracked.names()) {
    const std::string* w = want.get(name);
    if (w == nullptr) continue;
    const std::string* h = have.get(name);
    if (h != nullptr && *h == *w) continue;
    if (!sql.empty()) sql += "; ";
    sql += "SET ";
    sql += name;
    sql += " TO ";
    sql += quoteLiteral(*w);
  }
  return sql;
}

}  // namespace pgmux::pool
