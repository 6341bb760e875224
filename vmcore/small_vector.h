// A vector that keeps its first N elements inline, for the short lists of a
// hot path (the objects one read or write locks) that must not touch the heap.
#ifndef TASKFS_VMCORE_SMALL_VECTOR_H_
#define TASKFS_VMCORE_SMALL_VECTOR_H_

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <memory>
#include <type_traits>

namespace taskfs::vm {

// Holds trivially copyable T only, so growing is a plain copy. Past N
// elements it moves everything to the heap, doubling as a std::vector does.
// Not thread-safe.
template <class T, std::size_t N>
class SmallVector {
  static_assert(std::is_trivially_copyable_v<T>);
  static_assert(N > 0);

 public:
  SmallVector() = default;
  SmallVector(const SmallVector&) = delete;
  SmallVector& operator=(const SmallVector&) = delete;

  void push_back(const T& value) {
    if (size_ == capacity_) Grow();
    data_[size_++] = value;
  }
  // Keeps the first n elements; n <= size().
  void truncate(std::size_t n) {
    assert(n <= size_);
    size_ = n;
  }

  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }
  T& operator[](std::size_t i) { return data_[i]; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // True while no element has gone to the heap.
  bool is_inline() const { return data_ == inline_; }

 private:
  void Grow() {
    auto bigger = std::make_unique<T[]>(capacity_ * 2);
    std::copy(data_, data_ + size_, bigger.get());
    heap_ = std::move(bigger);
    data_ = heap_.get();
    capacity_ *= 2;
  }

  T inline_[N];
  std::unique_ptr<T[]> heap_;
  T* data_ = inline_;
  std::size_t size_ = 0;
  std::size_t capacity_ = N;
};

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_SMALL_VECTOR_H_
