// Page-aligned, pre-touched message buffers (so first-touch page faults never land in a timed loop).
#pragma once

#include <cstddef>
#include <memory>

namespace fabscope::transport {

class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(std::size_t bytes, unsigned char fill = 0xa5);
  [[nodiscard]] std::byte* data() noexcept { return data_.get(); }
  [[nodiscard]] const std::byte* data() const noexcept { return data_.get(); }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  struct Free {
    void operator()(std::byte* p) const noexcept;
  };
  std::unique_ptr<std::byte, Free> data_;
  std::size_t size_ = 0;
};

}  // namespace fabscope::transport
