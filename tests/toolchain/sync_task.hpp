#pragma once
// The smallest lazy coroutine type that the reproductions need, so that each of them shows a g++
// bug and no library: `task<T>` is awaitable, `run(t)` drives it to completion on this thread.
// `run` also checks that the handle points at the frame that operator new returned (see
// gcc12_condition_without_locals.cpp).
#include <coroutine>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>
#include <optional>
#include <utility>

template <class T>
struct task {
  struct promise_type {
    static inline void* last_frame = nullptr;
    static void* operator new(std::size_t size) { return last_frame = ::operator new(size); }
    static void operator delete(void* frame) { ::operator delete(frame); }

    std::optional<T> value;
    std::coroutine_handle<> caller = std::noop_coroutine();
    task get_return_object() { return task{handle::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    auto final_suspend() noexcept {
      struct back_to_caller {
        bool await_ready() noexcept { return false; }
        std::coroutine_handle<> await_suspend(handle h) noexcept { return h.promise().caller; }
        void await_resume() noexcept {}
      };
      return back_to_caller{};
    }
    void return_value(T v) { value.emplace(std::move(v)); }
    void unhandled_exception() { std::terminate(); }
  };
  using handle = std::coroutine_handle<promise_type>;

  explicit task(handle h) : h_(h) {}
  task(task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
  ~task() {
    if (h_) h_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) {
    h_.promise().caller = caller;
    return h_;
  }
  T await_resume() { return std::move(*h_.promise().value); }

  friend T run(task t) {
    if (t.h_.address() != promise_type::last_frame) {
      std::fprintf(stderr, "coroutine_handle %p does not point at its frame %p\n", t.h_.address(),
                   promise_type::last_frame);
      std::exit(1);
    }
    t.h_.resume();
    if (!t.h_.done()) std::abort();
    return std::move(*t.h_.promise().value);
  }

 private:
  handle h_;
};
