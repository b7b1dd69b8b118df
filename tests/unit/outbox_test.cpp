// The outbox over a real socketpair: what goes out at once, what waits, in which order, and what
// is refused.
#include "roomcast/outbox.hpp"

#include <atomic>
#include <fcntl.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include <catch2/catch.hpp>

using namespace roomcast;

namespace {

// A connected pair of stream sockets; the server end is non-blocking, like a session's socket.
struct socket_pair {
  int server = -1;
  int client = -1;

  socket_pair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    server = fds[0];
    client = fds[1];
    REQUIRE(::fcntl(server, F_SETFL, ::fcntl(server, F_GETFL) | O_NONBLOCK) == 0);
  }
  ~socket_pair() {
    ::close(server);
    ::close(client);
  }

  // Everything the client end can read without waiting.
  std::string drain() const {
    std::string got;
    char chunk[65536];
    for (;;) {
      const auto n = ::recv(client, chunk, sizeof chunk, MSG_DONTWAIT);
      if (n <= 0) return got;
      got.append(chunk, static_cast<std::size_t>(n));
    }
  }
};

// Offers copies of `frame` until the socket stops taking them at once; returns how many were sent.
int fill_socket(outbox& box, const shared_frame& frame) {
  for (int sent = 0; sent < 100'000; ++sent) {
    const auto outcome = box.offer(frame);
    if (outcome != outbox::outcome::sent) {
      REQUIRE(outcome == outbox::outcome::start_writer);
      return sent;
    }
  }
  FAIL("the socket never filled up");
  return 0;
}

}  // namespace

TEST_CASE("an idle outbox hands a frame straight to the socket") {
  socket_pair pair;
  outbox box(pair.server, 4);
  const auto hello = make_frame(R"({"event":"hello"})");
  CHECK(box.offer(hello) == outbox::outcome::sent);
  CHECK(box.idle());
  CHECK(pair.drain() == hello->bytes);
  std::vector<pending_frame> batch;
  CHECK_FALSE(box.take(batch));  // nothing waits
}

TEST_CASE("what the socket does not take waits, in order, for one writer") {
  socket_pair pair;
  std::atomic<std::size_t> high_water{0};
  outbox box(pair.server, 3, &high_water);
  const auto big = make_frame(std::string(50'000, 'x'));
  const int sent_at_once = fill_socket(box, big);
  CHECK_FALSE(box.idle());  // the one that only partly fit waits

  // The writer runs, so later frames queue behind it whatever the socket could take now.
  const auto second = make_frame("second");
  const auto third = make_frame("third");
  CHECK(box.offer(second) == outbox::outcome::queued);
  CHECK(box.offer(third) == outbox::outcome::queued);
  CHECK(box.offer(make_frame("one too many")) == outbox::outcome::full);
  CHECK(box.offer(make_frame("own reply"), /*beyond_limit=*/true) == outbox::outcome::queued);
  CHECK(high_water.load() > 0);

  std::vector<pending_frame> batch;
  REQUIRE(box.take(batch));
  REQUIRE(batch.size() == 4);
  CHECK(batch[0].frame == big);
  CHECK(batch[0].offset < big->bytes.size());  // its first part is on the wire
  CHECK(batch[1].frame == second);
  CHECK(batch[2].frame == third);
  CHECK(batch[3].frame->payload() == "own reply");

  // The bytes on the wire are whole frames in order once the batch is written.
  std::string expected;
  for (int i = 0; i < sent_at_once; ++i)
    expected += big->bytes;
  expected += big->bytes.substr(0, batch[0].offset);
  CHECK(pair.drain() == expected);

  CHECK_FALSE(box.take(batch));  // nothing more: the writer goes idle
  CHECK(box.idle());
  CHECK(box.offer(make_frame("fast again")) == outbox::outcome::sent);
}

TEST_CASE("a close frame is the last one, and eviction drops what has not started") {
  socket_pair pair;
  outbox box(pair.server, 8);
  const auto big = make_frame(std::string(50'000, 'x'));
  fill_socket(box, big);
  CHECK(box.offer(make_frame("dropped")) == outbox::outcome::queued);
  CHECK(box.offer(make_frame("dropped too")) == outbox::outcome::queued);

  CHECK(box.drop_waiting() == 2);  // the partly written frame stays: the stream must stay whole
  const auto close = make_encoded_frame(ws::encode_close(ws::close_code::policy_violation, "slow"));
  CHECK(box.offer_last(close) == outbox::outcome::queued);
  CHECK(box.offer(make_frame("after the close")) == outbox::outcome::closed);
  CHECK(box.offer_last(close) == outbox::outcome::closed);

  std::vector<pending_frame> batch;
  REQUIRE(box.take(batch));
  REQUIRE(batch.size() == 2);  // the partly written frame, then the close
  CHECK(batch[0].frame == big);
  CHECK(batch[0].offset > 0);
  CHECK(batch[1].frame == close);
}

TEST_CASE("an idle outbox sends its close frame through the writer") {
  socket_pair pair;
  outbox box(pair.server, 8);
  const auto close = make_encoded_frame(ws::encode_close(ws::close_code::going_away, "bye"));
  CHECK(box.offer_last(close) == outbox::outcome::start_writer);
  std::vector<pending_frame> batch;
  REQUIRE(box.take(batch));
  CHECK(batch.size() == 1);
  CHECK(pair.drain().empty());  // nothing was sent behind the writer's back
}

TEST_CASE("a shut outbox never touches its descriptor again") {
  socket_pair pair;
  outbox box(pair.server, 8);
  box.shut();
  CHECK(box.offer(make_frame("late")) == outbox::outcome::closed);
  CHECK(pair.drain().empty());
}

TEST_CASE("a broken connection refuses further frames") {
  socket_pair pair;
  outbox box(pair.server, 8);
  ::close(pair.client);
  pair.client = ::socket(AF_UNIX, SOCK_STREAM, 0);  // something valid for the destructor
  CHECK(box.offer(make_frame("into the void")) == outbox::outcome::closed);
  CHECK(box.offer(make_frame("again")) == outbox::outcome::closed);
}
