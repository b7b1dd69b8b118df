// The coroutine forms that g++ 12 compiles correctly, written the ordinary way, on a
// single-threaded io_context. The asan preset runs them under ASan and UBSan; each test also checks
// that every `tracked` object it made was destroyed exactly once, which a double destruction or
// the destruction of a bitwise copy breaks even without ASan. The forms g++ 12 gets wrong are
// reproduced in tests/toolchain/ and listed in docs/architecture.md ("Toolchain traps").
//
// No co_await is written inside a CHECK or REQUIRE: Catch2's macros repeat their expression in a
// `while (false && ...)` condition, and g++ 12 evaluates a co_await there, awaiting it twice.
#include <cstddef>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <variant>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include "roomcast/net.hpp"

#include "step_runner.hpp"

using namespace roomcast;

namespace {

// Knows which of its objects are alive: destroying one twice, or destroying a bitwise copy, is
// counted as a stray. The text is long enough to live on the heap, so ASan sees a double free too.
class tracked {
 public:
  tracked() : tracked(std::string(40, 't')) {}
  explicit tracked(std::string text) : text_(std::move(text)) { born(); }
  tracked(const tracked& other) : text_(other.text_) { born(); }
  tracked(tracked&& other) noexcept : text_(std::move(other.text_)) { born(); }
  tracked& operator=(const tracked&) = default;
  tracked& operator=(tracked&&) noexcept = default;
  ~tracked() {
    if (live_.erase(this) == 0) ++strays_;
  }

  const std::string& text() const { return text_; }

  static void reset() {
    live_.clear();
    strays_ = 0;
    made_ = 0;
  }
  /** Every object made since reset() was destroyed, and exactly once. */
  static bool each_destroyed_once() { return live_.empty() && strays_ == 0; }
  static int made() { return made_; }

 private:
  void born() {
    live_.insert(this);
    ++made_;
  }

  std::string text_;
  static inline std::set<const tracked*> live_;
  static inline int strays_ = 0;
  static inline int made_ = 0;
};

// An aggregate with a destructor: the kind g++ 12 destroys twice when it is built inside a
// co_await full-expression.
struct request {
  std::string path;
  tracked payload;
};

// A trivially destructible aggregate, like test_client::options.
struct options {
  const char* target = "/ws";
  int receive_buffer = 0;
};

request make_request(std::string path) {
  return request{std::move(path), tracked{}};
}
std::string describe(const request& r) {
  return "GET " + r.path;
}

// A real suspension: the rest runs from the io_context's queue.
net::awaitable<void> yield_to_loop() {
  co_await net::post(net::use_awaitable);
}

net::awaitable<std::size_t> length_of(std::string text) {
  co_await yield_to_loop();
  co_return text.size();
}
net::awaitable<std::size_t> length_of_ref(const std::string& text) {
  co_await yield_to_loop();
  co_return text.size();
}
net::awaitable<std::size_t> length_of_tracked(tracked t) {
  co_await yield_to_loop();
  co_return t.text().size();
}
net::awaitable<std::size_t> length_of_shared(std::shared_ptr<tracked> t) {
  co_await yield_to_loop();
  co_return t->text().size();
}
net::awaitable<std::size_t> length_of_pair(std::pair<std::string, tracked> p) {
  co_await yield_to_loop();
  co_return p.first.size() + p.second.text().size();
}
net::awaitable<std::size_t> length_of_optional(std::optional<tracked> t) {
  co_await yield_to_loop();
  co_return t ? t->text().size() : 0;
}
net::awaitable<std::size_t> length_of_variant(std::variant<int, tracked> v) {
  co_await yield_to_loop();
  co_return std::holds_alternative<tracked>(v) ? std::get<tracked>(v).text().size() : 0;
}
net::awaitable<std::size_t> length_of_request(request r) {
  co_await yield_to_loop();
  co_return r.path.size() + r.payload.text().size();
}
net::awaitable<int> buffer_of(options o) {
  co_await yield_to_loop();
  co_return o.receive_buffer;
}
template <class F>
net::awaitable<std::size_t> call(F f) {
  co_await yield_to_loop();
  co_return f();
}
net::awaitable<std::string> text(char c) {
  co_await yield_to_loop();
  co_return std::string(40, c);
}
net::awaitable<int> number(int n) {
  co_await yield_to_loop();
  co_return n;
}
net::awaitable<bool> yes() {
  co_await yield_to_loop();
  co_return true;
}

std::size_t joined_length(const std::string& a, const std::string& b) {
  return a.size() + b.size();
}

struct coroutine_fixture {
  coroutine_fixture() { tracked::reset(); }

  // Runs `body` to completion, then checks that it left no tracked object behind or destroyed one
  // twice.
  void run(net::awaitable<void> body) {
    steps.run(std::move(body));
    CHECK(tracked::each_destroyed_once());
  }

  net::io_context io;
  roomcast::testing::step_runner steps{io};
};

}  // namespace

TEST_CASE_METHOD(coroutine_fixture, "a std::string prvalue can be passed straight to a coroutine",
                 "[coroutine-forms]") {
  run([]() -> net::awaitable<void> {
    const std::string prefix(30, 'p');
    for (int i = 0; i < 3; ++i) {
      const auto got1 = co_await length_of(prefix + std::to_string(i));
      CHECK(got1 == 31);
    }
    const auto got2 = co_await length_of(std::string(40, 's'));
    CHECK(got2 == 40);
  }());
}

TEST_CASE_METHOD(coroutine_fixture,
                 "a std::shared_ptr prvalue can be passed straight to a coroutine",
                 "[coroutine-forms]") {
  run([]() -> net::awaitable<void> {
    const auto got1 = co_await length_of_shared(std::make_shared<tracked>());
    CHECK(got1 == 40);
    CHECK(tracked::made() == 1);
  }());
}

TEST_CASE_METHOD(coroutine_fixture,
                 "a temporary of a class with a constructor can be passed straight to a coroutine",
                 "[coroutine-forms]") {
  run([]() -> net::awaitable<void> {
    const auto got1 = co_await length_of_tracked(tracked{std::string(50, 'x')});
    CHECK(got1 == 50);
    const auto got2 = co_await length_of_tracked(tracked(std::string(60, 'y')));
    CHECK(got2 == 60);
    const auto got3 = co_await length_of_tracked(tracked{});
    CHECK(got3 == 40);
    // std::pair and std::tuple have constructors too.
    const auto got4 = co_await length_of_pair(std::pair<std::string, tracked>{"ab", tracked{}});
    CHECK(got4 == 42);
    const auto got5 = co_await length_of_pair(std::make_pair(std::string("abc"), tracked{}));
    CHECK(got5 == 43);
  }());
}

TEST_CASE_METHOD(coroutine_fixture,
                 "std::optional and std::variant prvalues can be passed straight to a coroutine",
                 "[coroutine-forms]") {
  run([]() -> net::awaitable<void> {
    const auto got1 = co_await length_of_optional(std::optional<tracked>(std::in_place));
    CHECK(got1 == 40);
    const auto got2 = co_await length_of_optional(tracked{});
    CHECK(got2 == 40);
    const auto got3 = co_await length_of_optional(std::nullopt);
    CHECK(got3 == 0);
    const auto got4 =
        co_await length_of_variant(std::variant<int, tracked>(std::in_place_type<tracked>));
    CHECK(got4 == 40);
    const auto got5 = co_await length_of_variant(tracked{});
    CHECK(got5 == 40);
  }());
}

TEST_CASE_METHOD(coroutine_fixture,
                 "a struct returned by a function can be passed straight to a coroutine",
                 "[coroutine-forms]") {
  run([]() -> net::awaitable<void> {
    const auto got1 = co_await length_of_request(make_request("/room"));
    CHECK(got1 == 45);
    // A named aggregate through a plain function inside the co_await, as in
    // `co_await send_own(refusal_frame(*refusal))`.
    const request named{"/named", tracked{}};
    const auto got2 = co_await length_of(describe(named));
    CHECK(got2 == 10);
  }());
}

TEST_CASE_METHOD(coroutine_fixture,
                 "a braced temporary of a trivially destructible aggregate can be a coroutine "
                 "argument",
                 "[coroutine-forms]") {
  run([]() -> net::awaitable<void> {
    const auto got1 = co_await buffer_of({.target = "/", .receive_buffer = 4096});
    CHECK(got1 == 4096);
    const auto got2 = co_await buffer_of(options{});
    CHECK(got2 == 0);
  }());
}

TEST_CASE_METHOD(coroutine_fixture,
                 "an aggregate with a destructor is built in a statement without co_await",
                 "[coroutine-forms]") {
  run([]() -> net::awaitable<void> {
    // Not `co_await length_of(describe(request{...}))` (gcc12_aggregate_temporary.cpp).
    auto line = describe(request{"/a", tracked{}});
    const auto got1 = co_await length_of(std::move(line));
    CHECK(got1 == 6);
    // Not `co_await length_of_request({"/b"})`.
    request r{"/b", tracked{}};
    const auto got2 = co_await length_of_request(std::move(r));
    CHECK(got2 == 42);
    // Not `request built{co_await text('c'), ...}` (gcc12_aggregate_from_co_await.cpp).
    auto path = co_await text('c');
    request built{std::move(path), tracked{}};
    CHECK(built.path.size() == 40);
  }());
}

TEST_CASE_METHOD(coroutine_fixture, "a named lambda with captures can be handed to co_spawn",
                 "[coroutine-forms]") {
  run([]() -> net::awaitable<void> {
    const auto executor = co_await net::this_coro::executor;
    // Not written inside the co_await (gcc12_capturing_lambda.cpp).
    auto work = [t = tracked{}]() -> net::awaitable<std::size_t> {
      co_await yield_to_loop();
      co_return t.text().size();
    };
    const auto got1 = co_await net::co_spawn(executor, work, net::use_awaitable);
    CHECK(got1 == 40);
    const auto got2 = co_await net::co_spawn(executor, work(), net::use_awaitable);
    CHECK(got2 == 40);
    const auto got3 = co_await net::co_spawn(executor, std::move(work), net::use_awaitable);
    CHECK(got3 == 40);
    auto shared = [p = std::make_shared<tracked>()]() -> net::awaitable<std::size_t> {
      co_return p->text().size();
    };
    auto started = shared();
    const auto got4 = co_await std::move(started);
    CHECK(got4 == 40);
  }());
}

TEST_CASE_METHOD(coroutine_fixture,
                 "a lambda without destructible captures can be written inside a co_await",
                 "[coroutine-forms]") {
  run([]() -> net::awaitable<void> {
    const auto executor = co_await net::this_coro::executor;
    const tracked local;
    const std::size_t n = 7;
    const auto got1 = co_await call([] { return std::size_t{3}; });
    CHECK(got1 == 3);
    const auto got2 = co_await call([&] { return local.text().size(); });
    CHECK(got2 == 40);
    const auto got3 = co_await call([&local] { return local.text().size(); });
    CHECK(got3 == 40);
    const auto got4 = co_await call([n] { return n; });
    CHECK(got4 == 7);
    const auto got5 = co_await net::co_spawn(
        executor, []() -> net::awaitable<int> { co_return 5; }, net::use_awaitable);
    CHECK(got5 == 5);
  }());
}

TEST_CASE_METHOD(coroutine_fixture,
                 "co_await results can be arguments of functions and constructors",
                 "[coroutine-forms]") {
  run([]() -> net::awaitable<void> {
    const auto joined = joined_length(co_await text('a'), co_await text('b'));
    CHECK(joined == 80);
    const tracked t(co_await text('c'));
    CHECK(t.text() == std::string(40, 'c'));
    const auto both = std::make_pair(co_await text('d'), co_await number(2));
    CHECK(both.first.size() == 40);
    CHECK(both.second == 2);
  }());
}

namespace {

int probes = 0;
net::awaitable<bool> probe() {
  ++probes;
  co_await yield_to_loop();
  co_return true;
}

}  // namespace

TEST_CASE_METHOD(coroutine_fixture,
                 "a co_await behind && or || in an if or an initializer runs only when reached",
                 "[coroutine-forms]") {
  run([]() -> net::awaitable<void> {
    const bool off = false;
    const bool on = true;
    probes = 0;
    if (off && co_await probe()) CHECK(false);
    const bool either = on || co_await probe();
    CHECK(either);
    CHECK(probes == 0);
    // Where the operand is reached, it runs once. Not in a loop's condition, where g++ 12 runs
    // it even when skipped (gcc12_short_circuit_in_loop_condition.cpp); that is also why every
    // awaited value in these tests is named before a Catch2 assertion checks it.
    const bool both = on && co_await probe();
    CHECK(both);
    CHECK(probes == 1);
  }());
}

TEST_CASE_METHOD(coroutine_fixture, "a choice between two co_awaits is written with if and else",
                 "[coroutine-forms]") {
  run([]() -> net::awaitable<void> {
    for (const bool first : {true, false}) {
      // Not `first ? co_await text('a') : co_await text('b')` (gcc12_conditional_co_await.cpp).
      std::string chosen;
      if (first) {
        chosen = co_await text('a');
      } else {
        chosen = co_await text('b');
      }
      CHECK(chosen == std::string(40, first ? 'a' : 'b'));
      // A result of trivially copyable type is not affected.
      const int n = first ? co_await number(1) : co_await number(2);
      CHECK(n == (first ? 1 : 2));
    }
  }());
}

namespace {

// Declares a variable, so g++ 12 lays out the frame correctly with co_await in conditions.
net::awaitable<int> conditions_with_a_local() {
  int rounds = 0;
  while (co_await number(rounds) < 3)
    ++rounds;
  if (!co_await yes()) co_return -1;
  co_return rounds;
}

// Declares no other variable: the awaited value is named first, not awaited in the condition
// (gcc12_condition_without_locals.cpp).
net::awaitable<int> condition_on_a_named_value() {
  const bool ok = co_await yes();
  if (ok) co_return 1;
  co_return 0;
}

}  // namespace

TEST_CASE_METHOD(coroutine_fixture, "co_await can be written in the condition of if and while",
                 "[coroutine-forms]") {
  run([]() -> net::awaitable<void> {
    const auto got1 = co_await conditions_with_a_local();
    CHECK(got1 == 3);
    const auto got2 = co_await condition_on_a_named_value();
    CHECK(got2 == 1);
  }());
}

namespace {

struct joined {
  std::string name;
};
struct said {
  std::string text;
};
std::size_t size_of(const joined& j) {
  return j.name.size();
}
std::size_t size_of(const said& s) {
  return s.text.size();
}

// As in hub.cpp's room loop: a lambda in the body captures the parameters by reference, after a
// suspension, when the caller's arguments are gone. It sees the frame's copies.
net::awaitable<std::size_t> visit_after_suspension(std::shared_ptr<tracked> room,
                                                   std::variant<joined, said> message) {
  co_await yield_to_loop();
  std::size_t seen = 0;
  std::visit([&](const auto& m) { seen = room->text().size() + size_of(m); }, message);
  auto again = [&] { return room->text().size(); };
  co_await yield_to_loop();
  co_return seen + again();
}

net::awaitable<std::tuple<int, tracked>> numbered(int n) {
  co_await yield_to_loop();
  co_return std::tuple<int, tracked>(n, tracked{});
}

}  // namespace

TEST_CASE_METHOD(coroutine_fixture,
                 "a lambda in a coroutine body can capture the coroutine's parameters by reference",
                 "[coroutine-forms]") {
  run([]() -> net::awaitable<void> {
    const auto executor = co_await net::this_coro::executor;
    auto visit = visit_after_suspension(std::make_shared<tracked>(), said{std::string(10, 's')});
    const auto got1 = co_await net::co_spawn(executor, std::move(visit), net::use_awaitable);
    CHECK(got1 == 90);
  }());
}

TEST_CASE_METHOD(coroutine_fixture,
                 "a structured binding of a co_await result keeps its values across suspensions",
                 "[coroutine-forms]") {
  run([]() -> net::awaitable<void> {
    for (int i = 0; i < 3; ++i) {
      auto [n, t] = co_await numbered(i);
      co_await yield_to_loop();
      CHECK(n == i);
      CHECK(t.text().size() == 40);
    }
  }());
}

TEST_CASE_METHOD(coroutine_fixture,
                 "a const reference parameter bound to a temporary lives while the call is awaited",
                 "[coroutine-forms]") {
  run([]() -> net::awaitable<void> {
    // The temporary lives to the end of the full-expression, which the co_await is part of.
    // Keeping the awaitable to await it later would leave the reference dangling: not a g++ bug.
    const auto got1 = co_await length_of_ref(std::string(40, 'r'));
    CHECK(got1 == 40);
  }());
}
