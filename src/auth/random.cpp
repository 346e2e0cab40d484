// A per-thread batch of RAND_bytes output, handed out a few bytes at a time.
#include "pgmux/auth/random.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace pgmux::auth {

namespace {
constexpr size_t kBatch = 512;
thread_local unsigned char t_batch[kBatch];
thread_local size_t t_used = kBatch;

void draw(unsigned char* out, size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1) std::abort();
}
}  // namespace

void fillRandom(void* out, size_t n) {
  auto* p = static_cast<unsigned char*>(out);
  if (n >= kBatch) {
    draw(p, n);
    return;
  }
  while (n > 0) {
    if (t_used == kBatch) {
      draw(t_batch, kBatch);
      t_used = 0;
    }
    const size_t take = std::min(n, kBatch - t_used);
    std::memcpy(p, t_batch + t_used, take);
    OPENSSL_cleanse(t_batch + t_used, take);  // bytes handed out do not stay behind
    t_used += take;
    p += take;
    n -= take;
  }
}

}  // namespace pgmux::auth
