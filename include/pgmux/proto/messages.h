// Encoders for every message pgmux writes itself, and decoders for the messages it acts on.
// Encoders append one whole message (header included) to `out`.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pgmux/proto/frame.h"

namespace pgmux::proto {

// Authentication request codes ('R' messages).
enum class AuthCode : uint32_t {
  Ok = 0,
  CleartextPassword = 3,
  MD5Password = 5,
  SASL = 10,
  SASLContinue = 11,
  SASLFinal = 12,
};

// ---- Backend messages (pgmux acting as a server to clients) ----
void encodeAuthenticationOk(std::string& out);
void encodeAuthenticationCleartextPassword(std::string& out);
void encodeAuthenticationMD5Password(std::string& out, const uint8_t salt[4]);
void encodeAuthenticationSASL(std::string& out, const std::vector<std::string>& mechanisms);
void encodeAuthenticationSASLContinue(std::string& out, std::string_view data);
void encodeAuthenticationSASLFinal(std::string& out, std::string_view data);
void encodeParameterStatus(std::string& out, std::string_view name, std::string_view value);
void encodeBackendKeyData(std::string& out, uint32_t pid, uint32_t key);
void encodeReadyForQuery(std::string& out, char status);
// ErrorResponse / NoticeResponse with fields S (and V), C, M.
void encodeErrorResponse(std::string& out, std::string_view severity, std::string_view sqlstate,
                         std::string_view message);
void encodeNoticeResponse(std::string& out, std::string_view severity, std::string_view sqlstate,
                          std::string_view message);
void encodeRowDescription(std::string& out, const std::vector<std::string>& columns);  // all text
// A one-column RowDescription of type `typeOid` (size `typeLen`, -1 = variable), text format, as
// PostgreSQL describes a function call's result: no table, no typmod.
void encodeRowDescription(std::string& out, std::string_view column, int32_t typeOid, int16_t typeLen);
// A DataRow; a nullptr entry in `isNull` terms: values[i] is NULL when nulls[i] is true.
void encodeDataRow(std::string& out, const std::vector<std::string>& values,
                   const std::vector<bool>& nulls = {});
void encodeCommandComplete(std::string& out, std::string_view tag);
void encodeEmptyQueryResponse(std::string& out);

// ---- Frontend messages (pgmux acting as a client to servers) ----
void encodeStartupMessage(std::string& out, const std::vector<std::pair<std::string, std::string>>& params);
void encodePasswordMessage(std::string& out, std::string_view password);  // NUL-terminated
void encodeSASLInitialResponse(std::string& out, std::string_view mechanism, std::string_view data);
void encodeSASLResponse(std::string& out, std::string_view data);
void encodeQuery(std::string& out, std::string_view sql);
void encodeSync(std::string& out);
void encodeTerminate(std::string& out);
void encodeCancelRequest(std::string& out, uint32_t pid, uint32_t key);
void encodeSSLResponse(std::string& out, char answer);  // the single byte 'N' or 'S'

// ---- Decoders: `body` is the message body without the 5-byte header ----
struct AuthRequest {
  AuthCode code = AuthCode::Ok;
  std::span<const uint8_t> data;  // salt for MD5, mechanism list / SASL data otherwise
};
// Invalid for a body that does not fit its code, and for codes not in AuthCode (GSSAPI, SSPI, ...);
// `out.code` is still set then, so the caller can name the method it refuses.
DecodeStatus parseAuthenticationRequest(std::span<const uint8_t> body, AuthRequest& out);
// The NUL-separated mechanism names of an AuthenticationSASL body's data.
std::vector<std::string> parseSASLMechanisms(std::span<const uint8_t> data);

DecodeStatus parseParameterStatus(std::span<const uint8_t> body, std::string& name, std::string& value);
DecodeStatus parseBackendKeyData(std::span<const uint8_t> body, uint32_t& pid, uint32_t& key);
DecodeStatus parseReadyForQuery(std::span<const uint8_t> body, char& status);

// Fields of an ErrorResponse / NoticeResponse by their code byte.
struct ErrorFields {
  std::string severity;  // S
  std::string sqlstate;  // C
  std::string message;   // M
  std::string detail;    // D
};
DecodeStatus parseErrorResponse(std::span<const uint8_t> body, ErrorFields& out);

// A frontend 'p' message read as a plain password (NUL-terminated string).
DecodeStatus parsePasswordMessage(std::span<const uint8_t> body, std::string& password);
// A frontend 'p' message read as SASLInitialResponse: mechanism, then int32 length (-1 = none) and data.
DecodeStatus parseSASLInitialResponse(std::span<const uint8_t> body, std::string& mechanism, std::string& data);
// A Query message's SQL text (without its NUL).
DecodeStatus parseQuery(std::span<const uint8_t> body, std::string_view& sql);

}  // namespace pgmux::proto
