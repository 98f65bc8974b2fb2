// engine/frontend: argument parsing, the streaming text reader, message and JSON escaping, atomic
// output. The same rules run end to end through `tern` in tests/python/test_cli_hardening.py;
// here the edges are cheap to reach (a line cap of a few bytes, a pipe fed byte by byte).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/frontend/args.hpp"
#include "engine/frontend/output.hpp"
#include "engine/frontend/text.hpp"
#include "engine/frontend/text_input.hpp"
#include "tern/error.hpp"

using namespace tern;
using namespace tern::frontend;

namespace {

// Per process: CTest runs the test cases of this file in parallel processes.
std::string temp_file(const std::string& name, const std::string& bytes) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("tern-frontend-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path.string();
}

std::vector<std::string> read_all(const std::string& bytes, bool truncate, size_t cap) {
  TextReader r(temp_file("lines.txt", bytes), truncate, cap);
  std::vector<std::string> out;
  for (std::string line; r.next(&line);) out.push_back(line);
  return out;
}

std::string error_of(const std::string& bytes, bool truncate, size_t cap) {
  try {
    read_all(bytes, truncate, cap);
  } catch (const Error& e) {
    const std::string m = e.what();
    return m.substr(m.find("lines.txt"));
  }
  return "";
}

}  // namespace

TEST_CASE("frontend: integers, options, values, lists and --") {
  CHECK(parse_int("--n", "42", 0, 100) == 42);
  CHECK(parse_int("--n", "-7", -10, 10) == -7);
  for (const char* bad : {"", "-", "4 ", " 4", "+4", "0x10", "4.0", "1e3"})
    CHECK_THROWS_WITH_AS(parse_int("--n", bad, 0, 100), doctest::Contains("expected an integer"),
                         Error);
  CHECK_THROWS_WITH_AS(parse_int("--n", "101", 0, 100), doctest::Contains("out of range (0..100)"),
                       Error);
  CHECK_THROWS_AS(parse_int("--n", "99999999999999999999999", 0, 100), Error);
  CHECK(looks_like_option("--x"));
  CHECK(looks_like_option("-o"));
  CHECK_FALSE(looks_like_option("-"));
  CHECK_FALSE(looks_like_option("-5"));
  CHECK_FALSE(looks_like_option("-.5"));
  CHECK_FALSE(looks_like_option("x"));

  ArgParser p({"m", "--text", "a", "-5", "-", "--batch=3", "--text", "--", "-x", "--y", "z"}, "t");
  REQUIRE(p.next());
  CHECK((!p.is_option() && p.arg() == "m"));
  REQUIRE(p.next());
  CHECK(p.is("--text"));
  CHECK(p.values() == std::vector<std::string>{"a", "-5", "-"});
  REQUIRE(p.next());
  CHECK(p.is("--batch"));
  CHECK(p.int_value(1, 8) == 3);
  REQUIRE(p.next());
  CHECK(p.values() == std::vector<std::string>{"-x", "--y", "z"});  // after --, all are values
  CHECK_FALSE(p.next());

  ArgParser q({"--batch", "--quiet", "--quiet=1", "--text", "--quiet", "--zzz"}, "tern embed");
  REQUIRE(q.next());
  CHECK_THROWS_WITH_AS(q.value(), doctest::Contains("--batch needs a value"), Error);
  REQUIRE(q.next());
  CHECK_NOTHROW(q.flag());
  REQUIRE(q.next());
  CHECK(q.is("--quiet"));
  CHECK_THROWS_WITH_AS(q.flag(), doctest::Contains("takes no value"), Error);
  REQUIRE(q.next());
  CHECK_THROWS_WITH_AS(q.values(), doctest::Contains("needs at least one value"), Error);
  REQUIRE(q.next());
  REQUIRE(q.next());
  CHECK_THROWS_WITH_AS(q.unknown(), doctest::Contains("see tern embed --help"), Error);

  ArgParser r({"--", "--text", "-f.png"}, "t");  // `--` first: plain arguments only
  REQUIRE(r.next());
  CHECK((!r.is_option() && r.arg() == "--text"));
  REQUIRE(r.next());
  CHECK(!r.is_option());
}

TEST_CASE("frontend: text reader lines, CRLF, BOM, empty lines") {
  CHECK(read_all("", false, 100).empty());
  CHECK(read_all("a\nb", false, 100) == std::vector<std::string>{"a", "b"});
  CHECK(read_all("a\r\n\r\nb\r\n", false, 100) == std::vector<std::string>{"a", "", "b"});
  CHECK(read_all("a\rb\n", false, 100) == std::vector<std::string>{"a\rb"});
  CHECK(read_all("\xEF\xBB\xBFx\n\xEF\xBB\xBFy", false, 100) ==
        std::vector<std::string>{"x", "\xEF\xBB\xBFy"});
  CHECK(read_all("\n", false, 100) == std::vector<std::string>{""});
}

TEST_CASE("frontend: text reader line cap and truncation at a character boundary") {
  CHECK(read_all("12345678\nab", false, 8) == std::vector<std::string>{"12345678", "ab"});
  CHECK(error_of("ok\n123456789\n", false, 8).find("lines.txt:2: the line is longer than 8") == 0);
  // "1234567é": the cap (8) falls inside 'é' (bytes 7 and 8): the cut keeps "1234567".
  CHECK(read_all("1234567\xC3\xA9xyz\nnext", true, 8) ==
        std::vector<std::string>{"1234567", "next"});
  CHECK(read_all("123456\xC3\xA9xyz\n", true, 8) == std::vector<std::string>{"123456\xC3\xA9"});
  CHECK(read_all("12345\xE2\x82\xAC\n", true, 8) == std::vector<std::string>{"12345\xE2\x82\xAC"});
  // What is dropped is still checked: invalid UTF-8 past the cap is an error.
  CHECK(error_of("12345678\xFF\n", true, 8).find("invalid UTF-8 at byte offset 8") !=
        std::string::npos);
}

TEST_CASE("frontend: text reader invalid UTF-8 with its offset") {
  CHECK(error_of("ab\ncd\xFF", false, 100).find("lines.txt:2: invalid UTF-8 at byte offset 5") ==
        0);
  for (const char* bad : {"\xC0\xAF", "\xC3", "\xE0\x80\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                          "\xF5\x80\x80\x80", "\x80", "\xC3\n"})
    CHECK(error_of(std::string("x") + bad, false, 100).find("byte offset 1") != std::string::npos);
  CHECK(read_all("\xF0\x9F\x98\x80\n\xED\x9F\xBF", false, 100).size() == 2);
}

TEST_CASE("frontend: text reader streams a pipe fed byte by byte") {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const std::string data = "h\xC3\xA9llo\r\nw\xE2\x82\xACrld\n";
  std::thread writer([&] {
    for (char c : data) {
      (void)!write(fds[1], &c, 1);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    close(fds[1]);
  });
  const std::string fifo = "/dev/fd/" + std::to_string(fds[0]);
  std::vector<std::string> got;
  {
    TextReader r(fifo, false);
    CHECK_FALSE(r.is_regular());
    for (std::string line; r.next(&line);) got.push_back(line);
  }
  writer.join();
  close(fds[0]);
  CHECK(got == std::vector<std::string>{"h\xC3\xA9llo", "w\xE2\x82\xACrld"});
}

TEST_CASE("frontend: text reader refuses devices and directories by name") {
  CHECK_THROWS_WITH_AS(TextReader("/dev/zero", false), doctest::Contains("a character device"),
                       Error);
  CHECK_THROWS_WITH_AS(TextReader("/tmp", false), doctest::Contains("is a directory"), Error);
  CHECK_THROWS_WITH_AS(TextReader("/nonexistent/x", false), doctest::Contains("cannot open"),
                       Error);
  CHECK_THROWS_WITH_AS(TextReader("", false), doctest::Contains("empty file name"), Error);
}

TEST_CASE("frontend: printable messages and valid UTF-8 JSON") {
  CHECK(printable("a\nb\r\tc\x1b[0m\x7f") == "a\\nb\\r\\tc\\x1b[0m\\x7f");
  CHECK(printable("caf\xC3\xA9 \xFF\xC3") == "caf\xC3\xA9 \\xff\\xc3");
  CHECK(printable("C:\\dir") == "C:\\dir");
  CHECK(json_string("a\"b\\c\n\x01") == "\"a\\\"b\\\\c\\n\\u0001\"");
  CHECK(json_string("\xFFx\xC3\xA9\xED\xA0\x80") ==
        "\"\xEF\xBF\xBDx\xC3\xA9\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
  CHECK(first_invalid_utf8(json_string("\xFF\xFE\xC0\xAF")) == std::string::npos);
}

TEST_CASE("frontend: atomic output honours the umask and keeps an existing mode") {
  const auto dir = std::filesystem::temp_directory_path() / "tern-frontend-out";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "o.bin").string();
  std::filesystem::remove(path);
  const mode_t old = umask(027);
  write_file_atomic(path, "abc");
  umask(old);
  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
  chmod(path.c_str(), 0600);
  write_file_atomic(path, "defg");
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(st.st_size == 4);
  CHECK_THROWS_WITH_AS(check_output_path("-o", ""), doctest::Contains("empty file name"), Error);
  CHECK_THROWS_WITH_AS(check_output_path("-o", dir.string()), doctest::Contains("is a directory"),
                       Error);
  CHECK_THROWS_WITH_AS(check_output_path("-o", (dir / "no" / "x.npy").string()),
                       doctest::Contains("cannot write there"), Error);
  CHECK(file_id(path) == file_id((dir / "." / "o.bin").string()));
  std::filesystem::remove_all(dir);
}
