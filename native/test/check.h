// Minimal test harness for the native unit tests (no dependency): CHECK/CHECK_EQ record failures,
// main() runs every TEST and returns non-zero when any failed. One *_test.cc file = one executable.
#pragma once
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace cmo::test {

struct Case {
  const char* name;
  std::function<void()> fn;
};

inline std::vector<Case>& cases() {
  static std::vector<Case> all;
  return all;
}
inline int& failures() {
  static int n = 0;
  return n;
}
struct Register {
  Register(const char* name, std::function<void()> fn) { cases().push_back({name, std::move(fn)}); }
};

inline void fail(const char* file, int line, const std::string& what) {
  std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
  ++failures();
}

}  // namespace cmo::test

#define TEST(name)                                                        \
  static void test_##name();                                              \
  static ::cmo::test::Register register_##name(#name, test_##name);       \
  static void test_##name()

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) ::cmo::test::fail(__FILE__, __LINE__, #cond);        \
  } while (0)

#define CHECK_EQ(a, b)                                                                              \
  do {                                                                                              \
    auto cmo_a_ = (a);                                                                              \
    auto cmo_b_ = (b);                                                                              \
    if (!(cmo_a_ == cmo_b_))                                                                        \
      ::cmo::test::fail(__FILE__, __LINE__, std::string(#a " == " #b " (") + std::to_string(cmo_a_) + \
                                                " vs " + std::to_string(cmo_b_) + ")");               \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                                         \
  do {                                                                                                \
    double cmo_a_ = (a), cmo_b_ = (b);                                                                \
    if (!(std::fabs(cmo_a_ - cmo_b_) <= (tol)))                                                       \
      ::cmo::test::fail(__FILE__, __LINE__, std::string(#a " ~= " #b " (") + std::to_string(cmo_a_) + \
                                                " vs " + std::to_string(cmo_b_) + ")");                 \
  } while (0)

#define CHECK_THROWS(expr)                                              \
  do {                                                                  \
    bool cmo_threw_ = false;                                            \
    try {                                                               \
      (void)(expr);                                                     \
    } catch (...) {                                                     \
      cmo_threw_ = true;                                                \
    }                                                                   \
    if (!cmo_threw_) ::cmo::test::fail(__FILE__, __LINE__, "expected throw: " #expr); \
  } while (0)

// Put CMO_TEST_MAIN() once in each *_test.cc file.
#define CMO_TEST_MAIN()                                                               \
  int main() {                                                                        \
    for (auto& c : ::cmo::test::cases()) {                                            \
      int before = ::cmo::test::failures();                                           \
      try {                                                                           \
        c.fn();                                                                       \
      } catch (const std::exception& e) {                                             \
        ::cmo::test::fail(__FILE__, __LINE__, std::string(c.name) + " threw: " + e.what()); \
      }                                                                               \
      std::printf("%s %s\n", ::cmo::test::failures() == before ? "ok  " : "FAIL", c.name); \
    }                                                                                 \
    std::printf("native: %d cases, %d failed checks\n", static_cast<int>(::cmo::test::cases().size()), ::cmo::test::failures()); \
    return ::cmo::test::failures() == 0 ? 0 : 1;                                      \
  }
