// Encoders for the messages pgmux writes itself and decoders for those it acts on, following the
// "Message Formats" chapter of the PostgreSQL protocol docs. Decoders treat every body as hostile.
#include "pgmux/proto/messages.h"

#include <algorithm>

#include "wire.h"

namespace pgmux::proto {

using namespace wire;  // NOLINT: the codec's own helpers

namespace {

void encodeAuthentication(std::string& out, AuthCode code, std::string_view data) {
  MessageWriter w(out, 'R');
  putU32(out, static_cast<uint32_t>(code));
  out.append(data);
  w.finish();
}

void encodeEmpty(std::string& out, char type) {
  MessageWriter w(out, type);
  w.finish();
}

void encodeFields(std::string& out, char type, std::string_view severity, std::string_view sqlstate,
                  std::string_view message) {
  MessageWriter w(out, type);
  out.push_back('S');
  putCString(out, severity);
  out.push_back('V');
  putCString(out, severity);
  out.push_back('C');
  putCString(out, sqlstate);
  out.push_back('M');
  putCString(out, message);
  out.push_back('\0');
  w.finish();
}

}  // namespace

// ---- Backend messages ----

void encodeAuthenticationOk(std::string& out) { encodeAuthentication(out, AuthCode::Ok, {}); }

void encodeAuthenticationCleartextPassword(std::string& out) {
  encodeAuthentication(out, AuthCode::CleartextPassword, {});
}

void encodeAuthenticationMD5Password(std::string& out, const uint8_t salt[4]) {
  encodeAuthentication(out, AuthCode::MD5Password,
                       std::string_view(reinterpret_cast<const char*>(salt), 4));
}

void encodeAuthenticationSASL(std::string& out, const std::vector<std::string>& mechanisms) {
  MessageWriter w(out, 'R');
  putU32(out, static_cast<uint32_t>(AuthCode::SASL));
  for (const auto& m : mechanisms) putCString(out, m);
  out.push_back('\0');
  w.finish();
}

void encodeAuthenticationSASLContinue(std::string& out, std::string_view data) {
  encodeAuthentication(out, AuthCode::SASLContinue, data);
}

void encodeAuthenticationSASLFinal(std::string& out, std::string_view data) {
  encodeAuthentication(out, AuthCode::SASLFinal, data);
}

void encodeParameterStatus(std::string& out, std::string_view name, std::string_view value) {
  MessageWriter w(out, 'S');
  putCString(out, name);
  putCString(out, value);
  w.finish();
}

void encodeBackendKeyData(std::string& out, uint32_t pid, uint32_t key) {
  MessageWriter w(out, 'K');
  putU32(out, pid);
  putU32(out, key);
  w.finish();
}

void encodeReadyForQuery(std::string& out, char status) {
  MessageWriter w(out, 'Z');
  out.push_back(status);
  w.finish();
}

void encodeErrorResponse(std::string& out, std::string_view severity, std::string_view sqlstate,
                         std::string_view message) {
  encodeFields(out, 'E', severity, sqlstate, message);
}

void encodeNoticeResponse(std::string& out, std::string_view severity, std::string_view sqlstate,
                          std::string_view message) {
  encodeFields(out, 'N', severity, sqlstate, message);
}

namespace {
void putColumnDescription(std::string& out, std::string_view name, int32_t typeOid, int16_t typeLen) {
  putCString(out, name);
  putI32(out, 0);        // table OID: not a table column
  putI16(out, 0);        // attribute number
  putI32(out, typeOid);  // data type OID
  putI16(out, typeLen);  // typlen
  putI32(out, -1);       // typmod: none
  putI16(out, 0);        // format: text
}
}  // namespace

void encodeRowDescription(std::string& out, const std::vector<std::string>& columns) {
  constexpr int32_t kTextOid = 25;
  MessageWriter w(out, 'T');
  putI16(out, static_cast<int16_t>(columns.size()));
  for (const auto& c : columns) putColumnDescription(out, c, kTextOid, -1);
  w.finish();
}

void encodeRowDescription(std::string& out, std::string_view column, int32_t typeOid, int16_t typeLen) {
  MessageWriter w(out, 'T');
  putI16(out, 1);
  putColumnDescription(out, column, typeOid, typeLen);
  w.finish();
}

void encodeDataRow(std::string& out, const std::vector<std::string>& values,
                   const std::vector<bool>& nulls) {
  MessageWriter w(out, 'D');
  putI16(out, static_cast<int16_t>(values.size()));
  for (size_t i = 0; i < values.size(); ++i) {
    if (i < nulls.size() && nulls[i]) {
      putI32(out, -1);
    } else {
      putU32(out, static_cast<uint32_t>(values[i].size()));
      out.append(values[i]);
    }
  }
  w.finish();
}

void encodeCommandComplete(std::string& out, std::string_view tag) {
  MessageWriter w(out, 'C');
  putCString(out, tag);
  w.finish();
}

void encodeEmptyQueryResponse(std::string& out) { encodeEmpty(out, 'I'); }

// ---- Frontend messages ----

void encodeStartupMessage(std::string& out,
                          const std::vector<std::pair<std::string, std::string>>& params) {
  const size_t start = out.size();
  putU32(out, 0);
  putU32(out, 196608);  // protocol 3.0
  for (const auto& [name, value] : params) {
    putCString(out, name);
    putCString(out, value);
  }
  out.push_back('\0');
  const auto len = static_cast<uint32_t>(out.size() - start);
  std::string lenBytes;
  putU32(lenBytes, len);
  out.replace(start, 4, lenBytes);
}

void encodePasswordMessage(std::string& out, std::string_view password) {
  MessageWriter w(out, 'p');
  putCString(out, password);
  w.finish();
}

void encodeSASLInitialResponse(std::string& out, std::string_view mechanism, std::string_view data) {
  MessageWriter w(out, 'p');
  putCString(out, mechanism);
  putU32(out, static_cast<uint32_t>(data.size()));
  out.append(data);
  w.finish();
}

void encodeSASLResponse(std::string& out, std::string_view data) {
  MessageWriter w(out, 'p');
  out.append(data);
  w.finish();
}

void encodeQuery(std::string& out, std::string_view sql) {
  MessageWriter w(out, 'Q');
  putCString(out, sql);
  w.finish();
}

void encodeSync(std::string& out) { encodeEmpty(out, 'S'); }

void encodeTerminate(std::string& out) { encodeEmpty(out, 'X'); }

void encodeCancelRequest(std::string& out, uint32_t pid, uint32_t key) {
  putU32(out, 16);
  putU32(out, 80877102);
  putU32(out, pid);
  putU32(out, key);
}

void encodeSSLResponse(std::string& out, char answer) { out.push_back(answer); }

// ---- Decoders ----

DecodeStatus parseAuthenticationRequest(std::span<const uint8_t> body, AuthRequest& out) {
  Reader r(body);
  uint32_t code = 0;
  if (!r.u32(code)) return DecodeStatus::Invalid;
  out.code = static_cast<AuthCode>(code);
  out.data = r.rest();
  switch (code) {
    case static_cast<uint32_t>(AuthCode::Ok):
    case static_cast<uint32_t>(AuthCode::CleartextPassword):
      return r.atEnd() ? DecodeStatus::Ok : DecodeStatus::Invalid;
    case static_cast<uint32_t>(AuthCode::MD5Password):
      return r.left() == 4 ? DecodeStatus::Ok : DecodeStatus::Invalid;
    case static_cast<uint32_t>(AuthCode::SASL): {
      // Mechanism names, each NUL-terminated, then an empty name as the last byte.
      std::string_view name;
      do {
        if (!r.cstring(name)) return DecodeStatus::Invalid;
      } while (!name.empty());
      return r.atEnd() ? DecodeStatus::Ok : DecodeStatus::Invalid;
    }
    case static_cast<uint32_t>(AuthCode::SASLContinue):
    case static_cast<uint32_t>(AuthCode::SASLFinal):
      return DecodeStatus::Ok;
    default:
      // Methods pgmux cannot answer (Kerberos, GSSAPI, SSPI, ...): out.code still names the
      // method so the caller can say which one it refused.
      return DecodeStatus::Invalid;
  }
}

std::vector<std::string> parseSASLMechanisms(std::span<const uint8_t> data) {
  std::vector<std::string> names;
  Reader r(data);
  std::string_view name;
  while (r.cstring(name) && !name.empty()) names.emplace_back(name);
  return names;
}

DecodeStatus parseParameterStatus(std::span<const uint8_t> body, std::string& name,
                                  std::string& value) {
  Reader r(body);
  std::string_view n;
  std::string_view v;
  if (!r.cstring(n) || !r.cstring(v) || !r.atEnd()) return DecodeStatus::Invalid;
  name.assign(n);
  value.assign(v);
  return DecodeStatus::Ok;
}

DecodeStatus parseBackendKeyData(std::span<const uint8_t> body, uint32_t& pid, uint32_t& key) {
  Reader r(body);
  if (!r.u32(pid) || !r.u32(key) || !r.atEnd()) return DecodeStatus::Invalid;
  return DecodeStatus::Ok;
}

DecodeStatus parseReadyForQuery(std::span<const uint8_t> body, char& status) {
  if (body.size() != 1) return DecodeStatus::Invalid;
  const char s = static_cast<char>(body[0]);
  if (s != 'I' && s != 'T' && s != 'E') return DecodeStatus::Invalid;
  status = s;
  return DecodeStatus::Ok;
}

DecodeStatus parseErrorResponse(std::span<const uint8_t> body, ErrorFields& out) {
  out = ErrorFields{};
  Reader r(body);
  for (;;) {
    uint8_t code = 0;
    if (!r.u8(code)) return DecodeStatus::Invalid;  // the terminating zero byte is missing
    if (code == 0) return r.atEnd() ? DecodeStatus::Ok : DecodeStatus::Invalid;
    std::string_view value;
    if (!r.cstring(value)) return DecodeStatus::Invalid;
    // Codes not listed here are skipped: the docs say more may be added in future.
    switch (code) {
      case 'S': out.severity.assign(value); break;
      case 'C': out.sqlstate.assign(value); break;
      case 'M': out.message.assign(value); break;
      case 'D': out.detail.assign(value); break;
      default: break;
    }
  }
}

DecodeStatus parsePasswordMessage(std::span<const uint8_t> body, std::string& password) {
  Reader r(body);
  std::string_view p;
  // As PostgreSQL: the string must fill the message exactly ("invalid password packet size").
  if (!r.cstring(p) || !r.atEnd()) return DecodeStatus::Invalid;
  password.assign(p);
  return DecodeStatus::Ok;
}

DecodeStatus parseSASLInitialResponse(std::span<const uint8_t> body, std::string& mechanism,
                                      std::string& data) {
  Reader r(body);
  std::string_view mech;
  uint32_t len = 0;
  if (!r.cstring(mech) || !r.u32(len)) return DecodeStatus::Invalid;
  std::span<const uint8_t> d;
  // -1 means no initial response; any other length must match what follows exactly.
  if (len != 0xffffffffu && !r.bytes(len, d)) return DecodeStatus::Invalid;
  if (!r.atEnd()) return DecodeStatus::Invalid;
  mechanism.assign(mech);
  data.assign(d.begin(), d.end());
  return DecodeStatus::Ok;
}

DecodeStatus parseQuery(std::span<const uint8_t> body, std::string_view& sql) {
  Reader r(body);
  std::string_view s;
  if (!r.cstring(s) || !r.atEnd()) return DecodeStatus::Invalid;
  sql = s;
  return DecodeStatus::Ok;
}

}  // namespace pgmux::proto
