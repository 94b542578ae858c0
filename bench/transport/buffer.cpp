#include "transport/buffer.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

namespace fabscope::transport {

void Buffer::Free::operator()(std::byte* p) const noexcept { std::free(p); }

Buffer::Buffer(std::size_t bytes, unsigned char fill) : size_(bytes) {
  constexpr std::size_t kPage = 4096;
  const std::size_t rounded = (bytes + kPage - 1) / kPage * kPage;
  void* p = nullptr;
  if (posix_memalign(&p, kPage, rounded == 0 ? kPage : rounded) != 0) throw std::bad_alloc();
  std::memset(p, fill, rounded == 0 ? kPage : rounded);
  data_.reset(static_cast<std::byte*>(p));
}

}  // namespace fabscope::transport
