// An array that a C library allocates and frees as one block, with its element count
// (ibv_get_device_list(3) / ibv_free_device_list): move-only, freed once, iterable.
#pragma once

#include <cstddef>
#include <utility>

namespace fabscope::core {

// `Free` releases the block (called once, only for a non-null block). Templated on the free
// function so core knows nothing of the library that owns the array.
template <typename T, auto Free>
class CArray {
 public:
  CArray() noexcept = default;
  // Takes ownership of `items` (may be null: then the array is empty whatever `count` says).
  CArray(T* items, std::size_t count) noexcept
      : items_(items), size_(items != nullptr ? count : 0) {}
  ~CArray() {
    if (items_ != nullptr) Free(items_);
  }
  CArray(CArray&& o) noexcept
      : items_(std::exchange(o.items_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  CArray& operator=(CArray&& o) noexcept {
    if (this != &o) {
      if (items_ != nullptr) Free(items_);
      items_ = std::exchange(o.items_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  CArray(const CArray&) = delete;
  CArray& operator=(const CArray&) = delete;

  [[nodiscard]] T* begin() const noexcept { return items_; }
  [[nodiscard]] T* end() const noexcept { return items_ + size_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] T& operator[](std::size_t i) const noexcept { return items_[i]; }

 private:
  T* items_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace fabscope::core
