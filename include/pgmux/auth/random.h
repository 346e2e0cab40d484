// Random bytes for md5 salts and cancel keys.
#pragma once

#include <cstddef>

namespace pgmux::auth {

// Fills `out` with `n` bytes of OpenSSL's CSPRNG output, drawn in batches (one RAND_bytes call
// costs as much as the rest of an md5 login's hashing). Aborts when the system has no entropy
// source rather than hand out predictable bytes.
void fillRandom(void* out, size_t n);

}  // namespace pgmux::auth
