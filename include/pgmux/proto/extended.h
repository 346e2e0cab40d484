// The extended-query messages pgmux rewrites to keep prepared statements working across server
// switches: Parse, Bind, Describe and Close (frontend) and ParseComplete (backend).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "pgmux/proto/frame.h"

namespace pgmux::proto {

// Parse: the statement name, then what defines the statement: the query text and the parameter
// types. `definition` is those bytes as sent (query, NUL, Int16 count, Int32 OIDs).
struct ParseMessage {
  std::string_view name;
  std::string_view query;
  std::span<const uint8_t> definition;
};
DecodeStatus parseParse(std::span<const uint8_t> body, ParseMessage& out);
void encodeParse(std::string& out, std::string_view name, std::span<const uint8_t> definition);

// The head of a Bind: its portal and statement names. `size` counts the message's bytes from its
// type byte to the statement name's NUL; the parameters that follow are never looked at.
struct BindHead {
  std::string_view portal;
  std::string_view statement;
  size_t size = 0;
};
// `message` starts at the type byte. NeedMore while the two names are not complete in it; Invalid
// when the message ends (its length says so) before them.
DecodeStatus parseBindHead(std::span<const uint8_t> message, BindHead& out);
// The head of the same Bind naming `statement` instead: header (length adjusted) and names.
void encodeBindHead(std::string& out, uint32_t length, const BindHead& head, std::string_view statement);

// Describe and Close: 'S' (a prepared statement) or 'P' (a portal), and its name.
struct TargetMessage {
  char kind = 0;
  std::string_view name;
};
DecodeStatus parseTarget(std::span<const uint8_t> body, TargetMessage& out);
void encodeDescribe(std::string& out, char kind, std::string_view name);
void encodeClose(std::string& out, char kind, std::string_view name);

void encodeParseComplete(std::string& out);

}  // namespace pgmux::proto
