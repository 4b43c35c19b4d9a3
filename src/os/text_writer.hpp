// text_writer.hpp: TextWriter, a fixed-buffer text formatter for reports and error lines (the
// library may not use printf or iostreams). Flushes to a file descriptor with write(2) when full.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "os/os.hpp"

namespace mallard::os {

class TextWriter {
 public:
  using Sink = void (*)(void* context, const char* data, std::size_t len);
  // fd < 0: write into the buffer only (read it back with data()/size()).
  explicit TextWriter(int fd) : fd_(fd) {}
  // Flushes into sink(context, ...) instead of a file descriptor (for a FILE*, for example).
  TextWriter(Sink sink, void* context) : fd_(-2), sink_(sink), context_(context) {}
  ~TextWriter() { flush(); }
  TextWriter(const TextWriter&) = delete;
  TextWriter& operator=(const TextWriter&) = delete;

  TextWriter& str(const char* s) { return bytes(s, std::strlen(s)); }
  TextWriter& bytes(const char* s, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) put(s[i]);
    return *this;
  }
  TextWriter& ch(char c) {
    put(c);
    return *this;
  }
  TextWriter& u(std::uint64_t v, int width = 0) {
    char tmp[24];
    int n = 0;
    do {
      tmp[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    for (int i = n; i < width; ++i) put(' ');
    while (n > 0) put(tmp[--n]);
    return *this;
  }
  TextWriter& hex(std::uint64_t v) {
    str("0x");
    char tmp[16];
    int n = 0;
    do {
      tmp[n++] = "0123456789abcdef"[v & 15];
      v >>= 4;
    } while (v != 0);
    while (n > 0) put(tmp[--n]);
    return *this;
  }
  // Bytes as a short human figure: "512 B", "12.5 KiB", "3.0 MiB".
  TextWriter& bytes_human(std::uint64_t v) {
    static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int unit = 0;
    std::uint64_t tenths = v * 10;
    while (tenths >= 10240 && unit < 4) {
      tenths /= 1024;
      ++unit;
    }
    u(tenths / 10);
    if (unit != 0) ch('.').u(tenths % 10);
    return ch(' ').str(kUnits[unit]);
  }
  void flush() {
    if (len_ == 0) return;
    if (fd_ >= 0)
      write_all(fd_, buf_, len_);
    else if (sink_ != nullptr)
      sink_(context_, buf_, len_);
    else
      return;  // buffer-only writer keeps its text
    len_ = 0;
  }
  const char* data() const { return buf_; }
  std::size_t size() const { return len_; }

 private:
  void put(char c) {
    if (len_ == sizeof buf_) {
      if (fd_ < 0 && sink_ == nullptr) return;  // buffer-only writer: truncate
      flush();
    }
    buf_[len_++] = c;
  }
  int fd_;
  Sink sink_ = nullptr;
  void* context_ = nullptr;
  std::size_t len_ = 0;
  char buf_[2048];
};

}  // namespace mallard::os
