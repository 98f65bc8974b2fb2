// The batching queue and its thread (see batcher.hpp).
#include "engine/server/batcher.hpp"

#include <algorithm>

namespace tern::server {

Job::Job(BatchKey key, std::vector<Input> inputs)
    : key(key),
      inputs(std::move(inputs)),
      results_(this->inputs.size()),
      remaining_(this->inputs.size()) {}

void Job::wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return remaining_ == 0; });
}

bool Job::failed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return failed_;
}

void Job::deliver(size_t index, Embedding e) {
  std::lock_guard<std::mutex> lock(mutex_);
  results_[index] = std::move(e);
  if (--remaining_ == 0) cv_.notify_all();
}

void Job::fail(const std::string& message) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!failed_) error_ = message;
  failed_ = true;
  if (--remaining_ == 0) cv_.notify_all();
}

Batcher::Batcher(const Backend& backend, Metrics& metrics, int64_t max_batch_tokens)
    : backend_(backend),
      metrics_(metrics),
      max_batch_tokens_(max_batch_tokens),
      thread_([this] { loop(); }) {}

Batcher::~Batcher() {
  stop();
}

void Batcher::submit(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < job->inputs.size(); ++i) queue_.push_back({job, i});
  }
  metrics_.queue_inputs.fetch_add(static_cast<int64_t>(job->inputs.size()));
  cv_.notify_one();
}

void Batcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Batcher::loop() {
  for (;;) {
    std::vector<Item> batch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      batch = take_batch();
    }
    metrics_.queue_inputs.fetch_sub(static_cast<int64_t>(batch.size()));
    run_batch(batch);
  }
}

std::vector<Batcher::Item> Batcher::take_batch() {
  std::vector<Item> batch;
  const BatchKey key = queue_.front().job->key;
  const Job* first_job = queue_.front().job.get();
  int64_t longest = 0;
  std::deque<Item> rest;
  bool full = false;
  for (auto& item : queue_) {
    const Input& in = item.job->inputs[item.index];
    bool take = false;
    if (!full && item.job->key == key) {
      if (max_batch_tokens_ == 0) {
        take = item.job.get() == first_job;
      } else {
        const int64_t l = std::max(longest, in.tokens);
        const int64_t cost = l * static_cast<int64_t>(batch.size() + 1);
        take = batch.empty() || cost <= max_batch_tokens_;
        if (take)
          longest = l;
        else
          full = true;  // first come, first served: nothing overtakes an input that waits
      }
    }
    if (take)
      batch.push_back(std::move(item));
    else
      rest.push_back(std::move(item));
  }
  queue_.swap(rest);
  return batch;
}

void Batcher::run_batch(const std::vector<Item>& batch) {
  std::vector<Item> live;
  for (const Item& item : batch) {
    if (item.job->failed())
      item.job->fail("");  // its request already has its error
    else
      live.push_back(item);
  }
  if (live.empty()) return;
  std::vector<const Input*> inputs;
  int64_t longest = 0, tokens = 0;
  for (const Item& item : live) {
    const Input& in = item.job->inputs[item.index];
    inputs.push_back(&in);
    longest = std::max(longest, in.tokens);
    tokens += in.tokens;
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Embedding> out;
  std::string error;
  try {
    out = backend_.run(live.front().job->key, inputs);
  } catch (const std::exception& e) {
    error = e.what();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  metrics_.inference_seconds.observe(seconds);
  metrics_.batch_size.observe(static_cast<double>(live.size()));
  metrics_.batch_tokens.observe(static_cast<double>(longest * live.size()));
  if (error.empty() && out.size() == live.size()) {
    metrics_.inputs.fetch_add(live.size());
    metrics_.tokens.fetch_add(static_cast<uint64_t>(tokens));
    for (size_t i = 0; i < live.size(); ++i) live[i].job->deliver(live[i].index, std::move(out[i]));
    return;
  }
  if (live.size() == 1) {
    live[0].job->fail("input " + std::to_string(live[0].index) + ": " + error);
    return;
  }
  // Some input broke the batch (a non-finite result, memory): run each alone, so only the
  // request that holds it fails.
  for (const Item& item : live) run_batch({item});
}

}  // namespace tern::server
