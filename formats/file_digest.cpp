#include "formats/file_digest.h"

#include <openssl/evp.h>

#include <algorithm>
#include <memory>

#include "formats/mapped_file.h"
#include "ravlt/error.h"

namespace ravlt {

std::string sha256_file_hex(const std::string& path,
                            const std::function<void(uint64_t, uint64_t)>& progress) {
  const MappedFile file(path);
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    throw Error("SHA-256 unavailable");
  }
  constexpr size_t kChunk = size_t{64} << 20;
  for (size_t done = 0; done < file.size();) {
    const size_t n = std::min(kChunk, file.size() - done);
    EVP_DigestUpdate(ctx.get(), file.data() + done, n);
    done += n;
    if (progress) progress(done, file.size());
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &length);
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}

}  // namespace ravlt
