// Uses the installed or add_subdirectory'd library: generates and checks a known value.
#include <bitexact/bitexact.hpp>
#include <cstdio>

int main() {
  const auto s = bitexact::stream<bitexact::philox4x32_10>(bitexact::philox4x32_10::key_type{0, 0});
  std::uint32_t w[4];
  bitexact::generate(s, 0, w, 4);
  // Block 0 with key 0 is Random123's known answer for philox4x32_10(0, 0).
  const bool ok = w[0] == 0x6627e8d5u && w[1] == 0xe169c58du && w[2] == 0xbc57ac4cu && w[3] == 0x9b00dbd8u;
  std::printf("consumer: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
