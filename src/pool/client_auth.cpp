// Client authentication exchange (trust, any, plain, md5, scram-sha-256) against the auth file.
#include "pgmux/pool/client_auth.h"

#include "pgmux/auth/md5.h"
#include "pgmux/auth/random.h"
#include "pgmux/proto/messages.h"

namespace pgmux::pool {

using config::AuthType;

ClientAuth::Step ClientAuth::fail(const char* sqlstate, std::string message) {
  error_ = Status::error(sqlstate, std::move(message));
  return Step::Failed;
}

ClientAuth::Step ClientAuth::authFailed() {
  return fail(sqlstate::kInvalidPassword, "password authentication failed for user \"" + user_ + "\"");
}

ClientAuth::Step ClientAuth::begin(AuthType type, const auth::UserSecret* secret, const std::string& user,
                                   int scramIterations, std::string& out) {
  user_ = user;
  secret_ = secret;
  switch (type) {
    case AuthType::Any:
      return Step::Done;
    case AuthType::Trust:
      // As PgBouncer: no password, but the user must be in the auth file.
      if (secret == nullptr) return authFailed();
      return Step::Done;
    case AuthType::Plain:
      method_ = Method::Cleartext;
      proto::encodeAuthenticationCleartextPassword(out);
      return Step::SendAndWait;
    case AuthType::Md5:
      if (secret == nullptr || secret->kind != auth::SecretKind::Scram) {
        method_ = Method::Md5;
        auth::fillRandom(salt_, sizeof salt_);
        proto::encodeAuthenticationMD5Password(out, salt_);
        return Step::SendAndWait;
      }
      [[fallthrough]];  // a SCRAM secret cannot answer an md5 challenge: use SCRAM
    case AuthType::ScramSha256: {
      auth::ScramSecret s;
      if (secret != nullptr && secret->kind == auth::SecretKind::Scram && secret->scram) {
        s = *secret->scram;
        scramFromSecret_ = true;
      } else if (secret != nullptr && secret->kind == auth::SecretKind::Plain) {
        s = auth::scramSecretFromPassword(secret->text, auth::randomScramSalt(), scramIterations);
      } else {
        // Unknown user or an md5 secret: a mock exchange that no proof can pass, with a salt
        // that stays the same per user name so that repeated tries reveal nothing.
        s = auth::scramMockSecret(user);
        secret_ = nullptr;
      }
      scram_ = std::make_unique<auth::ScramServer>(std::move(s));
      method_ = Method::ScramFirst;
      proto::encodeAuthenticationSASL(out, {"SCRAM-SHA-256"});
      return Step::SendAndWait;
    }
    case AuthType::Cert:
    case AuthType::Hba:
    case AuthType::Pam:
    case AuthType::Ldap:
      return fail(sqlstate::kFeatureNotSupported,
                  std::string("auth_type ") + config::toString(type) + " is not supported");
  }
  return fail(sqlstate::kInternalError, "unknown auth_type");
}

ClientAuth::Step ClientAuth::onPasswordMessage(std::span<const uint8_t> body, std::string& out) {
  switch (method_) {
    case Method::None:
      return fail(sqlstate::kProtocolViolation, "unexpected password message");
    case Method::Cleartext: {
      std::string pw;
      if (proto::parsePasswordMessage(body, pw) != proto::DecodeStatus::Ok) {
        return fail(sqlstate::kProtocolViolation, "invalid password message");
      }
      if (secret_ == nullptr) return authFailed();
      bool ok = false;
      switch (secret_->kind) {
        case auth::SecretKind::Plain:
          ok = auth::constantTimeEquals(pw, secret_->text);
          break;
        case auth::SecretKind::Md5:
          ok = auth::constantTimeEquals(auth::md5Secret(user_, pw), secret_->text);
          break;
        case auth::SecretKind::Scram: {
          const auto& s = *secret_->scram;
          auto derived = auth::scramSecretFromPassword(pw, s.salt, s.iterations);
          ok = auth::constantTimeEquals(
              std::string_view(reinterpret_cast<const char*>(derived.storedKey.data()), derived.storedKey.size()),
              std::string_view(reinterpret_cast<const char*>(s.storedKey.data()), s.storedKey.size()));
          break;
        }
      }
      return ok ? Step::Done : authFailed();
    }
    case Method::Md5: {
      std::string resp;
      if (proto::parsePasswordMessage(body, resp) != proto::DecodeStatus::Ok) {
        return fail(sqlstate::kProtocolViolation, "invalid password message");
      }
      if (secret_ == nullptr) return authFailed();
      const std::string stored =
          secret_->kind == auth::SecretKind::Md5 ? secret_->text : auth::md5Secret(user_, secret_->text);
      return auth::constantTimeEquals(auth::md5SaltedResponse(stored, salt_), resp) ? Step::Done : authFailed();
    }
    case Method::ScramFirst: {
      std::string mech, data;
      if (proto::parseSASLInitialResponse(body, mech, data) != proto::DecodeStatus::Ok) {
        return fail(sqlstate::kProtocolViolation, "invalid SASL initial response");
      }
      if (mech != "SCRAM-SHA-256") {
        return fail(sqlstate::kProtocolViolation, "client selected an invalid SASL authentication mechanism");
      }
      auto r = scram_->handleClientFirst(data);
      if (!r) return fail(r.status().sqlstate().c_str(), r.status().message());
      proto::encodeAuthenticationSASLContinue(out, *r);
      method_ = Method::ScramFinal;
      return Step::SendAndWait;
    }
    case Method::ScramFinal: {
      std::string_view data(reinterpret_cast<const char*>(body.data()), body.size());
      auto r = scram_->handleClientFinal(data);
      if (!r) {
        if (r.status().sqlstate() == sqlstate::kInvalidPassword) return authFailed();
        return fail(r.status().sqlstate().c_str(), r.status().message());
      }
      if (secret_ == nullptr) return authFailed();
      if (scramFromSecret_) {
        clientKey_ = scram_->clientKey();
        serverKey_ = secret_->scram->serverKey;
      }
      proto::encodeAuthenticationSASLFinal(out, *r);
      method_ = Method::None;
      return Step::Done;
    }
  }
  return fail(sqlstate::kInternalError, "bad auth state");
}

}  // namespace pgmux::pool
